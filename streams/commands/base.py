"""What every kefu-pulse command shares: the one place a `KefuError` ends it, and Redis's outages.

Faust runs each command inside a mode Worker, which logs whatever the command raises with its
traceback and exits 1. So the catch sits inside the command, in `Command`, the base class every
command module gives `app.command`; `main` runs its own start-up under the same `explained`.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, NoReturn, ParamSpec, Protocol, TypeVar

from faust.cli import AppCommand

from agents.store.errors import STORE_ERRORS, describe_problem
from config.errors import DeploymentError, KefuError
from config.redaction import mask_secrets
from config.settings import Settings
from streams.commands.help import wants_debug

SAID_BY = "kefu-pulse: "  # how a sentence starts unless the command introduces it otherwise
P = ParamSpec("P")
T = TypeVar("T")


class StoreUnavailable(DeploymentError):
    """Redis failed a command's call: the sentence says why and names the setting to check."""


def fail(sentence: str, exit_code: int) -> NoReturn:
    """`sentence` on stderr with no secret in it, and the exit."""
    print(mask_secrets(sentence), file=sys.stderr)
    raise SystemExit(exit_code)


@contextmanager
def explained(refusal_prefix: str = SAID_BY, *, debug: bool = False) -> Iterator[None]:
    """The one catch of `KefuError`: its sentence, and its exit code instead of a traceback.

    A refusal of the request is introduced the way its command always has (`kefu-pulse
    rebuild: …`, `kefu-pulse: report: …`); a deployment problem reads the same in every command.
    `-l debug` shows the chain first, down to the library's own error."""
    try:
        yield
    except KefuError as error:
        if debug:
            print(mask_secrets(traceback.format_exc()), file=sys.stderr, end="")
        prefix = SAID_BY if isinstance(error, DeploymentError) else refusal_prefix
        fail(f"{prefix}{error}", error.exit_code)


class Command(AppCommand):
    """The Faust base of every kefu-pulse command: `app.command(…, base=Command)`. A command
    passes `refusal_prefix=` to `app.command` when it introduces its refusals by its name."""

    abstract: ClassVar[bool] = True
    refusal_prefix: ClassVar[str] = SAID_BY

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        with explained(self.refusal_prefix, debug=wants_debug(sys.argv[1:])):
            return await super().execute(*args, **kwargs)


def redis_problem(settings: Settings, error: BaseException) -> str:
    return describe_problem(error, settings.redis.url)


@contextmanager
def talking_to_redis(settings: Settings) -> Iterator[None]:
    """Around a command's Redis calls: an outage, a refused login or a timeout as StoreUnavailable."""
    try:
        yield
    except STORE_ERRORS as exc:
        raise StoreUnavailable(redis_problem(settings, exc)) from exc


def via_redis(settings: Settings, call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """`call`, a store method, with its Redis failures as StoreUnavailable."""

    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        with talking_to_redis(settings):
            return await call(*args, **kwargs)

    return translated


class Pingable(Protocol):
    async def ping(self) -> bool: ...


async def require_redis(settings: Settings, store: Pingable, timeout_s: float = 5.0) -> None:
    """Redis as the worker will use it answers within `timeout_s`, or StoreUnavailable says why."""
    with talking_to_redis(settings):
        await asyncio.wait_for(store.ping(), timeout_s)
