"""How the worker's pages say no: one status and one sentence, never data or an address."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from faust.web import Response, View

from agents.store.errors import STORE_ERRORS
from agents.worker.http_params import BadRequest
from agents.worker.report_pool import Busy
from streams.contract.report import ReportRequestError

STORE_DOWN = "the store (Redis) is not answering; try again shortly"
BUSY = "the worker is busy with other reports; try again shortly"
T = TypeVar("T")


def unknown_shop(shop: str) -> str:
    """The 400 for a report of a shop nobody knows: it names no other shop (the CLI lists them)."""
    return f"unknown shop {shop!r}: no shop of that id is configured or has traffic within the retention"


@dataclass(frozen=True)
class Refusal:
    """A request this worker does not answer: its status, the one sentence that says why."""

    status: int
    sentence: str
    headers: dict[str, str] | None = None


# The report pool (or a whole list) has no turn: the client may come back shortly.
BUSY_REFUSAL = Refusal(503, BUSY, {"Retry-After": "5"})


async def attempt(work: Callable[[], Awaitable[T]]) -> T | Refusal:
    """`work()`'s answer, or the refusal its failure means: a bad parameter is a 400 with its
    sentence; Redis away, or the report pool full, a 503."""
    try:
        return await work()
    except (BadRequest, ReportRequestError) as exc:  # ours, and the range's own sentences
        return Refusal(400, str(exc))
    except STORE_ERRORS:
        return Refusal(503, STORE_DOWN)
    except Busy:
        return BUSY_REFUSAL


def json_refusal(view: View, refusal: Refusal) -> Response:
    return view.json({"error": refusal.sentence}, status=refusal.status, headers=refusal.headers)


def html_sentence(sentence: str) -> str:
    return f"<!doctype html><meta charset=utf-8><p>{html.escape(sentence)}</p>"


def html_refusal(view: View, refusal: Refusal) -> Response:
    return view.html(html_sentence(refusal.sentence), status=refusal.status, headers=refusal.headers)
