"""The floor gauges as Prometheus text, written straight from the snapshot, once per snapshot.

At 200 agents the floor is about 9,400 samples. Built as prometheus_client families and
formatted by `generate_latest`, one scrape took 65–190 ms of Python, and several times that
while reports rendered beside it (the GIL). Here each line is one f-string, and the text is
written at most once per snapshot (the leader publishes one a second), ahead of the scrape
when one is due (FloorText). The output is byte for byte what `generate_latest` writes
for `FloorCollector` (collector.py, the families' definition): a test holds the two equal.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

from agents.core.projection import FIRST_RESPONSE_BUCKETS
from agents.core.statuses import STATUSES
from agents.core.windows import WINDOWS
from agents.exposure.collector import (
    HISTOGRAM_HELP,
    OLDEST_HELP,
    OVERFLOW_AGENT,
    SERVICE_OPEN_HELP,
    SHOP_GAUGES,
    STATUS_HELP,
    THRESHOLD_HELP,
    UNEXPORTED_HELP,
    WAITING_HELP,
    WINDOW_GAUGES,
    WITHIN_HELP,
    FloorSnapshot,
)
from streams.contract.floor import AgentRow, ShopFloor

# Written ahead only while someone scrapes: Prometheus's default interval is 15 s, 1 min allows
# for a slow one, and nobody pays for text that no one reads.
WRITE_AHEAD_SECONDS = 60.0
# And only in the last seconds before the next scrape is due, by the shortest gap between the
# last SCRAPES_KEPT scrapes: at 10,000 agents a text costs this process ~0.7 s, and written for
# every snapshot (one a second) it took most of a core for a scrape every 15 s that read one in
# fifteen. A scrape that comes earlier writes its own.
DUE_LEAD_SECONDS = 2.5
SCRAPES_KEPT = 4
_BUCKET_BOUNDS = (*(str(float(bound)) for bound in FIRST_RESPONSE_BUCKETS), "+Inf")
_GAUGE_NAMES = {key: name for key, name, _ in (*WINDOW_GAUGES, *SHOP_GAUGES)}


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(name: str, text: str, kind: str) -> str:
    help_text = text.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _family(name: str, text: str, kind: str, lines: Iterable[str]) -> str:
    return _header(name, text, kind) + "".join(lines)


@dataclass(slots=True)
class _RowText:
    """One row's lines as written for a snapshot: by WINDOW_GAUGES key, each family's lines of
    the row's windows as one string; its `within` lines; then its waiting, oldest-wait and
    status lines."""

    row: AgentRow
    gauges: dict[str, str]
    within: str
    waiting: str
    oldest: str
    status: str


@dataclass
class KeptText:
    """What floor_exposition wrote of the last snapshot, by (shop, agent), to write again only
    what the leader changed: it keeps an unchanged agent's row, and its `windows` and
    first-response counts, as the very objects across rounds (floor.py FloorCache). At 10,000
    agents, a text from nothing cost ~0.75 s; with 4,000 agents changed a second, most of that
    was rows and histograms written again as they were."""

    rows: dict[tuple[str, str], _RowText] = field(default_factory=dict)
    histograms: dict[tuple[str, str], tuple[dict[str, int], str]] = field(default_factory=dict)


def floor_exposition(snapshot: FloorSnapshot, kept: KeptText | None = None) -> str:
    """The text of every floor family (see FloorCollector.collect for the order). With `kept`,
    rows and counts that are the very objects written before reuse their lines; `kept` then
    holds this snapshot's only."""
    before = kept if kept is not None else KeptText()
    lines = _FloorLines.empty(before)
    for floor in snapshot.floors:
        lines.add_floor(floor)
    histogram = _histogram(snapshot, before, lines.kept_now)
    if kept is not None:
        kept.rows, kept.histograms = lines.kept_now.rows, lines.kept_now.histograms
    return lines.text(histogram, snapshot.unexported_shops)


@dataclass(slots=True)
class _FloorLines:
    """The sample lines of each floor family, filled floor by floor (a row's lines of a family
    come as one string)."""

    gauges: dict[str, list[str]]  # WINDOW_GAUGES by WindowValues field
    shop_gauges: dict[str, list[str]]  # SHOP_GAUGES by TeamWindowValues field
    kept_before: KeptText
    kept_now: KeptText
    within: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    oldest: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    threshold: list[str] = field(default_factory=list)
    service_open: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, kept: KeptText) -> _FloorLines:
        return cls(
            {key: [] for key, _, _ in WINDOW_GAUGES}, {key: [] for key, _, _ in SHOP_GAUGES}, kept, KeptText()
        )

    def add_floor(self, floor: ShopFloor) -> None:
        shop = _label(floor.shop)
        shop_labels = f'{{shop="{shop}"}} '
        self.threshold.append(
            f"kefu_alert_threshold_seconds{shop_labels}{floatToGoString(floor.alert_threshold_seconds)}\n"
        )
        self.service_open.append(
            f"kefu_service_open{shop_labels}{'1.0' if floor.in_service_hours else '0.0'}\n"
        )
        for row in floor.agents:
            self._add_row(floor.shop, shop, row)
        for window in WINDOWS:
            team = floor.totals.windows[window]
            labels = f'{{shop="{shop}",window="{window}"}} '
            for key, lines in self.shop_gauges.items():
                value = getattr(team, key)
                if value is not None:
                    lines.append(f"{_GAUGE_NAMES[key]}{labels}{floatToGoString(value)}\n")

    def _add_row(self, shop_id: str, shop: str, row: AgentRow) -> None:
        key = (shop_id, row.agent)
        text = self.kept_before.rows.get(key)
        if text is None or text.row is not row:
            text = _row_text(
                shop, row, text if text is not None and text.row.windows is row.windows else None
            )
        self.kept_now.rows[key] = text
        for name, lines in text.gauges.items():
            if lines:
                self.gauges[name].append(lines)
        if text.within:
            self.within.append(text.within)
        self.waiting.append(text.waiting)
        self.oldest.append(text.oldest)
        if text.status:
            self.status.append(text.status)

    def text(self, histogram: str, unexported_shops: int) -> str:
        parts = [_family(name, text, "gauge", self.gauges[key]) for key, name, text in WINDOW_GAUGES]
        parts += [_family(name, text, "gauge", self.shop_gauges[key]) for key, name, text in SHOP_GAUGES]
        parts += [
            _family("kefu_replied_within_ratio", WITHIN_HELP, "gauge", self.within),
            _family("kefu_waiting_buyers", WAITING_HELP, "gauge", self.waiting),
            _family("kefu_oldest_wait_seconds", OLDEST_HELP, "gauge", self.oldest),
            _family("kefu_agent_status", STATUS_HELP, "gauge", self.status),
            _family("kefu_alert_threshold_seconds", THRESHOLD_HELP, "gauge", self.threshold),
            _family("kefu_service_open", SERVICE_OPEN_HELP, "gauge", self.service_open),
            histogram,
            _family(
                "kefu_unexported_shops",
                UNEXPORTED_HELP,
                "gauge",
                [f"kefu_unexported_shops {floatToGoString(unexported_shops)}\n"],
            ),
        ]
        return "".join(parts)


def _row_text(shop: str, row: AgentRow, same_windows: _RowText | None) -> _RowText:
    """A row's lines (`shop` escaped); those of its windows taken from `same_windows`, a text
    written of the very same `windows` object."""
    agent = _label(row.agent)
    agent_labels = f'{{agent="{agent}",shop="{shop}"}} '
    status = ""
    if row.agent != OVERFLOW_AGENT:
        status = "".join(
            f'kefu_agent_status{{agent="{agent}",shop="{shop}",status="{name}"}} '
            f"{'1.0' if name == row.agent_status else '0.0'}\n"
            for name in STATUSES
        )
    if same_windows is not None:
        gauges, within = same_windows.gauges, same_windows.within
    else:
        gauges, within = _window_lines(shop, agent, row)
    return _RowText(
        row,
        gauges,
        within,
        f"kefu_waiting_buyers{agent_labels}{floatToGoString(row.waiting_buyers)}\n",
        f"kefu_oldest_wait_seconds{agent_labels}{floatToGoString(row.oldest_wait_seconds)}\n",
        status,
    )


def _window_lines(shop: str, agent: str, row: AgentRow) -> tuple[dict[str, str], str]:
    """One row's window gauge lines (labels escaped already), each family's as one string; and
    its `within` ones."""
    gauges: dict[str, list[str]] = {key: [] for key, _, _ in WINDOW_GAUGES}
    within: list[str] = []
    for window in WINDOWS:
        values = row.windows[window]
        labels = f'{{agent="{agent}",shop="{shop}",window="{window}"}} '
        for key, lines in gauges.items():
            value = getattr(values, key)
            if value is not None:
                lines.append(f"{_GAUGE_NAMES[key]}{labels}{floatToGoString(value)}\n")
        for target, ratio in values.replied_within_ratio.items():
            if ratio is not None:
                within.append(
                    f'kefu_replied_within_ratio{{agent="{agent}",shop="{shop}",window="{window}",'
                    f'within="{_label(target)}"}} {floatToGoString(ratio)}\n'
                )
    return {key: "".join(lines) for key, lines in gauges.items()}, "".join(within)


def _histogram(snapshot: FloorSnapshot, before: KeptText, now: KeptText) -> str:
    """The histogram family; an agent's counts that are the very object written before keep
    their lines."""
    texts: list[str] = []
    for key, counts in snapshot.histograms.items():
        kept = before.histograms.get(key)
        if kept is None or kept[0] is not counts:
            kept = (counts, _histogram_lines(key, counts))
        now.histograms[key] = kept
        texts.append(kept[1])
    return _family("kefu_first_response_seconds", HISTOGRAM_HELP, "histogram", texts)


def _histogram_lines(key: tuple[str, str], counts: dict[str, int]) -> str:
    shop, agent = _label(key[0]), _label(key[1])
    lines: list[str] = []
    cumulative = 0
    for index, bound in enumerate(_BUCKET_BOUNDS):
        cumulative += counts.get(str(index), 0)
        lines.append(
            f'kefu_first_response_seconds_bucket{{agent="{agent}",le="{bound}",shop="{shop}"}} '
            f"{floatToGoString(cumulative)}\n"
        )
    labels = f'{{agent="{agent}",shop="{shop}"}} '
    lines.append(f"kefu_first_response_seconds_count{labels}{floatToGoString(cumulative)}\n")
    lines.append(f"kefu_first_response_seconds_sum{labels}{floatToGoString(counts.get('sum', 0) / 1000)}\n")
    return "".join(lines)


class FloorText:
    """The floor's text for the current snapshot: written ahead on a thread of its own when the
    leader publishes a snapshot while someone scrapes (a scrape in the last minute) and the
    next scrape is due soon, else by the first scrape that asks. Each snapshot is written once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()  # the writer and the scrape threads write each snapshot once
        self._snapshot: FloorSnapshot | None = None
        self._text = b""
        self._kept = KeptText()  # what was written of the last snapshot
        self._clock = clock
        # The last scrapes' times, oldest first: replaced whole, so a reader on another thread
        # never sees it change under it.
        self._scrapes: tuple[float, ...] = ()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="kefu-floor-text")

    def of(self, snapshot: FloorSnapshot) -> bytes:
        """A scrape's floor text."""
        self._scrapes = (*self._scrapes[1 - SCRAPES_KEPT :], self._clock())
        return self._write(snapshot)

    def published(self, snapshot: FloorSnapshot) -> Future[bytes] | None:
        """The leader's new snapshot; written ahead while scrapes come, when one is due soon."""
        if not self._scrape_due():
            return None
        return self._writer.submit(self._write, snapshot)

    def _scrape_due(self) -> bool:
        scrapes, now = self._scrapes, self._clock()
        if not scrapes or now - scrapes[-1] >= WRITE_AHEAD_SECONDS:
            return False
        if len(scrapes) < 2:  # the pace is not known yet
            return True
        gap = min(later - earlier for earlier, later in itertools.pairwise(scrapes))
        return now - scrapes[-1] >= gap - DUE_LEAD_SECONDS

    def _write(self, snapshot: FloorSnapshot) -> bytes:
        with self._lock:
            if snapshot is not self._snapshot:
                self._text = floor_exposition(snapshot, self._kept).encode()
                self._snapshot = snapshot
            return self._text
