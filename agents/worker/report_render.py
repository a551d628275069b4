"""What a render process does with a report as read: assemble it, then encode it.

Module-level functions of picklable values, so that report_pool.py can run them in another
process; the worker never holds an assembled report, only its bytes.
"""

from __future__ import annotations

import msgspec

from agents.exposure.report import PreviousParts, ReportParts
from streams.contract.report import report_json
from streams.render.output import encode_report


def report_json_bytes(parts: ReportParts) -> bytes:
    return msgspec.json.encode(report_json(parts.assemble(), by_day=parts.by_day))


def report_page_bytes(
    parts: ReportParts, previous: PreviousParts | None, threshold_seconds: float, lists_from: str | None
) -> bytes:
    before = previous.assemble() if previous is not None else None
    return encode_report(
        parts.assemble(),
        "html",
        by_day=True,
        previous=before,
        threshold_seconds=threshold_seconds,
        lists_from=lists_from,
    )
