"""Starting a leasefs process that outlives the command which starts it, and watching it come up."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class StartFailed(Exception):
    """The detached process failed or did not come up; the message quotes its log."""


def start_detached(
    command: Sequence[str],
    log_path: Path,
    ready: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
) -> T:
    """Run ``command`` in a new session (``setsid -f``: not our child, so it outlives us), its
    output appended to ``log_path``; return ``ready()``'s first non-None answer.

    Raises `StartFailed` as soon as the log shows a traceback or a leasefs error, or at
    ``timeout``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        subprocess.run(
            ["setsid", "-f", *command],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=True, cwd="/",
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := ready()) is not None:
            return result
        text = log_since(log_path, start)
        if "Traceback" in text or "leasefs: error:" in text or "leasefs: cannot" in text:
            raise StartFailed(f"{what} failed to start; from {log_path}:\n{text[-3000:]}")
        time.sleep(0.05)
    raise StartFailed(f"{what} did not come up within {timeout:g} s; see {log_path}")


def log_since(path: Path, start: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")
    except OSError:
        return ""
