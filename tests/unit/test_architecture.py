"""Dependencies run one way (docs/architecture.md); checked on the source, so a stray import fails here."""

from __future__ import annotations

import ast

import pytest

from tests.import_graph import Module, modules

MODULES = modules()
FRAMEWORKS = ("redis", "kafka", "aiokafka", "faust", "mode", "prometheus_client", "aiohttp")


def imports_of(module: Module, *prefixes: str) -> list[str]:
    return sorted(n for n in module.imports if any(n == p or n.startswith(p + ".") for p in prefixes))


def in_package(prefix: str) -> list[Module]:
    return [m for m in MODULES if m.name == prefix or m.name.startswith(prefix + ".")]


# Inside streams/ each folder has one job, and imports run down this list only: the contract is
# the bottom (config is below everything), the commands are the top and the one way into agents/.
STREAMS_LAYERS: dict[str, tuple[str, ...]] = {
    "streams.contract": ("config", "streams.contract"),
    "streams.wire": ("config", "streams.contract", "streams.wire"),
    "streams.render": ("config", "streams.contract", "streams.render"),
    "streams.simulation": ("config", "streams.contract", "streams.wire", "streams.simulation"),
    # robot notices: read alerts off the wire, word them with render, post them over HTTP
    "streams.notify": ("config", "streams.contract", "streams.wire", "streams.render", "streams.notify"),
}
OURS = ("agents", "config", "streams")
LONGEST_FUNCTION = 50  # lines, from `def` to its last line


def streams_folder(module: Module) -> str:
    return ".".join(module.name.split(".")[:2])


@pytest.mark.parametrize("module", in_package("streams"), ids=lambda m: m.name)
def test_streams_folders_import_only_downwards(module: Module) -> None:
    allowed = STREAMS_LAYERS.get(streams_folder(module))
    if allowed is None:  # streams.commands, and the package roots: above everything
        assert module.name == "streams" or streams_folder(module) in ("streams.commands", "streams.__main__")
        return
    assert [n for n in imports_of(module, *OURS) if not imports_of_one(n, allowed)] == []


def imports_of_one(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", in_package("streams"), ids=lambda m: m.name)
def test_only_the_commands_import_state_code(module: Module) -> None:
    if streams_folder(module) not in ("streams.commands", "streams.__main__"):
        assert imports_of(module, "agents") == []


@pytest.mark.parametrize("module", in_package("agents.core"), ids=lambda m: m.name)
def test_the_core_imports_only_the_contract_and_itself(module: Module) -> None:
    allowed = ("config", "streams.contract", "agents.core")
    assert [n for n in imports_of(module, *OURS) if not imports_of_one(n, allowed)] == []


def _functions(module: Module) -> list[tuple[str, int]]:
    tree = ast.parse(module.path.read_text(encoding="utf-8"))
    return [
        (f"{node.name} (line {node.lineno})", (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_no_function_is_longer_than_fifty_lines(module: Module) -> None:
    assert [(name, lines) for name, lines in _functions(module) if lines > LONGEST_FUNCTION] == []


@pytest.mark.parametrize("module", in_package("agents.core"), ids=lambda m: m.name)
def test_the_core_is_pure(module: Module) -> None:
    assert imports_of(module, *FRAMEWORKS, "agents.store", "agents.exposure", "agents.worker") == []


@pytest.mark.parametrize("module", in_package("agents.store"), ids=lambda m: m.name)
def test_the_store_knows_nothing_of_faust_or_the_floor(module: Module) -> None:
    assert imports_of(module, "faust", "mode", "agents.exposure", "agents.worker", "agents.processing") == []
    # Where a key lives is the partitioner's rule; no Kafka client, no settings-to-topic logic.
    wire = [
        n for n in imports_of(module, "streams", "kafka", "aiokafka") if not n.startswith("streams.contract")
    ]
    assert [n for n in wire if not n.startswith("streams.wire.partitioning")] == []


@pytest.mark.parametrize("module", in_package("agents.exposure"), ids=lambda m: m.name)
def test_the_floor_and_reports_read_state_through_the_protocols_only(module: Module) -> None:
    assert imports_of(module, "redis", "kafka", "aiokafka", "faust", "streams.wire", "streams.render") == []
    assert imports_of(module, "agents.processing", "agents.worker", "streams.commands") == []


@pytest.mark.parametrize("module", in_package("config"), ids=lambda m: m.name)
def test_configuration_depends_on_nothing_of_ours_but_itself(module: Module) -> None:
    assert imports_of(module, "agents", "streams") == []


def test_the_rules_see_the_imports_they_judge() -> None:
    cli = next(m for m in MODULES if m.name == "streams.commands.main")
    assert imports_of(cli, "agents"), "the graph lost the composition root's imports"
    assert len(in_package("agents.core")) >= 7 and len(in_package("streams")) >= 15
    decoding = next(m for m in MODULES if m.name == "streams.wire.decoding")
    assert imports_of(decoding, "streams.contract"), "the graph lost the wire's imports of the contract"
    assert max(lines for m in MODULES for _, lines in _functions(m)) > 10, "the function lengths are read"


def test_every_error_we_define_derives_from_the_one_root() -> None:
    """`KefuError` (config/errors.py) is caught once, in streams/commands/base.py: an error class
    outside it would end a command in a traceback instead of its sentence and exit code."""
    import importlib

    from config.errors import KefuError

    defined = [
        thing
        for module in MODULES
        if not module.name.endswith("__main__")  # running it would start the command line
        for thing in vars(importlib.import_module(module.name)).values()
        if isinstance(thing, type) and issubclass(thing, BaseException) and thing.__module__ == module.name
    ]
    assert len(defined) >= 20, "the walk lost the error classes it judges"
    assert [f"{c.__module__}.{c.__qualname__}" for c in defined if not issubclass(c, KefuError)] == []
