"""The root of every error kefu-pulse raises on purpose.

A `KefuError` is something kefu-pulse can say in one sentence instead of a traceback: `str(error)`
is that sentence, and a command that ends with it exits with its `exit_code`. Each module keeps
its own classes; they all derive from here, so the command line catches one class, once
(streams/commands/base.py, `explained`).
"""

from __future__ import annotations

from typing import ClassVar


class KefuError(Exception):
    """A mistake in the request or the configuration, or a part kefu-pulse cannot use."""

    exit_code: ClassVar[int] = 1


class DeploymentError(KefuError):
    """Kafka, its topics or Redis cannot be used as configured. Whatever the command, the sentence
    is the same (`kefu-pulse: …`): the fix is in the deployment, not in the request."""
