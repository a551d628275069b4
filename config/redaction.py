"""Mask credentials in every log record, whoever logs it (our code, Faust, aiokafka, redis-py).

Nothing logs a password today (tests/integration/test_security.py greps a whole worker log);
this keeps it that way when a library starts printing its connection URL in an error. What a
secret looks like in text is config/secret.py's `mask_secrets`, the one function every message
goes through; `redact` is its old name here.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from config.secret import mask_secrets
from config.settings import settings_secrets

__all__ = ["install_log_redaction", "mask_secrets", "redact", "settings_secrets"]

redact = mask_secrets


def install_log_redaction(secrets: Iterable[str]) -> Callable[[], None]:
    """From now on every LogRecord is created masked (`secrets`, the remembered ones and every
    URL form); returns a function that undoes it."""
    known = list(secrets)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        clean = mask_secrets(message, known)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, once: handlers reuse `exc_text` instead of formatting it again.
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = mask_secrets(text, known)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, known)
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)
