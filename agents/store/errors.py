"""Storage errors, classified once: transient (retry through it) or fatal (stop and say why).

An outage heals by itself, so a running worker retries through it; a wrong password, a
missing ACL permission or an untrusted certificate does not, so the worker stops and says
which one it is.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

# Everything a Redis call can raise that is about Redis, not about our code.
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class StoreAccessError(RuntimeError):
    """Redis refuses these settings; retrying will not help."""


def access_problem(error: BaseException) -> str | None:
    """A sentence naming the configuration problem, or None when `error` looks transient."""
    if isinstance(error, AuthenticationError):
        return f"Redis refused the login ({error}); check the user and password in the Redis URL"
    if isinstance(error, NoPermissionError):
        return f"the Redis user lacks a permission kefu-pulse needs ({error}); check its ACL"
    cause: BaseException | None = error
    while cause is not None:  # redis-py wraps the ssl error in a ConnectionError
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"Redis's TLS certificate is not trusted ({cause.verify_message}); "
                "check ssl_ca_certs in the Redis URL"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def describe_problem(error: BaseException, url_shown: str) -> str:
    """What is wrong with Redis, as one sentence: the configuration problem, or an outage at
    `url_shown` (the URL with its password masked) naming the setting to fix."""
    reason = str(error) or type(error).__name__
    return access_problem(error) or (
        f"Redis is unreachable at {url_shown} ({reason}); set KEFU_REDIS_URL or redis.url to your Redis"
    )


def raise_if_fatal(error: BaseException) -> None:
    """Re-raise a configuration error as StoreAccessError; return for a transient one."""
    problem = access_problem(error)
    if problem is not None:
        raise StoreAccessError(problem) from None


async def check_access(ping: Callable[[], Awaitable[object]], timeout_s: float = 10.0) -> None:
    """One PING at start-up: raise StoreAccessError on a configuration error, else return."""
    try:
        await asyncio.wait_for(ping(), timeout_s)
    except STORE_ERRORS as exc:
        raise_if_fatal(exc)
