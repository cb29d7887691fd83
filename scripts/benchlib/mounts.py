"""The mounts: `leasefs mount` (the real command line) and bindfs (the peer).

Each is a child process in the foreground, so we hold its PID; each is taken away in ``stop``
whatever state it is in: the user's way first (`leasefs umount`, which releases leases with
their snapshots), then fusermount3 -u, then -uz as the last resort. Mount processes die with
us (PR_SET_PDEATHSIG) and leasefs mounts use ``auto_unmount``, so even a killed benchmark
leaves no mount behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leasefs._client import _control
from leasefs._config import _registry
from leasefs._fs import is_mounted

from .procs import (
    LEASEFS,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    die_with_parent,
    log_tail,
    run,
    stop_process,
)
from .progress import say

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
                preexec_fn=die_with_parent,
            )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Mounted and recorded: from then on `leasefs umount` and the control socket work."""
        deadline = time.monotonic() + timeout
        while not (is_mounted(self.repo) and _registry.read(self.repo) is not None):
            if not self.alive or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the mount of {self.repo} did not come up:\n{log_tail(self.log_path)}"
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
        """What `leasefs status --json` says of this mount, asked over its control socket."""
        return _control.mount_status(self._socket()).model_dump()

    def settle(self, timeout: float = 600.0) -> Drain:
        """Release every lease now (as `leasefs release` does) and wait until no snapshot is
        pending, so the next measurement does not compete with this one's snapshots."""
        started = time.perf_counter()
        released = _control.release_now(self._socket(), timeout=timeout)
        deadline = time.monotonic() + timeout
        # The idle releaser may still be finishing leases it had taken before our call.
        while True:
            status = self.status()
            if not status["held"] and status["pending_snapshots"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.repo} did not go idle within {timeout:g} s")
            time.sleep(0.02)
        return Drain(time.perf_counter() - started, len(released))

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
            preexec_fn=die_with_parent,
        )

    def finish_stop(self, umount: subprocess.Popen[bytes] | None) -> None:
        """Wait for the umount command; then whatever is left: fusermount3 -u, -uz, SIGTERM."""
        if umount is not None:
            try:
                umount.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                stop_process(umount)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(30 if umount is not None else 0.1)
        force_unmount(self.repo, is_mounted)
        if self._proc is not None:
            stop_process(self._proc)

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


def force_unmount(path: Path, mounted: Callable[[Path], bool], *, expected: bool = False) -> None:
    """Take a mount away: fusermount3 -u, then -uz (lazy) as the last resort. ``expected``:
    this is the normal way out (bindfs), not a leftover worth a warning."""
    for args in (["-u"], ["-u", "-z"]):
        if not mounted(path):
            return
        if not expected or "-z" in args:
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
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while mounted_fstype(self.mountpoint) is None:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"bindfs did not mount:\n{log_tail(self.log_path)}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        force_unmount(self.mountpoint, lambda p: mounted_fstype(p) is not None, expected=True)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
            stop_process(self._proc)


def fuse_mounts_under(root: Path) -> list[str]:
    """FUSE mount points at or below ``root``: after the run this must be empty."""
    prefix = os.path.realpath(root)
    return [
        point
        for point, fstype in _mountinfo()
        if fstype.startswith("fuse") and (point == prefix or point.startswith(prefix + "/"))
    ]
