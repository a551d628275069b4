"""Storage errors, classified once: transient (retry through it) or fatal (stop and say why).

An outage heals by itself, so a running worker retries through it; a wrong password, a
missing ACL permission or an untrusted certificate does not, so the worker stops and says
which one it is. Neither does a command or script that Redis rejects (a script error, a
WRONGTYPE, a syntax error): the same batch would fail the same way forever, and a script
that failed may have written part of its work, so retrying it is no cure either.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from config.errors import KefuError
from config.secret import mask_secrets, url_secrets

# Everything a Redis call can raise that is about Redis, not about our code. The cluster
# client's own errors are not RedisErrors: a `+cluster` URL naming a plain server raised one
# through every command as a traceback.
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError, TimeoutError)
# What redis-py says, somewhere in the chain, when a cluster client meets a server that is not one.
_NOT_A_CLUSTER = ("Cluster mode is not enabled", "cluster support disabled")

# Error replies that mean "not now" rather than "never": a script cache to refill, a server
# loading, busy with a script, read-only or short of replicas during a failover, out of memory
# or failing to persist (an operator's problem, which heals), a cluster resharding or failing over.
TRANSIENT_REPLY_CODES = frozenset(
    {
        "NOSCRIPT",
        "BUSY",
        "LOADING",
        "READONLY",
        "MASTERDOWN",
        "NOREPLICAS",
        "OOM",
        "MISCONF",
        "MOVED",
        "ASK",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "UNBLOCKED",
    }
)
# The same replies as redis-py's classes, for errors the client raises itself without a code.
_TRANSIENT_REPLY_CLASSES = (
    NoScriptError,
    ReadOnlyError,
    OutOfMemoryError,
    AskError,
    TryAgainError,
    ClusterDownError,
)


class StoreFatalError(KefuError, RuntimeError):
    """Retrying will not help: the worker stops and says why."""


class StoreAccessError(StoreFatalError):
    """Redis refuses these settings; retrying will not help."""


class StoreBugError(StoreFatalError):
    """Redis rejected a command or a script failed: the same call fails again however often it
    is retried, so it is a bug (or foreign data under kefu-pulse's keys), never an outage."""


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
        if isinstance(cause, RedisClusterException | ResponseError) and any(
            words in str(cause) for words in _NOT_A_CLUSTER
        ):
            return (
                "the Redis URL names a Redis Cluster (redis+cluster:// or rediss+cluster://), but the "
                "server does not run in cluster mode; name one server with redis:// or rediss://"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def describe_problem(error: BaseException, url: str) -> str:
    """What is wrong with Redis, as one sentence: the configuration problem, or an outage at
    `url` naming the setting to fix. The sentence is masked (a library's error may quote the
    URL too), so `url` may be given as configured."""
    reason = str(error) or type(error).__name__
    sentence = access_problem(error) or (
        f"Redis is unreachable at {url} ({reason}); set KEFU_REDIS_URL or redis.url to your Redis"
    )
    return mask_secrets(sentence, url_secrets(url))


def reply_code(error: ResponseError) -> str | None:
    """The error reply's code (`WRONGTYPE`, `BUSY`, `ERR`, …), if it has one."""
    code = getattr(error, "status_code", None)
    if code:
        return str(code)
    first = str(error).split(" ", 1)[0]
    return first if first.isalpha() and first.isupper() else None


# A cluster resharding the script's slot: a key the script named is on the other node already.
# The write scripts meet it before their first write (apply_agent.lua says how), so the call is
# retried like a MOVED, once the slot has moved.
_MIGRATING = "non local key in a cluster node"
# What redis-py's cluster client says when it found no node to answer, as opposed to a call it
# refuses to send.
_CLUSTER_OUTAGE = ("cannot be connected", "TTL exhausted", "reachable node")


def is_bug(error: BaseException) -> bool:
    """True for an error reply that retrying cannot cure: anything but the transient codes
    (and the access problems, which have their own class)."""
    if access_problem(error) is not None:
        return False
    if isinstance(error, RedisClusterException):
        # The cluster client's own errors: no node answers (an outage, redirections spent while
        # slots move), or a call it refuses to send (keys of several slots: a bug).
        return not any(words in str(error) for words in _CLUSTER_OUTAGE)
    if not isinstance(error, ResponseError):
        return False
    if isinstance(error, _TRANSIENT_REPLY_CLASSES) or reply_code(error) in TRANSIENT_REPLY_CODES:
        return False
    return _MIGRATING not in str(error)


def bug_problem(reason: str, script: str | None = None) -> str:
    """The sentence a StoreBugError says: what failed, Redis's reason, and why it stops."""
    what = f"the Redis script {script}" if script else "a Redis command"
    return mask_secrets(
        f"{what} failed: {reason} — a bug in kefu-pulse (or other data under its keys), not an "
        "outage: the same call would fail on every retry, so the worker stops"
    )


def raise_if_fatal(error: BaseException) -> None:
    """Re-raise a configuration error as StoreAccessError and a rejected command as
    StoreBugError; return for a transient one."""
    if isinstance(error, StoreFatalError):
        raise error
    problem = access_problem(error)
    if problem is not None:
        raise StoreAccessError(problem) from None
    if is_bug(error):
        raise StoreBugError(bug_problem(str(error))) from error


# Told of each failed try: the error, and the seconds until the next try.
RetryHook = Callable[[BaseException, float], None]
MAX_RETRY_DELAY_S = 5.0
T = TypeVar("T")


async def until_done(
    attempt: Callable[[], Awaitable[T]], retried: tuple[type[BaseException], ...], on_retry: RetryHook
) -> T:
    """`attempt()` until it returns, backing off through `retried` errors (an outage), each
    told to `on_retry`; a fatal store error (a login, ACL or TLS problem, a rejected script)
    raises at once."""
    delay = 0.1
    while True:
        try:
            return await attempt()
        except retried as exc:
            raise_if_fatal(exc)
            on_retry(exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)


async def check_access(ping: Callable[[], Awaitable[object]], timeout_s: float = 10.0) -> None:
    """One PING at start-up: raise StoreAccessError on a configuration error, else return."""
    try:
        await asyncio.wait_for(ping(), timeout_s)
    except STORE_ERRORS as exc:
        raise_if_fatal(exc)
