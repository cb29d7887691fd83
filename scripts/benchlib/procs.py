"""Child processes: timed commands, the coordinator, leasefs mounts and bindfs mounts.

Every child has a timeout, so a hung mount fails a figure instead of hanging the benchmark.
Every child we start is stopped by its own PID (never by name), and dies with us if we are
killed (PR_SET_PDEATHSIG); FUSE mounts use ``auto_unmount`` or are taken away in ``stop``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leasefs import _control, _registry
from leasefs._fs import is_mounted

from .progress import say

VENV_BIN = Path(sys.executable).parent
LEASEFS = VENV_BIN / "leasefs"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 120.0
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

Argv = Sequence[str | os.PathLike[str]]


def _die_with_parent() -> None:
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


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL: only ever the process we started, by its PID."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _log_tail(path: Path, chars: int = 1500) -> str:
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
            LEASEFS, "serve", "--host", "127.0.0.1", "--port", "0", "--data", self.data_dir,
            "--max-blob-bytes", str(4 << 30),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [os.fspath(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None:
            match = _LISTENING.search(_log_tail(self.log_path, 100_000))
            if match:
                self.url = match.group(1)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the coordinator did not start:\n{_log_tail(self.log_path)}")

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
            _stop_process(self._proc)


@contextlib.contextmanager
def running_coordinator(data_dir: Path, log_path: Path) -> Any:
    """A coordinator for the duration of a ``with`` block, stopped whatever happens."""
    coordinator = Coordinator(data_dir, log_path)
    try:
        yield coordinator.start()
    finally:
        coordinator.stop()


# -- leasefs mounts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    """What it took to release a mount's leases with their snapshots and go idle."""

    seconds: float
    released: int


class LeasefsMount:
    """`leasefs mount REPO --foreground` as a child process, the way a user runs it.

    ``LEASEFS_DATA_DIR`` must point at the benchmark's own directory in ``os.environ``
    (set once by the entry point): the children inherit it and `_registry` reads it.
    """

    def __init__(
        self,
        repo: Path,
        *,
        url: str,
        workspace: str,
        agent: str,
        log_path: Path,
        options: Sequence[str] = (),
    ) -> None:
        self.repo = repo
        self.agent = agent
        self.log_path = log_path
        self.argv = [
            os.fspath(LEASEFS), "mount", os.fspath(repo), "--foreground", "--coordinator", url,
            "--workspace", workspace, "--agent", agent, *options,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LeasefsMount:
        """Start the mount process; `wait_ready` says when it serves (start many, then wait)."""
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                preexec_fn=_die_with_parent,
            )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Mounted and recorded: from then on `leasefs umount` and the control socket work."""
        deadline = time.monotonic() + timeout
        while not (is_mounted(self.repo) and _registry.read(self.repo) is not None):
            if not self.alive or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the mount of {self.repo} did not come up:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.02)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _socket(self) -> Path:
        record = _registry.read(self.repo)
        if record is None:
            raise RuntimeError(f"no mount record for {self.repo}")
        return Path(record.socket)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = _control.call(self._socket(), {"op": "status"}, timeout=30)[
            "status"
        ]
        return status

    def settle(self, timeout: float = 600.0) -> Drain:
        """Release every lease now (as `leasefs release` does) and wait until no snapshot is
        pending, so the next measurement does not compete with this one's snapshots."""
        started = time.perf_counter()
        answer = _control.call(self._socket(), {"op": "release", "paths": []}, timeout=timeout)
        deadline = time.monotonic() + timeout
        # The idle releaser may still be finishing leases it had taken before our call.
        while True:
            status = self.status()
            if not status["held"] and status["pending_snapshots"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.repo} did not go idle within {timeout:g} s")
            time.sleep(0.02)
        return Drain(time.perf_counter() - started, len(answer["released"]))

    def begin_stop(self) -> subprocess.Popen[bytes] | None:
        """Ask for `leasefs umount REPO` (releases with snapshots, then unmounts); returns the
        command's process so that many mounts can stop at once."""
        if not self.alive:
            return None
        return subprocess.Popen(
            [os.fspath(LEASEFS), "umount", os.fspath(self.repo)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def finish_stop(self, umount: subprocess.Popen[bytes] | None) -> None:
        """Wait for the umount command; then whatever is left: fusermount3 -u, -uz, SIGTERM."""
        if umount is not None:
            try:
                umount.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _stop_process(umount)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(30 if umount is not None else 0.1)
        force_unmount(self.repo, is_mounted)
        if self._proc is not None:
            _stop_process(self._proc)

    def stop(self) -> None:
        self.finish_stop(self.begin_stop())


def stop_mounts(mounts: Sequence[LeasefsMount]) -> None:
    """Stop many mounts at once (each `leasefs umount` takes a Python start-up)."""
    pending = []
    for mount in mounts:
        try:
            pending.append((mount, mount.begin_stop()))
        except OSError:
            pending.append((mount, None))
    for mount, umount in pending:
        mount.finish_stop(umount)


def force_unmount(path: Path, mounted: Any) -> None:
    """The last resort for a mount left behind: fusermount3 -u, then -uz (lazy)."""
    for args in (["-u"], ["-u", "-z"]):
        if not mounted(path):
            return
        say(f"  unmounting {path} with fusermount3 {' '.join(args)}")
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            run(["fusermount3", *args, path], timeout=30, check=False)


# -- bindfs, the peer ---------------------------------------------------------------------


def ensure_bindfs() -> str | None:
    """The bindfs executable, installed with apt-get if missing; None if it cannot be had."""
    found = shutil.which("bindfs")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say("bindfs is missing: apt-get install -y bindfs (once)")
    for step in ([], ["update"]):
        if step:
            with contextlib.suppress(subprocess.SubprocessError):
                run(["apt-get", "-q", *step], timeout=300, env=env, check=False)
        with contextlib.suppress(subprocess.SubprocessError):
            run(["apt-get", "install", "-y", "-q", "bindfs"], timeout=600, env=env, check=False)
        if shutil.which("bindfs"):
            return shutil.which("bindfs")
    return None


def _mountinfo() -> Iterator[tuple[str, str]]:
    """(mount point, filesystem type) of every mount this process sees."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            yield point, fields[fields.index("-") + 1]


def mounted_fstype(path: Path) -> str | None:
    """The filesystem type mounted exactly at ``path``, if any."""
    target = os.path.realpath(path)
    return next((fstype for point, fstype in _mountinfo() if point == target), None)


class BindfsMount:
    """``bindfs -f SOURCE MOUNTPOINT`` in the foreground, so we hold its PID."""

    def __init__(self, bindfs: str, source: Path, mountpoint: Path, log_path: Path) -> None:
        self.bindfs = bindfs
        self.source = source
        self.mountpoint = mountpoint
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BindfsMount:
        self.mountpoint.mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self.bindfs, "-f", os.fspath(self.source), os.fspath(self.mountpoint)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while mounted_fstype(self.mountpoint) is None:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"bindfs did not mount:\n{_log_tail(self.log_path)}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        force_unmount(self.mountpoint, lambda p: mounted_fstype(p) is not None)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
            _stop_process(self._proc)


def fuse_mounts_under(root: Path) -> list[str]:
    """FUSE mount points at or below ``root``: after the run this must be empty."""
    prefix = os.path.realpath(root)
    return [
        point
        for point, fstype in _mountinfo()
        if fstype.startswith("fuse") and (point == prefix or point.startswith(prefix + "/"))
    ]
