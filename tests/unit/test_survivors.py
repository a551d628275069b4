"""The after-suite check finds test processes from /proc alone, and spares everything else."""

from __future__ import annotations

import os
from pathlib import Path

from tests.survivors import survivors

ROOT = Path("/work/checkout")


def fake_process(
    proc: Path, pid: int, cmdline: str, cwd: str = "/", environ: str = "", ppid: int = 1
) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
    (entry / "environ").write_bytes(environ.replace(" ", "\0").encode())
    (entry / "stat").write_text(f"{pid} (x) S {ppid} 0 0")
    os.symlink(cwd, entry / "cwd")


def test_test_processes_are_found_and_others_spared(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_process(proc, 10, "redis-server 127.0.0.1:7000", cwd=f"{ROOT}/.stack/test/redis")
    fake_process(proc, 11, f"java -Dkefu.state={ROOT}/.stack/test-cycle-3/kafka kafka.Kafka")
    fake_process(
        proc, 12, "prometheus --config.file=/tmp/pytest-of-root/p0/prometheus.yml", environ=f"PWD={ROOT}"
    )
    fake_process(proc, 20, "redis-server 127.0.0.1:7001", cwd=f"{ROOT}/.stack/default/redis")  # a demo
    fake_process(proc, 21, "prometheus --config.file=/tmp/pytest-of-root/p1/p.yml", environ="PWD=/elsewhere")
    fake_process(proc, 22, "bash")
    fake_process(proc, 30, f"python -m pytest {ROOT}/.stack/test", ppid=1)  # the checker's parent
    fake_process(proc, 31, "python -m tests.survivors", ppid=30)
    found = survivors(proc, ROOT, me=31)
    assert [s.pid for s in found] == [10, 11, 12]
    assert found[0].command == "redis-server 127.0.0.1:7000"
