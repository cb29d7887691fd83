"""Child processes: setup commands, timed commands and the coordinator.

Every child has a timeout, so a hung mount fails a figure instead of hanging the benchmark.
Every child we start is stopped by its own PID (never by name), and dies with us if we are
killed (PR_SET_PDEATHSIG). Mounts are in `mounts`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
LEASEFS = VENV_BIN / "leasefs"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 120.0
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

Argv = Sequence[str | os.PathLike[str]]


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the benchmark dies, whatever the cause."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run(
    argv: Argv,
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """A setup command (git, cp, apt-get…) with its output captured."""
    return subprocess.run(
        [os.fspath(a) for a in argv],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        check=check,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


class CommandFailed(Exception):
    """A timed command exited with an unexpected status or ran out of time."""


def time_command(
    argv: Argv,
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    ok_returncodes: Iterable[int] = (0,),
) -> float:
    """Wall-clock seconds of one command, its stdout discarded.

    It runs in a session of its own so that a timeout kills the whole pipeline (``sh -c``
    with children), not just the shell.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        [os.fspath(a) for a in argv],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CommandFailed(f"timed out after {timeout:g} s") from None
    elapsed = time.perf_counter() - started
    if proc.returncode not in set(ok_returncodes):
        message = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CommandFailed(f"exit status {proc.returncode}: {message[0][:200]}")
    return elapsed


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL: only ever the process we started, by its PID."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def log_tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# -- the coordinator -----------------------------------------------------------------------


class Coordinator:
    """`leasefs serve --port 0` on 127.0.0.1, its URL read from its "listening on" line."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def database(self) -> Path:
        return self.data_dir / "coordinator.sqlite3"

    def start(self) -> Coordinator:
        argv = [
            os.fspath(LEASEFS), "serve", "--host", "127.0.0.1", "--port", "0",
            "--data", os.fspath(self.data_dir), "--max-blob-bytes", str(4 << 30),
            # The memory figure has 4 agents hold 100,000 leases: over the default limit.
            "--max-leases-per-agent", str(1 << 20),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None:
            match = _LISTENING.search(log_tail(self.log_path, 100_000))
            if match:
                self.url = match.group(1)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the coordinator did not start:\n{log_tail(self.log_path)}")

    def rss_bytes(self) -> int:
        return _proc_status_kib(self.pid, "VmRSS") * 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def database_bytes(self) -> int:
        """The database with its write-ahead log: what the store occupies on disk now."""
        return sum(
            p.stat().st_size
            for p in (self.database, self.database.with_name(self.database.name + "-wal"))
            if p.exists()
        )

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)


@contextlib.contextmanager
def running_coordinator(data_dir: Path, log_path: Path) -> Iterator[Coordinator]:
    """A coordinator for the duration of a ``with`` block, stopped whatever happens."""
    coordinator = Coordinator(data_dir, log_path)
    try:
        yield coordinator.start()
    finally:
        coordinator.stop()
