"""The project's modules, their sizes and who imports whom, read from the source (ast).

    .venv/bin/python -m tests.import_graph         the module list with line counts and imports
    .venv/bin/python -m tests.import_graph --dot   the same graph for Graphviz

tests/unit/test_architecture.py holds the rules this graph must keep.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "config", "streams")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    lines: int
    imports: frozenset[str]  # every imported module, third-party ones included


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> frozenset[str]:
    found: set[str] = set()
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def modules() -> list[Module]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            out.append(Module(module_name(path), path, text.count("\n"), _imports(ast.parse(text))))
    return out


def first_party(module: Module, known: set[str]) -> list[str]:
    """The project's modules that `module` imports (a `from pkg import name` of a module counts)."""
    return sorted({name for name in module.imports if name in known} - {module.name})


def main(argv: list[str]) -> None:
    found = modules()
    known = {m.name for m in found}
    if "--dot" in argv:
        print("digraph kefu_pulse {\n  rankdir=LR;")
        for module in found:
            for target in first_party(module, known):
                print(f'  "{module.name}" -> "{target}";')
        print("}")
        return
    for module in found:
        targets = first_party(module, known)
        print(f"{module.lines:5d}  {module.name}" + (f"  -> {', '.join(targets)}" if targets else ""))
    print(f"{sum(m.lines for m in found):5d}  total, {len(found)} modules")


if __name__ == "__main__":
    main(sys.argv[1:])
