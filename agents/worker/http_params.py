"""The query parameters each route takes, checked against the contract's limits before any read.

A bad one is a BadRequest whose message is the one sentence the client gets with its 400.
Parameters a route does not take are ignored (a cache-buster or a tracking tag harms nothing);
a parameter it takes may be given once. Messages never echo a long or unprintable value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from multidict import MultiMapping

from config.errors import KefuError

SHOP_ID_MAX = 64  # events.md: shop_id, 1..64 characters
DAY_TEXT_MAX = len("YYYY-MM-DD")
# A wall screen shows a few shops side by side; each column holds one event stream open.
FLOOR_SHOPS_MAX = 16
# The rule config/settings.py applies to agent groups (`/floor?group=presale`).
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SECONDS = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,3})?$")


class BadRequest(KefuError, ValueError):
    """A request the worker will not serve, in one sentence for the 400 body."""


Query = MultiMapping[str]  # aiohttp's request.query


def single(query: Query, name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"give the query parameter {name} once, not {len(values)} times")
    return values[0] if values else None


def _has_control(text: str) -> bool:
    # Cc: NUL, newlines, escapes; Cs: lone surrogates, which no UTF-8 request can carry.
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def check_id(text: str, name: str, limit: int) -> str:
    """An id as events.md allows it: 1..limit characters, no control characters."""
    if not text:
        raise BadRequest(f"the query parameter {name} is empty: give an id of 1 to {limit} characters")
    if len(text) > limit:
        raise BadRequest(f"the query parameter {name} is {len(text):,} characters long: at most {limit}")
    if _has_control(text):
        raise BadRequest(f"the query parameter {name} holds a control character: ids have none")
    return text


def shop_param(query: Query) -> str:
    """The `shop` every floor and report route needs."""
    shop = single(query, "shop")
    if shop is None:
        raise BadRequest("missing query parameter: shop")
    return check_id(shop, "shop", SHOP_ID_MAX)


def _day(query: Query, name: str) -> str | None:
    text = single(query, name)
    if text is None:
        return None
    if len(text) > DAY_TEXT_MAX or _has_control(text) or not text.isascii():
        raise BadRequest(f"the query parameter {name} is not a date: expected YYYY-MM-DD")
    return text  # the report's own range rules say what is wrong with a short one


@dataclass(frozen=True, slots=True)
class ReportParams:
    shop: str
    first: str | None
    last: str | None
    by: str | None


def report_params(query: Query) -> ReportParams:
    """`shop`, `from`, `to`, `by` of `/api/v1/report` and `/report`."""
    shop = shop_param(query)
    first, last = _day(query, "from"), _day(query, "to")
    by = single(query, "by")
    if by is not None and (len(by) > len("day") * 4 or _has_control(by)):
        raise BadRequest("the query parameter by is not supported: the only choice is 'day'")
    # A short one is judged by the report's own rule, in the words the command line uses.
    return ReportParams(shop, first, last, by)


def check_floor_page(query: Query) -> None:
    """What the floor page reads of its address (static/floor.html): checked here too, so a
    bad address is told at once instead of showing an empty screen."""
    shop, shops = single(query, "shop"), single(query, "shops")
    ids = [s.strip() for s in (shops if shops is not None else shop or "").split(",") if s.strip()]
    if len(ids) > FLOOR_SHOPS_MAX:
        raise BadRequest(f"the query parameter shops names {len(ids)} shops: at most {FLOOR_SHOPS_MAX}")
    for shop_id in ids:
        check_id(shop_id, "shops" if shops is not None else "shop", SHOP_ID_MAX)
    if (group := single(query, "group")) is not None and not _GROUP_NAME.match(group):
        raise BadRequest("the query parameter group is not a group name: letters, digits, - or _, at most 32")
    for name in ("rotate", "stale"):
        if (seconds := single(query, name)) is not None and not _SECONDS.match(seconds):
            raise BadRequest(f"the query parameter {name} is not a number of seconds")
    if single(query, "sound") not in (None, "0", "1"):
        raise BadRequest("the query parameter sound is 1 (on) or 0 (off)")
