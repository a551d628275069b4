"""Metric names referenced by a PromQL expression, without a PromQL parser.

Strips what cannot be a metric name (strings, label matchers, ranges, grouping label lists,
numbers), then keeps identifiers that are not keywords and not followed by `(` (a function
or an aggregation). Good enough for the expressions kefu-pulse ships; test_promql.py pins it.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NUMBER = re.compile(r"(?<![\w:])\d[\w.]*(?:[eE][+-]\d+)?")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"inf", "nan"}
)
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        follows = text[match.end() :].lstrip()
        if follows.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def variable_query_metric_names(query: str) -> set[str]:
    """Grafana's `label_values(selector, label)`: the label is not a metric."""
    match = _LABEL_VALUES.match(query)
    return metric_names(match.group(1) if match else query)
