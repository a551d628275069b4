"""Stand-ins for agents/worker/report_render.py that run in the render processes.

They must be module-level (the pool pickles them by name) and they talk to the test through
files, since a render process shares no memory with it: `KEFU_TEST_RENDER_DIR` (inherited
by the spawned processes) holds one `started-<pid>-<n>` file per render begun, and the
renders wait for a `release` file there.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RENDER_DIR = "KEFU_TEST_RENDER_DIR"
WAIT_SECONDS = 10.0  # only ever reached when the behaviour under test is missing


def held_page(*_: Any) -> bytes:
    """A page render that holds its process until the test releases it."""
    folder = Path(os.environ[RENDER_DIR])
    (folder / f"started-{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return b"<!doctype html><p>a report</p>"


def process_of_json(*_: Any) -> bytes:
    """The JSON report's stand-in: says which process encoded it."""
    return json.dumps({"pid": os.getpid()}).encode()
