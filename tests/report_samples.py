"""Reports built from made-up day buckets, for the tests of the report's formats."""

from __future__ import annotations

from datetime import date

from agents.core.policy import resolve_policy
from agents.core.projection import DAY_FIELDS
from agents.core.report_range import DayRange
from agents.exposure.report import assemble_report
from config.settings import settings_from_yaml
from streams.contract.report import Report

SHOP_YAML = """
shops:
  s1:
    name: 旗舰店
    agents:
      "s1:A": {name: 小美}
      "s1:B": {name: 阿强}
      "s1:C": {name: 小周}
"""
FIRST_DAY = date(2026, 11, 1).toordinal()


def day_counters(agent: int, day: int) -> dict[str, int]:
    """One agent's day bucket; `agent` and `day` vary the numbers so no two rows agree."""
    consultations = 20 + 7 * agent + 3 * day
    replied = consultations - 1 - agent
    inquiries = replied - 2
    paid = 1 + (agent + day) % 4
    return {
        "c": consultations,
        "r": replied,
        "fs": replied * (4_000 + 2_500 * agent),
        "wn": replied * 2,
        "ws": replied * 2 * (6_000 + 1_000 * day),
        "i": inquiries,
        "o": paid + 1,
        "p": paid,
        "y": paid * (12_345 + 1_000 * agent),
        "rf": 500 * (day % 2),
        "a": agent % 2,
        "ay": 8_000 * (agent % 2),
        "w0": replied - 3,
        "w1": replied - 1,
        "h0": replied // 4,
        "h2": replied // 4,
        "h4": replied // 4,
        "h5": replied - 3 * (replied // 4) - 2,
        "h9": 2,
    }


def shop_counters(day: int) -> dict[str, int]:
    return {"n": 12 + day, "sn": 2 + day % 3, "sy": 9_900 * (2 + day % 3)}


def sample_report(days: int = 3, agents: int = 3, as_of: int = 1_764_700_000_000) -> Report:
    """A report of `agents` agents (s1:A, s1:B, ... the first three named) over `days` days."""
    policy = resolve_policy(settings_from_yaml(SHOP_YAML), "s1")
    ids = [f"s1:{chr(ord('A') + i)}" if i < 26 else f"s1:agent{i}" for i in range(agents)]
    span = DayRange(FIRST_DAY, FIRST_DAY + days - 1)
    vectors = [[as_vector(day_counters(a, d)) for d in range(days)] for a in range(agents)]
    shop = [as_vector(shop_counters(d)) for d in range(days)]
    return assemble_report(policy, span, as_of, ids, vectors, shop)


def as_vector(counters: dict[str, int]) -> list[int]:
    """A day bucket as the store reads it: DAY_FIELDS in order, absent fields 0."""
    return [counters.get(name, 0) for name in DAY_FIELDS]
