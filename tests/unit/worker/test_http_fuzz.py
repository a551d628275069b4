"""Any query string on any route: never a 500, never an unbounded cache.

Hypothesis writes the query strings (known and random keys, long, unicode, control characters,
raw and percent-encoded bytes); one worker's views answer them all in process, and afterwards
the policy cache, the report pool and the stream count are as bounded as before.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.core.policy import UNCONFIGURED_KEPT
from tests.unit.worker import web

ROUTES = [
    "/api/v1/floor",
    "/api/v1/floor/trend",
    "/api/v1/report",
    "/report",
    "/floor",
    "/api/v1/floor/stream",
    "/healthz",
    "/metrics",
    "/api/v1/details",
    "/api/v1/details.csv",
    "/details",
]
KEYS = ["shop", "shops", "from", "to", "by", "group", "rotate", "stale", "sound", "window", "agent"]
KEYS += ["kind", "cursor", "limit", "over"]  # the drill-down lists
SAMPLES = ["s1", "s2", "", "day", "2026-01-31", "2026-02-30", "1", "9" * 70, "s1,s2", "\x00", "店" * 65]
SAMPLES += ["unreplied", "slow", "lost", "silent_orders", "k89AAAAAAAAAAKFhAQ", "kwGhQQE"]  # kinds, cursors
TEXT = st.text(st.characters(codec="utf-8"), max_size=100) | st.sampled_from(SAMPLES)


def encoded(text: str, raw: bool) -> str:
    # Raw: as a careless client sends it (only what would break the request line is escaped).
    return quote(text, safe="&=%+/,:;") if raw else quote(text, safe="")


pairs = st.lists(
    st.tuples(
        st.just("shop") | st.sampled_from(KEYS) | TEXT,
        TEXT | st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        st.booleans(),
    ),
    max_size=6,
)
queries = st.tuples(st.sampled_from(ROUTES), pairs, st.sampled_from(["", "%", "%zz", "&&", "=", "%ff%fe"]))


RUNTIME = web.FakeRuntime(web.settings(max_streams=4), web.ReadStore())


def query_string(pairs: list[tuple[str, str, bool]], tail: str) -> str:
    return "&".join(f"{encoded(k, raw)}={encoded(v, raw)}" for k, v, raw in pairs) + tail


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(queries, min_size=1, max_size=25))
def test_no_query_string_makes_a_500_or_grows_a_cache(requests: list[Any]) -> None:
    runtime = RUNTIME  # one worker for every example: what it keeps adds up across all of them
    statuses: list[int] = []

    async def scenario() -> None:
        async with web.served(runtime) as client:
            for route, pairs, tail in requests:
                response = await client.get(f"{route}?{query_string(pairs, tail)}")
                statuses.append(response.status)
                response.close()  # a stream is read no further: the handler must let go
            assert all(status < 500 or status == 503 for status in statuses), statuses

    with pytest.MonkeyPatch.context() as patch:
        web.HealthyApp.install(patch)
        asyncio.run(scenario())
    assert 500 not in statuses
    assert len(runtime.policies) <= UNCONFIGURED_KEPT + len(runtime.settings.shops)
    assert runtime.store.longest_id <= 64
