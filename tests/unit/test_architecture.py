"""Dependencies run one way (docs/architecture.md); checked on the source, so a stray import fails here."""

from __future__ import annotations

import pytest

from tests.import_graph import Module, modules

MODULES = modules()
FRAMEWORKS = ("redis", "kafka", "aiokafka", "faust", "mode", "prometheus_client", "aiohttp")


def imports_of(module: Module, *prefixes: str) -> list[str]:
    return sorted(n for n in module.imports if any(n == p or n.startswith(p + ".") for p in prefixes))


def in_package(prefix: str) -> list[Module]:
    return [m for m in MODULES if m.name == prefix or m.name.startswith(prefix + ".")]


@pytest.mark.parametrize("module", in_package("streams"), ids=lambda m: m.name)
def test_the_wire_side_never_imports_state_code_except_the_composition_root(module: Module) -> None:
    if module.name != "streams.commands.main":
        assert imports_of(module, "agents") == []


@pytest.mark.parametrize("module", in_package("agents.core"), ids=lambda m: m.name)
def test_the_core_is_pure(module: Module) -> None:
    assert imports_of(module, *FRAMEWORKS, "agents.store", "agents.exposure", "agents.worker") == []


@pytest.mark.parametrize("module", in_package("agents.store"), ids=lambda m: m.name)
def test_the_store_knows_nothing_of_faust_or_the_floor(module: Module) -> None:
    assert (
        imports_of(module, "faust", "mode", "agents.exposure", "agents.worker", "agents.processing.batch")
        == []
    )


@pytest.mark.parametrize("module", in_package("config"), ids=lambda m: m.name)
def test_configuration_depends_on_nothing_of_ours_but_itself(module: Module) -> None:
    assert imports_of(module, "agents", "streams") == []


def test_the_rules_see_the_imports_they_judge() -> None:
    cli = next(m for m in MODULES if m.name == "streams.commands.main")
    assert imports_of(cli, "agents"), "the graph lost the composition root's imports"
    assert len(in_package("agents.core")) >= 7 and len(in_package("streams")) >= 15
