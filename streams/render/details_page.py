"""A drill-down list (明细) as a page (`/details`): one page of rows as a table, a link to the
next page and one to the whole list as CSV. Self-contained like the report page: inline CSS,
no script, no font; its only links are to the same worker's lists and report."""

from __future__ import annotations

from functools import cache
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, Template, select_autoescape

from streams.contract.details import Details
from streams.render.details_sheets import cell_text, detail_columns, title

Query = list[tuple[str, str]]  # the list's own parameters, in order, without cursor or limit


@cache
def _template() -> Template:
    environment = Environment(
        loader=PackageLoader("streams.render", "templates"), autoescape=select_autoescape(), trim_blocks=True
    )
    return environment.get_template("details.html")


def list_query(details: Details) -> Query:
    """The parameters that ask for this list again (no cursor, no limit)."""
    query = [("shop", details.shop)]
    if details.agent is not None:
        query.append(("agent", details.agent))
    query += [("kind", details.kind), ("from", details.from_), ("to", details.to)]
    if details.slow_over_seconds is not None:
        query.append(("over", f"{details.slow_over_seconds:g}"))
    return query


def render_details_page(details: Details, limit: int) -> str:
    query = list_query(details)
    columns = detail_columns(details.kind)
    next_link = None
    if details.next_cursor is not None:
        next_link = "/details?" + urlencode([*query, ("limit", str(limit)), ("cursor", details.next_cursor)])
    report_query = [("shop", details.shop), ("from", details.from_), ("to", details.to)]
    return _template().render(
        title=title(details),
        details=details,
        headers=[(c.zh, c.en, c.kind != "text") for c in columns],
        rows=[
            [(cell_text(c, c.get(row, details.kind)), c.kind != "text") for c in columns]
            for row in details.rows
        ],
        next_link=next_link,
        csv_link="/api/v1/details.csv?" + urlencode(query),
        report_link="/report?" + urlencode(report_query),
    )
