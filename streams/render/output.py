"""A report in the format asked for (interfaces.md `report --format`), and written so that a
failed run never leaves half a file behind."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import msgspec
from rich.console import Console

from streams.contract.report import PreviousPeriod, Report, ReportRequestError, report_json

REPORT_FORMATS = ("table", "json", "csv", "xlsx", "html")
BINARY_FORMATS = ("xlsx",)


class FormatError(ReportRequestError):
    pass


def check_format(name: str) -> str:
    if name not in REPORT_FORMATS:
        raise FormatError(f"format {name!r} is not one of {', '.join(REPORT_FORMATS)}")
    return name


def table_text(report: Report, *, by_day: bool, width: int, color: bool) -> str:
    from streams.render.report_table import report_table

    console = Console(file=io.StringIO(), width=width, record=True, force_terminal=color, color_system="auto")
    for table in report_table(report, by_day=by_day, width=width):
        console.print(table)
    return console.export_text(styles=color)


def encode_report(
    report: Report,
    fmt: str,
    *,
    by_day: bool,
    previous: PreviousPeriod | None = None,
    threshold_seconds: float = 15.0,
    width: int = 160,
    lists_from: str | None = None,
) -> bytes:
    """The whole output in memory first: writing starts only once everything rendered.
    `lists_from`: the oldest day the lists keep, for a page that links its numbers to them
    (only a served page has them; render_report_page)."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(report_json(report, by_day=by_day)), indent=2) + b"\n"
    if fmt == "csv":
        from streams.render.sheets import report_csv

        return report_csv(report, by_day=by_day)
    if fmt == "xlsx":
        from streams.render.sheets import report_xlsx

        return report_xlsx(report, by_day=by_day)
    if fmt == "html":
        from streams.render.page import render_report_page

        page = render_report_page(
            report, previous, threshold_seconds=threshold_seconds, lists_from=lists_from
        )
        return page.encode()
    return table_text(report, by_day=by_day, width=width, color=False).encode()


def deliver_bytes(data: bytes, target: Path | None, wrote: str) -> None:
    """`data` to stdout, or written whole to `target` and `wrote` (`<command>: wrote …`, with
    `{target}` in it) said on stderr; a target that cannot be written is one sentence."""
    if target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        write_atomically(target, data)
    except OSError as exc:
        raise ReportRequestError(f"cannot write {target}: {exc.strerror or exc}") from exc
    print(wrote.format(target=target), file=sys.stderr)


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target and rename over it: a reader sees the old file or the new one."""
    directory = path.resolve().parent
    if not directory.is_dir():
        raise FileNotFoundError(f"no such directory: {directory}")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        # mkstemp makes the file private; a payroll sheet is for others too, as the umask says.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
