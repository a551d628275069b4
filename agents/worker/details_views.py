"""The drill-down lists over HTTP: `/api/v1/details` (JSON, paged), `/api/v1/details.csv` (the
whole list, streamed) and `/details` (a page of it as a table).

Parameters are checked before anything is read, as http_params.py does for the report (400 and
one sentence); Redis away is a 503 (views.py's `_attempt`). Buyers are masked unless the
request's grant reveals them (agents/worker/access.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import faust
from aiohttp.web import BaseRequest, StreamResponse
from aiohttp.web import Response as AiohttpResponse
from faust.web import Request, Response, View

from agents.core.clock import wall_clock_ms
from agents.exposure.details import DetailsQuery, DetailsReader
from agents.exposure.report import UnknownReportShop
from agents.worker.access import grant_of
from agents.worker.bodies import send_chunks
from agents.worker.http_params import BadRequest, Query, check_id, report_params, single
from agents.worker.refusals import BUSY_REFUSAL, Refusal, attempt, html_refusal, json_refusal, unknown_shop
from agents.worker.report_pool import Busy, ReportPool
from agents.worker.runtime import Runtime
from streams.contract.details import DEFAULT_PAGE, MAX_PAGE, Details, details_json_bytes
from streams.contract.report import ReportRequestError
from streams.render.details_page import render_details_page
from streams.render.details_sheets import csv_lines

AGENT_ID_MAX = 128  # events.md: agent_id, 1..128 characters
KIND_MAX = 32
# A cursor is msgpack (start, agent, taken) in base64: an agent id of 128 four-byte characters
# makes ~720 characters (512 refused a 128-character CJK id's own next page).
CURSOR_MAX = 1024
_LIMIT = re.compile(r"^[0-9]{1,4}$")
_SECONDS = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,3})?$")
_PRINTABLE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class DetailsParams:
    query: DetailsQuery
    limit: int


def details_params(query: Query, reveal_buyers: bool) -> DetailsParams:
    """`shop`, `agent`, `kind`, `from`, `to`, `over`, `cursor`, `limit`; the range and the kind's
    own rules are the reader's, in the words the command line uses."""
    asked = report_params(query)  # shop, from, to: checked as the report checks them
    agent = single(query, "agent")
    if agent is not None:
        check_id(agent, "agent", AGENT_ID_MAX)
    kind = single(query, "kind")
    if kind is None:
        raise BadRequest("missing query parameter: kind")
    if len(kind) > KIND_MAX or not _PRINTABLE.match(kind):
        raise BadRequest("the query parameter kind is not a list name")
    cursor = single(query, "cursor")
    if cursor is not None and (len(cursor) > CURSOR_MAX or not _PRINTABLE.match(cursor)):
        raise BadRequest("the query parameter cursor is not one this list gave: ask again without it")
    limit = single(query, "limit")
    if limit is not None and (not _LIMIT.match(limit) or not 1 <= int(limit) <= MAX_PAGE):
        raise BadRequest(f"the query parameter limit is a page size: 1 to {MAX_PAGE} rows")
    over = single(query, "over")
    if over is not None and not _SECONDS.match(over):
        raise BadRequest("the query parameter over is not a number of seconds")
    size = DEFAULT_PAGE if limit is None else int(limit)
    details = DetailsQuery(
        shop=asked.shop,
        kind=kind,
        first=asked.first,
        last=asked.last,
        agent=agent,
        over_seconds=None if over is None else float(over),
        cursor=cursor,
        limit=size,
        reveal_buyers=reveal_buyers,
    )
    return DetailsParams(details, size)


@dataclass
class _Lists:
    """A list's reads. A page takes a report turn too: a sparse list (few rows match) reads day
    after day of every agent to fill it, as much as the whole list, so pages in flight are
    bounded as reports and downloads are (503 busy past the queue)."""

    reader: DetailsReader
    turns: ReportPool

    def _params(self, request: Request) -> DetailsParams:
        return details_params(cast(BaseRequest, request).query, grant_of(request).reveals_buyers)

    async def page(self, request: Request) -> tuple[Details, int]:
        params = self._params(request)
        try:
            async with self.turns.turn():
                return await self.reader.page(params.query, wall_clock_ms()), params.limit
        except UnknownReportShop:
            raise ReportRequestError(unknown_shop(params.query.shop)) from None

    async def everything(self, request: Request) -> Details:
        params = self._params(request)
        try:
            return await self.reader.everything(params.query, wall_clock_ms())
        except UnknownReportShop:
            raise ReportRequestError(unknown_shop(params.query.shop)) from None


def install_details_views(app: faust.App, runtime: Runtime, turns: ReportPool) -> None:
    """`turns`: the reports' pool, whose turns pages and whole lists take too (no render process)."""
    lists = _Lists(DetailsReader(runtime.store, runtime.policies), turns)
    write_timeout_seconds = runtime.settings.web.stream_write_timeout_seconds

    @app.page("/api/v1/details")
    async def details_api(view: View, request: Request) -> Response:
        answer = await attempt(lambda: lists.page(request))
        if isinstance(answer, Refusal):
            return json_refusal(view, answer)
        return view.bytes(details_json_bytes(answer[0]), content_type="application/json")

    @app.page("/api/v1/details.csv")
    async def details_csv(view: View, request: Request) -> Response:
        """Every row of the list, not one page, streamed as it is written. A team's month is
        hundreds of thousands of rows held until sent: one download per report turn, so the
        memory of those in flight is bounded as the reports' is (503 busy past the queue)."""
        try:
            async with turns.turn():
                return await _csv_download(request, view, lists, write_timeout_seconds)
        except Busy:
            return json_refusal(view, BUSY_REFUSAL)

    @app.page("/details")
    async def details_page(view: View, request: Request) -> Response:
        answer = await attempt(lambda: lists.page(request))
        if isinstance(answer, Refusal):
            return html_refusal(view, answer)
        body = render_details_page(*answer)
        return cast(Response, AiohttpResponse(text=body, content_type="text/html", charset="utf-8"))


async def _csv_download(
    request: Request, view: View, lists: _Lists, write_timeout_seconds: float
) -> Response:
    """The list as CSV. A client that takes no chunk within the write timeout (the floor
    streams' setting) is dropped: it would hold its report turn for as long as it stalls."""
    answer = await attempt(lambda: lists.everything(request))
    if isinstance(answer, Refusal):
        return json_refusal(view, answer)
    name = f"{answer.shop}-{answer.kind}-{answer.from_}-{answer.to}.csv"
    stream = StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{re.sub(r"[^A-Za-z0-9_.-]", "_", name)}"',
        }
    )
    return await send_chunks(request, stream, csv_lines(answer), write_timeout_seconds)  # 500 rows a chunk
