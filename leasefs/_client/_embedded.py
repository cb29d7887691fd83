"""The embedded coordinator: started on demand on 127.0.0.1, reused while it runs.

When no coordinator URL is configured, commands that need one call `ensure_running`. It takes
a file lock (so two commands starting at once start one server), reuses the server named in
the state file if it answers, and otherwise starts ``leasefs serve`` detached, with its data
and log under the local data directory, and waits until it is listening.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .._config import StartFailed, _registry, default_data_dir, start_detached
from ._exceptions import LeasefsError

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EmbeddedCoordinator:
    url: str
    pid: int
    data_dir: Path
    log_path: Path


class EmbeddedError(LeasefsError):
    """The embedded coordinator could not be started or stopped; the message says why."""


def _paths(data_dir: Path) -> tuple[Path, Path, Path]:
    return data_dir / "embedded.json", data_dir / "embedded.lock", data_dir / "coordinator.log"


def read_state(data_dir: Path | None = None) -> EmbeddedCoordinator | None:
    """The embedded coordinator recorded in the state file, if it still answers."""
    data_dir = data_dir or default_data_dir()
    state_path, _, log_path = _paths(data_dir)
    try:
        state = json.loads(state_path.read_text())
        url, pid = str(state["url"]), int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _answers(url):
        return None
    return EmbeddedCoordinator(url=url, pid=pid, data_dir=data_dir, log_path=log_path)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/v1/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_running(data_dir: Path | None = None) -> EmbeddedCoordinator:
    """Return the running embedded coordinator, starting it first if needed."""
    data_dir = data_dir or default_data_dir()
    state_path, lock_path, log_path = _paths(data_dir)
    with _locked(lock_path):
        if (running := read_state(data_dir)) is not None:
            return running
        state_path.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "leasefs", "serve",
            "--host", "127.0.0.1", "--port", "0",
            "--data", str(data_dir / "coordinator"),
            "--state-file", str(state_path),
        ]  # fmt: skip
        try:
            return start_detached(
                command, log_path, lambda: read_state(data_dir),
                what="the embedded coordinator", timeout=START_TIMEOUT_S,
            )  # fmt: skip
        except StartFailed as exc:
            raise EmbeddedError(str(exc)) from exc


def stop(data_dir: Path | None = None, timeout: float = 15.0) -> EmbeddedCoordinator | None:
    """Stop the embedded coordinator if it runs; returns what was stopped."""
    data_dir = data_dir or default_data_dir()
    state_path, lock_path, _ = _paths(data_dir)
    with _locked(lock_path):
        running = read_state(data_dir)
        if running is None:
            return None
        try:
            os.kill(running.pid, signal.SIGTERM)
        except ProcessLookupError:
            return running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _registry.process_alive(running.pid):
            time.sleep(0.05)
        if _registry.process_alive(running.pid):
            raise EmbeddedError(f"the embedded coordinator (pid {running.pid}) did not stop")
        state_path.unlink(missing_ok=True)
        return running


def write_state(state_path: Path, url: str) -> None:
    """Called by the server once listening: record where it is, atomically."""
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, state_path)


def resolve_coordinator_url(flag: str | None, repo: Path | None = None) -> str:
    """The configured coordinator URL, or the embedded one (started if needed)."""
    from .._config import resolve

    url = resolve("coordinator", flag, repo)
    if url:
        return str(url).rstrip("/")
    return ensure_running().url
