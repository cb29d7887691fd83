"""`leasefs demo` tells the whole story for real and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from leasefs._client import _embedded
from leasefs._fs import is_mounted


def test_demo_runs_end_to_end_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    for name in ("XDG_DATA_HOME", "LEASEFS_DATA_DIR", "LEASEFS_COORDINATOR"):
        env.pop(name, None)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "leasefs", "demo"], env=env, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "refused, Device or resource busy (EBUSY). Held by agent-A" in out
        assert "A's bytes appear in B's tree" in out and "def farewell():" in out
        assert "A has both functions" in out
        demo_dir = out.split("two clones in ", 1)[1].split(":", 1)[0]
        assert not Path(demo_dir).exists(), "the demo left its repository behind"
        assert not is_mounted(Path(demo_dir) / "agent-a")
    finally:
        _embedded.stop(tmp_path / ".local" / "share" / "leasefs")
