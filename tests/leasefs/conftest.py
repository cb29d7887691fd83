"""Real FUSE mounts for the filesystem tests, each served by a process of its own.

A test must never serve the mount it uses from its own process: its first syscall on the
mount would wait for a request loop that cannot run. So every mount is a child process
(``python -m leasefs._fs``, or a script standing in for the lease layer), and every mount is
taken away in a finalizer: fusermount3 -u, then -uz, then the child is stopped by its PID.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leasefs._fs import is_mounted, unmount

MOUNT_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def _fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "FUSE tests need /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "FUSE tests need fusermount3 (package fuse3)"
    return None


_MISSING = _fuse_missing()
requires_fuse = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies, so no mount outlives the run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class MountProcess:
    """One mount of `directory` over itself, served by a child process."""

    def __init__(self, directory: Path, argv: list[str], log: Path) -> None:
        self.directory = directory
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not self.mounted:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mount process exited early:\n{self.output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"not mounted after {MOUNT_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.02)
        while "mounted" not in self.output():  # the background task (if any) has started
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"no 'mounted' line after {MOUNT_TIMEOUT}s")
            time.sleep(0.02)

    @property
    def mounted(self) -> bool:
        return is_mounted(self.directory)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Unmount (politely, then lazily) and make sure the child is gone."""
        if self.mounted:
            try:
                unmount(self.directory, timeout=STOP_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                unmount(self.directory, lazy=True, timeout=STOP_TIMEOUT)
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)


MountFactory = Callable[..., MountProcess]


@pytest.fixture
def mount_dir(tmp_path: Path) -> Iterator[MountFactory]:
    """Start mounts with `mount_dir(directory, *options, script=None)`; all go at teardown.

    `script` replaces ``-m leasefs._fs`` with ``-c script`` (same command line after it).
    """
    started: list[MountProcess] = []

    def start(directory: Path, *options: str, script: str | None = None) -> MountProcess:
        entry = ["-c", script] if script is not None else ["-m", "leasefs._fs"]
        argv = [sys.executable, *entry, str(directory), *options]
        log = tmp_path / f"mount-{len(started)}.log"
        mount = MountProcess(directory, argv, log)
        started.append(mount)
        mount.start()
        return mount

    try:
        yield start
    finally:
        for mount in reversed(started):
            mount.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty directory to be mounted over."""
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def mnt(repo: Path, mount_dir: MountFactory) -> Path:
    """`repo`, mounted over itself with a plain passthrough."""
    mount_dir(repo)
    return repo
