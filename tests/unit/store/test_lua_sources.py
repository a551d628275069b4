"""What the Lua sources may not do, whatever their tests cover."""

from __future__ import annotations

import re
from importlib import resources

import pytest

LUA = resources.files("agents.store").joinpath("lua")
SCRIPTS = sorted(p.name for p in LUA.iterdir() if p.name.endswith(".lua") and p.name != "prelude.lua")


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_unpacks_a_table_only_through_call_chunked(name: str) -> None:
    """unpack() of a whole argument list dies past ~8,000 values, after the script's earlier
    writes; prelude.lua's call_chunked unpacks CHUNK values at most."""
    assert re.findall(r"(?<![.\w])unpack\(", LUA.joinpath(name).read_text()) == []


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_parses_field_names_only_with_the_shared_pattern(name: str) -> None:
    """A pattern of its own (`%a+` once dropped `w0..w3`) reads other names than the writers write."""
    matches = re.findall(r"string\.match\([^)]*\)", LUA.joinpath(name).read_text())
    assert [m for m in matches if not m.endswith(", SECOND_FIELD)")] == []
