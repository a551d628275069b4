"""Mask credentials in every log record, whoever logs it (our code, Faust, aiokafka, redis-py).

Nothing logs a password today (tests/integration/test_security.py greps a whole worker log);
this keeps it that way when a library starts printing its connection URL in an error.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from config.secret import REDACTED
from config.settings import Settings

# scheme://user:password@ → scheme://user:********@ (also a password without a user).
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return _URL_CREDENTIALS.sub(rf"\g<head>{REDACTED}@", text)


def settings_secrets(settings: Settings) -> list[str]:
    """The literal secret values in these settings, longest first (so none masks a part of another)."""
    found = []
    if settings.kafka.security.password is not None:
        found.append(settings.kafka.security.password.reveal())
    if password := urlsplit(settings.redis.url).password:
        found.append(password)
    # A very short "secret" would blank out ordinary words; such a password is a problem anyway.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def install_log_redaction(secrets: Iterable[str]) -> Callable[[], None]:
    """From now on every LogRecord is created redacted; returns a function that undoes it."""
    known = list(secrets)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        clean = redact(message, known)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, once: handlers reuse `exc_text` instead of formatting it again.
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text, known)
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)
