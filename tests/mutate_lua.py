"""Mutants of the store's Lua scripts, for `tests.mutate`: flipped comparisons, nudged integers,
narrowed patterns.

The scripts are where counters are summed and markers compared, so a reader that drops a field
(a pattern whose class is too narrow) or an off-by-one edge (`<` for `<=`) must fail a test that
runs the script on a real Redis. Lua is scanned line by line: comments and string literals are
skipped for comparisons, and string literals that are Lua patterns get their classes narrowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# `~=`/`==` swap; the order ones flip their edge. Longest first so `<=` is not read as `<`.
COMPARISONS = {"<=": "<", ">=": ">", "~=": "==", "==": "~=", "<": "<=", ">": ">="}
_COMPARISON = re.compile(r"<=|>=|~=|==|<|>")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# A class in a pattern, and a narrower one that still matches the usual ids: the bug these
# stand for is a reader whose pattern silently skips names with digits or punctuation.
NARROWER = {"%w": "%a", "%d": "[0-8]", ".": "%a", "%S": "%a"}
_CLASS = re.compile(r"%[wdS]|(?<!%)\.")
_INTEGER = re.compile(r"(?<![\w.])\d+(?![\w.])")


@dataclass(frozen=True)
class LuaMutation:
    line: int
    col: int
    old: str
    new: str
    kind: str  # "flip", "+1", "-1" or "pattern"


def _code_spans(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The line without its comment, and its string literals as (start, end, literal)."""
    strings = [(m.start(), m.end(), m.group()) for m in _STRING.finditer(text)]
    comment = text.find("--")
    while comment >= 0 and any(start <= comment < end for start, end, _ in strings):
        comment = text.find("--", comment + 2)
    if comment >= 0:
        text = text[:comment]
        strings = [s for s in strings if s[1] <= comment]
    return text, strings


def _is_pattern(literal: str) -> bool:
    body = literal[1:-1]
    return body.startswith("^") or "%" in body


def lua_mutations(path: Path) -> Iterator[LuaMutation]:
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        code, strings = _code_spans(raw)
        inside = [(start, end) for start, end, _ in strings]
        for match in _COMPARISON.finditer(code):
            if not any(start <= match.start() < end for start, end in inside):
                old = match.group()
                yield LuaMutation(number, match.start(), old, COMPARISONS[old], "flip")
        for match in _INTEGER.finditer(code):
            if not any(start <= match.start() < end for start, end in inside):
                value = int(match.group())
                yield LuaMutation(number, match.start(), match.group(), str(value + 1), "+1")
                if value > 0:
                    yield LuaMutation(number, match.start(), match.group(), str(value - 1), "-1")
        for start, _end, literal in strings:
            if not _is_pattern(literal):
                continue
            for match in _CLASS.finditer(literal[1:-1]):
                old = match.group()
                yield LuaMutation(number, start + 1 + match.start(), old, NARROWER[old], "pattern")
