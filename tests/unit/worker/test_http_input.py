"""Every parameter a route takes is checked against events.md's limits before anything is read;
a bad one is a 400 with one sentence, and nothing is kept for a shop nobody configured."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest

from agents.core.policy import UNCONFIGURED_KEPT
from tests.unit.worker.web import FakeRuntime, ReadStore, live_policies, served, settings

SHOP_ROUTES = ["/api/v1/floor", "/api/v1/floor/stream", "/api/v1/floor/trend", "/api/v1/report", "/report"]
BAD_QUERIES = {
    "a shop id past 64 characters": "shop=" + "s" * 65,
    "a 7 KB shop id": "shop=" + "s" * 7000,
    "a NUL": "shop=s%001",
    "a newline": "shop=s1%0A",
    "an empty shop": "shop=",
    "no shop": "",
    "the shop twice": "shop=s1&shop=s2",
}
BAD_REPORT_QUERIES = {
    "a long date": "shop=s1&from=" + "2026-11-01" * 50,
    "a date with a control character": "shop=s1&to=2026-11-0%01",
    "an unknown granularity": "shop=s1&by=week",
    "a non-ASCII date": "shop=s1&from=%D9%A2026-11-01",
}


def get(runtime: FakeRuntime, path: str) -> tuple[int, str]:
    async def fetch() -> tuple[int, str]:
        async with served(runtime) as client:
            response = await client.get(path)
            return response.status, await response.text()

    return asyncio.run(fetch())


def one_sentence(body: str) -> str:
    error = json.loads(body)["error"] if body.startswith("{") else body.split("<p>", 1)[1].split("</p>")[0]
    assert isinstance(error, str) and error.count(". ") == 0 and "\n" not in error and len(error) < 300
    return error


@pytest.mark.parametrize("route", SHOP_ROUTES)
@pytest.mark.parametrize("query", list(BAD_QUERIES.values()), ids=list(BAD_QUERIES))
def test_a_bad_shop_is_a_400_with_one_sentence_and_no_read(route: str, query: str) -> None:
    store = ReadStore()
    status, body = get(FakeRuntime(settings(), store), f"{route}?{query}")
    assert status == 400, body
    one_sentence(body)
    assert store.longest_id <= 64 and store.reads == 0


@pytest.mark.parametrize("route", ["/api/v1/report", "/report"])
@pytest.mark.parametrize("query", list(BAD_REPORT_QUERIES.values()), ids=list(BAD_REPORT_QUERIES))
def test_a_bad_report_parameter_is_a_400_with_one_sentence(route: str, query: str) -> None:
    status, body = get(FakeRuntime(settings(), ReadStore()), f"{route}?{query}")
    assert status == 400, body
    assert len(one_sentence(body)) < 120  # the value is not echoed whole


@pytest.mark.parametrize(
    "query",
    ["shop=" + "s" * 65, "shops=s1," + "s" * 65, "shops=" + ",".join(f"s{i}" for i in range(17)),
     "shop=s1&group=a%20b", "shop=s1&rotate=-1", "shop=s1&sound=yes", "shop=%00"],
)  # fmt: skip
def test_the_floor_page_checks_its_address(query: str) -> None:
    status, body = get(FakeRuntime(settings(), ReadStore()), f"/floor?{query}")
    assert status == 400 and body.startswith("<!doctype html>"), body
    one_sentence(body)


def test_the_floor_page_takes_what_its_help_shows() -> None:
    query = "shops=s1,s2&group=presale&rotate=15&stale=7.5&sound=1&utm_source=wall"
    assert get(FakeRuntime(settings(), ReadStore()), f"/floor?{query}")[0] == 200


def test_ids_the_contract_allows_are_served() -> None:
    shop = "店" * 64  # 64 characters, 192 bytes
    runtime = FakeRuntime(settings(), ReadStore())
    for route in ("/api/v1/floor", "/api/v1/floor/trend"):
        status, body = get(runtime, f"{route}?shop={quote(shop)}")
        assert status == 200 and json.loads(body)["shop"] == shop


def test_a_report_of_an_unknown_shop_names_no_other_shop() -> None:
    for route in ("/api/v1/report", "/report"):
        status, body = get(FakeRuntime(settings(), ReadStore()), f"{route}?shop=nobody")
        assert status == 400 and "nobody" in body
        assert "s1" not in body and "s2" not in body, body


def test_unknown_shops_do_not_grow_the_policy_cache() -> None:
    """1,000 requests with different shop ids used to leave 1,000 policies cached."""
    runtime = FakeRuntime(settings(), ReadStore())
    before = live_policies()

    async def many() -> None:
        async with served(runtime) as client:
            for i in range(UNCONFIGURED_KEPT + 200):
                response = await client.get(f"/api/v1/floor?shop={i:064d}")
                assert response.status == 200
                await response.read()

    asyncio.run(many())
    assert live_policies() - before <= UNCONFIGURED_KEPT


def test_configured_shops_keep_their_rules_among_unknown_ones() -> None:
    runtime: Any = FakeRuntime(settings("shops: {s1: {alert_threshold_seconds: 9}}\n"), ReadStore())
    for i in range(UNCONFIGURED_KEPT + 5):
        assert runtime.policies(f"x{i}").shop_id == f"x{i}"
    assert runtime.policies("s1").alert_threshold_seconds == 9
    assert runtime.policies("x0").alert_threshold_seconds == 15  # dropped, then resolved again
