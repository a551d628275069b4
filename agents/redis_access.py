"""Tell a Redis configuration error (login, ACL, TLS trust) from an outage.

An outage heals by itself, so the worker retries through it; a wrong password or an
untrusted certificate does not, so start-up stops and says which one it is.
"""

from __future__ import annotations

import asyncio
import ssl

from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

from agents.store.redis_store import RedisStore


class RedisAccessError(RuntimeError):
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


async def check_redis_access(store: RedisStore, timeout_s: float = 10.0) -> None:
    """One PING at start-up: raise RedisAccessError on a configuration error, else return."""
    try:
        await asyncio.wait_for(store.ping(), timeout_s)
    except (RedisError, OSError, TimeoutError) as exc:
        problem = access_problem(exc)
        if problem is not None:
            raise RedisAccessError(problem) from None
