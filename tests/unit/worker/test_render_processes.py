"""The render processes of report_pool.py: another process each, and gone with their worker.

A worker killed with SIGKILL runs no clean-up, so each render process watches its parent
itself; without that, both stayed behind for good (seen before the watch was added).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WORKER = textwrap.dedent(
    """
    import asyncio, os
    from agents.worker.report_pool import ReportPool

    async def main() -> None:
        pool = ReportPool(2, 4)
        pids = set()
        for _ in range(20):
            async with pool.turn():
                pids.add(await pool.run(os.getpid))
            if len(pids) == 2:
                break
        print(*pids, flush=True)
        await asyncio.sleep(60)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_render_processes_leave_when_their_worker_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    worker = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        render_pids = [int(pid) for pid in worker.stdout.readline().split()]
        assert render_pids and worker.pid not in render_pids
        assert all(alive(pid) for pid in render_pids)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in render_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in render_pids), "a render process outlived its worker"
    finally:
        worker.kill()
        worker.wait()
