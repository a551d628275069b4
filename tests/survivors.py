"""After the suite: no process the tests started may still run. Read from /proc, not from pid
files, so a process whose pid file was lost (or never written) is found too.

    .venv/bin/python -m tests.survivors      exit 1 and list them, if any

A test process is one that names one of this checkout's test stack directories (`.stack/test…`
or `.stack/$KEFU_TEST_STACK…`: the suite's stacks, one per pytest-xdist worker `…-gw0`, `…-gw1`,
and the stack tests' `test-cycle-…`) in its command line or working directory, or that names
this checkout and pytest's temporary directories in its command line or environment (workers,
Prometheus, Alertmanager and browsers the tests start there).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST_TMP = "/pytest-of-"


@dataclass(frozen=True)
class Survivor:
    pid: int
    command: str


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _ancestors(proc: Path, pid: int) -> set[int]:
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        stat = _read(proc / str(pid) / "stat").decode(errors="replace")
        fields = stat.rpartition(")")[2].split()
        pid = int(fields[1]) if len(fields) > 1 else 0
    return found


def stack_prefixes() -> tuple[str, ...]:
    """The test stacks' prefixes, each matched as the start of a name (`test` finds `test-gw1`)."""
    return tuple(dict.fromkeys(("test", os.environ.get("KEFU_TEST_STACK", "test"))))


def survivors(proc: Path = Path("/proc"), root: Path = ROOT, me: int | None = None) -> list[Survivor]:
    stacks = tuple(f"{root}/.stack/{prefix}".encode() for prefix in stack_prefixes())
    spared = _ancestors(proc, os.getpid() if me is None else me)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        cmdline = _read(entry / "cmdline")
        if not cmdline:
            continue  # a kernel thread, or already gone
        try:
            cwd = os.readlink(entry / "cwd").encode()
        except OSError:
            cwd = b""
        environ = _read(entry / "environ")
        ours = str(root).encode() in cmdline or str(root).encode() in environ  # not another checkout's
        in_pytest_tmp = PYTEST_TMP.encode() in cmdline or PYTEST_TMP.encode() in environ
        if any(stack in cmdline for stack in stacks) or cwd.startswith(stacks) or (ours and in_pytest_tmp):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(Survivor(int(entry.name), command[:200]))
    return sorted(found, key=lambda s: s.pid)


def main() -> int:
    left = survivors()
    for survivor in left:
        print(f"survivor: pid {survivor.pid}: {survivor.command}", file=sys.stderr)
    if left:
        print(f"{len(left)} process(es) started by the tests are still running", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
