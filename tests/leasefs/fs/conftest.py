"""Fixtures of the filesystem tests: real FUSE mounts, each served by a process of its own
(`tests.helpers.MountProcess`), all taken away at teardown, on failure too.

Every test runs twice: files opened without handles (the patched pyfuse3's default) and with
a handle per open (``--file-handles``, what a stock pyfuse3 does), the two ways the
passthrough serves file I/O."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leasefs._fs import FILES_BY_INODE
from tests.helpers import MountProcess, stop_all

MountFactory = Callable[..., MountProcess]


@pytest.fixture(params=["inodes", "handles"])
def file_io(request: pytest.FixtureRequest) -> str:
    """How the mounts serve file I/O: "inodes" (no OPEN/RELEASE) or "handles"."""
    if request.param == "inodes" and not FILES_BY_INODE:
        pytest.skip("this pyfuse3 cannot serve files without handles (scripts/pyfuse3/build)")
    return str(request.param)


@pytest.fixture
def mount_dir(tmp_path: Path, file_io: str) -> Iterator[MountFactory]:
    """Start mounts with `mount_dir(directory, *options, script=None)`; all go at teardown.

    `script` replaces ``-m leasefs._fs`` with ``-c script`` (same command line after it).
    """
    started: list[MountProcess] = []
    transport = ["--file-handles"] if file_io == "handles" else []

    def start(directory: Path, *options: str, script: str | None = None) -> MountProcess:
        entry = ["-c", script] if script is not None else ["-m", "leasefs._fs"]
        argv = [sys.executable, *entry, str(directory), *transport, *options]
        log = tmp_path / f"mount-{len(started)}.log"
        mount = MountProcess(directory, argv, log)
        started.append(mount)
        mount.start()
        return mount

    try:
        yield start
    finally:
        stop_all(reversed(started))


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
