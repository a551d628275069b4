"""The report page's charts, drawn server-side by matplotlib as SVG to inline in the page.

The page stands alone (no script, no network, printable), so each chart is plain SVG with every
glyph drawn as a path: the Chinese labels look the same without the viewer's fonts. matplotlib
is imported lazily and used only through `Figure`, never pyplot: no process-wide state is touched.
"""

from __future__ import annotations

import html
import io
import math
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from streams.contract.report import ReportDay, ReportRow
from streams.render.formats import DASH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Debian's fonts-noto-cjk first; the others are what other distributions ship under these names.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans CJK TC", "WenQuanYi Zen Hei")
FALLBACK_FAMILY = "DejaVu Sans"
WIDTH_IN = 7.2  # A4 portrait's width inside 12 mm margins is 7.3 in: printed at 100 %
MAX_AGENT_BARS = 20  # a bar per agent stops being readable past this; the table has them all
# Okabe-Ito: told apart with any colour vision, and in greyscale print.
BLUE, ORANGE, VERMILLION, GREY = "#0072B2", "#E69F00", "#D55E00", "#6B7280"
WEEKDAYS = "一二三四五六日"


@cache
def font_families() -> tuple[str, ...]:
    """The CJK families installed here, then the fallback: asking matplotlib for a family it
    lacks logs a warning per lookup, so only present ones are named."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK_FAMILIES):
        installed |= _add_uncached_cjk_fonts(font_manager.fontManager)
    return (*(family for family in CJK_FAMILIES if family in installed), FALLBACK_FAMILY)


def _add_uncached_cjk_fonts(manager: Any) -> set[str]:
    """matplotlib lists the system's fonts once and caches the list for good: a CJK font installed
    after that (the demo ran first, then `./test` installed fonts-noto-cjk) stays unknown, and
    every Chinese label would be drawn as empty boxes. Look on disk for what the cache missed."""
    from matplotlib import font_manager

    known = len(manager.ttflist)
    for path in font_manager.findSystemFonts():
        name = path.rsplit("/", 1)[-1].lower()
        if "cjk" in name or "sourcehan" in name or "wqy" in name:
            try:
                manager.addfont(path)  # a .ttc collection adds each of its faces
            except (OSError, RuntimeError, ValueError):
                continue  # unreadable or an unsupported format: the fallback stays
    return {entry.name for entry in manager.ttflist[known:]}


# matplotlib's settings are process-wide: two pages drawn at once in the worker's threads would
# mix them. One chart at a time also bounds what report pages take from the stream processing.
_DRAWING = threading.Lock()


@contextmanager
def _style(chart_id: str, grid: str) -> Iterator[None]:
    import matplotlib

    with (
        _DRAWING,
        matplotlib.rc_context(
            {
                "svg.fonttype": "path",
                "svg.hashsalt": chart_id,  # the same report gives the same bytes
                "font.family": list(font_families()),
                "font.size": 9,
                "text.parse_math": False,  # an agent named "$x$" is a name, not a formula
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.titlesize": 10,
                "axes.titleweight": "bold",
                "axes.titlelocation": "left",
                "axes.grid": True,
                "axes.grid.axis": grid,
                "axes.axisbelow": True,
                "grid.color": "#e5e7eb",
                "grid.linewidth": 0.6,
            }
        ),
    ):
        yield


def ranked(rows: Sequence[ReportRow]) -> list[ReportRow]:
    """By attributed sales, then consult→pay ratio (absent last), then agent id."""

    def key(row: ReportRow) -> tuple[float, float, str]:
        ratio = row.metrics.consult_pay_ratio
        return (-row.metrics.attributed_sales_yuan, -1.0 if ratio is None else -ratio, row.agent)

    return sorted(rows, key=key)


def _svg(figure: Figure, chart_id: str, label: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = re.sub(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->|<metadata>.*?</metadata>", "", text, flags=re.S)
    # Three charts share one document: every id and reference gets the chart's prefix.
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r'(href="#|url\(#)', rf"\1{chart_id}-", text)
    # Sized by the page's CSS (the viewBox keeps the aspect), not in points.
    root = f'<svg id="{chart_id}" class="chart" role="img" aria-label="{html.escape(label)}"\\1'
    text = re.sub(r'<svg\b([^>]*?)\s+width="[^"]*"\s+height="[^"]*"', root, text.strip(), count=1)
    return text.replace(">", f"><title>{html.escape(label)}</title>", 1)


def _text_inches(text: str, points: float) -> float:
    ems = sum(1.0 if unicodedata.east_asian_width(char) in "WF" else 0.6 for char in text)
    return ems * points / 72


def _figure(title: str, height: float, margins: tuple[float, float, float, float], **gaps: float) -> Figure:
    """A titled figure with fixed margins in inches (left, right, top, bottom): constrained
    layout would fit them for us, at the price of drawing every chart twice."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height))
    left, right, top, bottom = margins
    figure.subplots_adjust(
        left=left / WIDTH_IN, right=1 - right / WIDTH_IN, top=1 - top / height, bottom=bottom / height, **gaps
    )
    figure.suptitle(title, fontsize=11, fontweight="bold", y=1 - 0.08 / height)
    return figure


def _short(name: str, limit: int = 12) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def compact(value: float, unit: str = "") -> str:
    """An axis tick: 万 (10⁴) as Chinese readers count, never matplotlib's "1e6" offset."""
    if abs(value) >= 10_000:
        return f"{unit}{value / 10_000:,.4g}万"
    return f"{unit}{value:,.0f}"


def _empty(axes: Axes, text: str) -> None:
    box = {"facecolor": "white", "edgecolor": "none", "pad": 4}  # over any threshold line behind it
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color=GREY, bbox=box)


def _agent_bars_figure(title: str, shown: Sequence[ReportRow], **gaps: float) -> tuple[Figure, list[str]]:
    """A figure for one horizontal bar per agent in `shown`, tall enough for them and with room on
    the left for their names; the names, shortened, for the y axis."""
    names = [_short(row.name or row.agent) for row in shown]
    label_width = max([_text_inches(name, 9) for name in names] + [0.3])
    height = 1.05 + 0.3 * max(len(shown), 1)
    return _figure(title, height, (label_width + 0.2, 0.15, 0.6, 0.3), **gaps), names


def agent_sales_chart(rows: Sequence[ReportRow], *, limit: int = MAX_AGENT_BARS) -> str:
    """Attributed sales and consult→pay ratio per agent, ranked by sales, as horizontal bars."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    shown = ranked(rows)[:limit]
    count = max(len(shown), 1)
    title = "客服销售额与询单转化率"
    if len(rows) > len(shown):
        title += f"（销售额前 {len(shown)} 名，共 {len(rows)} 人）"
    with _style("chart-agents", "x"):
        figure, names = _agent_bars_figure(title, shown, wspace=0.06)
        sales_axes, ratio_axes = figure.subplots(1, 2, sharey=True, width_ratios=[3, 2])
        positions = list(range(len(shown)))
        sales = [row.metrics.attributed_sales_yuan for row in shown]
        ratios = [row.metrics.consult_pay_ratio for row in shown]
        bars = sales_axes.barh(positions, sales, color=BLUE, height=0.65)
        sales_axes.bar_label(bars, labels=[f"¥{value:,.0f}" for value in sales], padding=3, fontsize=8)
        sales_axes.set_xlim(0, max([*sales, 100.0]) * 1.28)
        sales_axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: compact(value, "¥")))
        sales_axes.set_title("客服销售额（元）")
        bars = ratio_axes.barh(positions, [r or 0.0 for r in ratios], color=ORANGE, height=0.65)
        ratio_axes.bar_label(
            bars, labels=[DASH if r is None else f"{r:.2%}" for r in ratios], padding=3, fontsize=8
        )
        ratio_axes.set_xlim(0, (max([r for r in ratios if r is not None], default=0.0) or 0.01) * 1.35)
        ratio_axes.xaxis.set_major_formatter(PercentFormatter(1.0))
        ratio_axes.set_title("询单转化率")
        sales_axes.set_yticks(positions, names)
        sales_axes.set_ylim(count - 0.5, -0.5)  # rank 1 on top
        for axes in (sales_axes, ratio_axes):
            axes.xaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
            axes.tick_params(axis="x", labelsize=7.5)
        if not shown:
            _empty(sales_axes, "本期无客服数据")
        return _svg(figure, "chart-agents", title)


def satisfaction_chart(rows: Sequence[ReportRow], *, limit: int = MAX_AGENT_BARS) -> str:
    """满意度 per rated agent, best first, each bar labelled with its ratings and bad ratings:
    a 100 % of two ratings reads differently from 96 % of two hundred."""
    from matplotlib.ticker import PercentFormatter

    rated = [row for row in rows if row.metrics.satisfaction_ratio is not None]
    rated.sort(
        key=lambda row: (
            -(row.metrics.satisfaction_ratio or 0.0),
            -row.metrics.rated_consultations,
            row.agent,
        )
    )
    shown = rated[:limit]
    count = max(len(shown), 1)
    title = "客服满意度"
    if len(rated) > len(shown):
        title += f"（前 {len(shown)} 名，共 {len(rated)} 人有评价）"
    with _style("chart-satisfaction", "x"):
        figure, names = _agent_bars_figure(title, shown)
        axes = figure.subplots()
        positions = list(range(len(shown)))
        ratios = [row.metrics.satisfaction_ratio or 0.0 for row in shown]
        colours = [BLUE if row.metrics.dissatisfied_consultations == 0 else ORANGE for row in shown]
        bars = axes.barh(positions, ratios, color=colours, height=0.65)
        labels = [
            f"{ratio:.1%}（{m.rated_consultations} 评，差评 {m.dissatisfied_consultations}）"
            for ratio, m in zip(ratios, (row.metrics for row in shown), strict=True)
        ]
        axes.bar_label(bars, labels=labels, padding=3, fontsize=8)
        axes.set_xlim(0, 1.6)  # room for the labels right of a full bar
        axes.set_xticks([0, 0.5, 1.0])
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_yticks(positions, names)
        axes.set_ylim(count - 0.5, -0.5)  # the best on top
        axes.tick_params(axis="x", labelsize=7.5)
        if not shown:
            _empty(axes, "本期无评价")
        return _svg(figure, "chart-satisfaction", title)


def _day_label(text: str, many: bool) -> str:
    day = date.fromisoformat(text)
    return f"{day:%m-%d}" if many else f"{day:%m-%d}\n周{WEEKDAYS[day.weekday()]}"


def daily_response_chart(days: Sequence[ReportDay], *, threshold_seconds: float = 15.0) -> str:
    """Reply ratio (line) over first response (bars) per day; an absent value is a gap."""
    from matplotlib.ticker import PercentFormatter

    title = "每日回复率与首次响应时间"
    many = len(days) > 14
    positions = list(range(len(days)))
    ratios = [day.totals.metrics.reply_ratio for day in days]
    seconds = [day.totals.metrics.first_response_avg_seconds for day in days]
    with _style("chart-daily", "y"):
        figure = _figure(title, 4.6 if many else 4.4, (0.55, 0.5, 0.55, 0.6 if many else 0.5), hspace=0.3)
        ratio_axes, seconds_axes = figure.subplots(2, 1, sharex=True, height_ratios=[2, 3])
        # NaN, not 0: matplotlib breaks the line there, so a day without traffic is a gap.
        ratio_axes.plot(positions, [math.nan if r is None else r for r in ratios], color=BLUE, marker="o")
        present = [r for r in ratios if r is not None]
        low = max(0.0, math.floor((min(present) - 0.05) * 10) / 10) if present else 0.0
        ratio_axes.set_ylim(low, 1.02)
        ratio_axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ratio_axes.set_title("回复率")
        heights = [s or 0.0 for s in seconds]
        colours = [VERMILLION if (s or 0.0) > threshold_seconds else BLUE for s in seconds]
        bars = seconds_axes.bar(positions, heights, color=colours, width=0.65)
        if not many:
            labels = [DASH if s is None else f"{s:.1f}" for s in seconds]
            seconds_axes.bar_label(bars, labels=labels, padding=2, fontsize=7.5)
        seconds_axes.set_ylim(0, max([*heights, threshold_seconds]) * 1.25)
        seconds_axes.axhline(threshold_seconds, color=VERMILLION, linestyle="--", linewidth=1)
        right_edge, label = seconds_axes.get_yaxis_transform(), f" {threshold_seconds:g} 秒"
        seconds_axes.text(1.0, threshold_seconds, label, transform=right_edge, va="center", color=VERMILLION)
        seconds_axes.set_title("首次响应时间（秒，红色为超过目标）")
        seconds_axes.set_xticks(positions, [_day_label(day.day, many) for day in days])
        pad = max(0.0, (7 - len(days)) / 2)  # a short range keeps a week's bar width, centred
        seconds_axes.set_xlim(-0.5 - pad, len(days) - 0.5 + pad)
        seconds_axes.tick_params(axis="x", labelsize=7 if many else 8, rotation=90 if many else 0)
        if not present:
            _empty(ratio_axes, "本期无咨询")
        return _svg(figure, "chart-daily", title)


def _bound(label: str) -> float:
    return math.inf if label == "+Inf" else float(label)


def _bucket_label(low: float, high: float) -> str:
    if math.isinf(high):
        return f">{low:g}"
    return f"≤{high:g}" if low == 0 else f"{low:g}–{high:g}"


def within_share(buckets: Mapping[str, int], threshold_seconds: float) -> tuple[float, int, int]:
    """(the largest bucket bound at or under the threshold, replied within it, all replied):
    the histogram cannot split a bucket, so a threshold between bounds is counted at the lower."""
    bound = max((_bound(k) for k in buckets if _bound(k) <= threshold_seconds), default=0.0)
    within = sum(count for label, count in buckets.items() if _bound(label) <= bound)
    return bound, within, sum(buckets.values())


def first_response_histogram(buckets: Mapping[str, int], *, threshold_seconds: float = 15.0) -> str:
    """Replied consultations per first-response bucket, with the threshold line and the share
    replied within it."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    title = "首次响应时间分布"
    order = sorted(buckets, key=_bound)
    bounds = [_bound(label) for label in order]
    counts = [buckets[label] for label in order]
    labels = [_bucket_label(low, high) for low, high in zip([0.0, *bounds], bounds, strict=False)]
    bound, within, total = within_share(buckets, threshold_seconds)
    with _style("chart-histogram", "y"):
        figure = _figure(title, 3.0, (0.7, 0.15, 0.4, 0.55))
        axes = figure.subplots()
        colours = [BLUE if high <= bound else ORANGE for high in bounds]
        bars = axes.bar(range(len(order)), counts, color=colours, width=0.7)
        axes.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=2, fontsize=7.5)
        axes.set_xticks(range(len(order)), labels)
        axes.set_xlabel("首次响应时间（秒）")
        axes.set_ylabel("已回复咨询数")
        axes.set_ylim(0, max([*counts, 1]) * 1.45)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: compact(value)))
        line_at = sum(1 for high in bounds if high <= bound) - 0.5  # between the buckets
        axes.axvline(line_at, color=VERMILLION, linestyle="--", linewidth=1.5)
        share = DASH if total == 0 else f"{within / total:.2%}"
        note: dict[str, Any] = {"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": VERMILLION}
        # Of the replied consultations: the page's N秒回复率 counts unanswered ones against it too.
        text = f"{bound:g} 秒线\n已回复中 {share} 在 {bound:g} 秒内（{within:,} / {total:,}）"
        right = line_at < len(order) / 2  # the note goes where the line leaves more room
        x = line_at + (0.12 if right else -0.12)
        top_edge = axes.get_xaxis_transform()
        axes.text(x, 0.95, text, transform=top_edge, va="top", ha="left" if right else "right", bbox=note)
        if total == 0:
            _empty(axes, "本期无已回复咨询")
        return _svg(figure, "chart-histogram", title)
