"""Lua scripts that run alike on one Redis server and on a Redis Cluster, in pipelines.

redis-py's registered scripts load themselves only in a plain client's pipeline; a cluster
pipeline just fails with NOSCRIPT on a node that has not seen the script (fresh, restarted,
failed over). So scripts are sent as EVALSHA, and the calls answered NOSCRIPT are sent again
after loading every script on every primary. Only those calls: the others already ran.

Every script starts with lua/prelude.lua: the input checks and the chunked variadic calls
that keep a script from failing after it has written (see there). An error a script returns
is a bug, raised as StoreBugError naming the script (errors.py says which replies are not).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from agents.store.connect import RedisClient
from agents.store.errors import StoreBugError, bug_problem, is_bug

# The most values one command inside a script takes from a Lua table (call_chunked in
# prelude.lua). unpack() puts them all on Lua's C stack, which holds 8,000 slots
# (LUAI_MAXCSTACK), and past that the script dies midway; 1,000 leaves room for the command,
# its key and the caller's frames, and costs nothing: Redis's work per value is the same.
CHUNK_VALUES = 1_000


def _read(name: str) -> str:
    return resources.files("agents.store").joinpath(f"lua/{name}").read_text()


PRELUDE = f"local CHUNK = {CHUNK_VALUES}\n" + _read("prelude.lua")
_PRELUDE_LINES = PRELUDE.count("\n")
_LINE = re.compile(r"user_script:(\d+)")


class Lua:
    """One script of agents/store/lua, known by its SHA-1."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = PRELUDE + _read(name)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    def where(self, message: str) -> str:
        """`message` with Redis's `user_script:<line>` given as this file's own line (or the prelude's)."""

        def own(match: re.Match[str]) -> str:
            line = int(match.group(1))
            return (
                f"prelude.lua:{line - 1}"
                if line <= _PRELUDE_LINES
                else f"{self.name}:{line - _PRELUDE_LINES}"
            )

        return _LINE.sub(own, message)

    def __repr__(self) -> str:
        return f"Lua({self.name!r})"


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One script run. Every key it touches is in `keys` or named from their hash tags, all of
    one hash slot on a cluster (on one server, floor_reads.lua reads several agents' keys a
    call, and floor_changes.lua and record_waiting.lua several shops')."""

    script: Lua
    keys: Sequence[str]
    args: Sequence[EncodableT]


async def load_scripts(client: RedisClient, scripts: Iterable[Lua]) -> None:
    """SCRIPT LOAD on the server, or on every primary of a cluster (redis-py routes it so)."""
    for script in scripts:
        await client.script_load(script.text)


async def run_scripts(
    client: RedisClient, calls: Sequence[ScriptCall], pipeline_calls: int | None = None
) -> list[Any]:
    """Run `calls` in one pipeline (on a cluster: one per node, concurrently), or in pipelines
    of `pipeline_calls` one after the other; their results in order. NOSCRIPT is healed here;
    a call that failed otherwise raises: StoreBugError if the script failed (it names it),
    else the first error (an outage: retry)."""
    if not calls:
        return []
    size = pipeline_calls or len(calls)
    results = [
        result
        for start in range(0, len(calls), size)
        for result in await _pipeline(client, calls[start : start + size])
    ]
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        await load_scripts(client, {calls[i].script for i in missing})
        for i, result in zip(missing, await _pipeline(client, [calls[i] for i in missing]), strict=True):
            results[i] = result
    for call, result in zip(calls, results, strict=True):
        if isinstance(result, Exception) and is_bug(result):
            raise StoreBugError(bug_problem(call.script.where(str(result)), call.script.name)) from result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


async def _pipeline(client: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for call in calls:
            # Not pipe.evalsha: a cluster pipeline refuses it by name, since a script could
            # cross slots. Ours never do (ScriptCall), and the cluster routes EVALSHA by its keys.
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        return list(await pipe.execute(raise_on_error=False))
