"""Finding which files processes hold open for writing, from /proc, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leasefs._fs import mount_id
from leasefs._mount._open_writers import open_for_writing
from tests.helpers import die_with_parent, reap
from tests.helpers.waiting import wait_for

_HOLD = """
import os, sys, time
fds = [os.open(path, int(flags)) for path, flags in zip(sys.argv[1::2], sys.argv[2::2])]
print("open", flush=True)
time.sleep(60)
"""


@pytest.fixture
def hold_open() -> Iterator[object]:
    """Start a process holding files open: ``hold_open((path, flags), ...)``; it ends after."""
    started: list[subprocess.Popen[str]] = []

    def start(*files: tuple[Path, int]) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", _HOLD]
        for path, flags in files:
            argv += [str(path), str(flags)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "open\n"
        return proc

    try:
        yield start
    finally:
        for proc in started:
            reap(proc)  # type: ignore[arg-type]  # a text-mode Popen: reaped the same
            if proc.stdout is not None:
                proc.stdout.close()


def test_files_open_for_writing_are_found_and_files_open_for_reading_are_not(
    tmp_path: Path, hold_open
) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    for name in ("written.txt", "src/both.txt", "read.txt", "appended.log"):
        (root / name).write_text("x")
    hold_open(
        (root / "written.txt", os.O_WRONLY),
        (root / "src/both.txt", os.O_RDWR),
        (root / "read.txt", os.O_RDONLY),
    )
    hold_open((root / "appended.log", os.O_WRONLY | os.O_APPEND))
    found = open_for_writing(str(root), None, exclude_pid=os.getpid())
    assert found == {"written.txt", "src/both.txt", "appended.log"}


def test_the_daemons_own_descriptors_and_files_outside_are_not_counted(
    tmp_path: Path, hold_open
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "mine.txt").write_text("x")
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / "repository-sibling.txt").write_text("x")  # shares the prefix as text only
    hold_open((tmp_path / "outside.txt", os.O_WRONLY))
    fd = os.open(root / "mine.txt", os.O_WRONLY)
    try:
        assert open_for_writing(str(root), None, exclude_pid=os.getpid()) == set()
        assert open_for_writing(str(root), None, exclude_pid=-1) == {"mine.txt"}
    finally:
        os.close(fd)


def test_a_file_on_another_mount_at_the_same_path_is_not_counted(tmp_path: Path, hold_open) -> None:
    """What a bypasser holds open underneath the mount has the mount's paths too."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.txt").write_text("x")
    hold_open((root / "a.txt", os.O_WRONLY))
    here = _mount_id_of_file(root / "a.txt")
    assert open_for_writing(str(root), here, exclude_pid=os.getpid()) == {"a.txt"}
    assert open_for_writing(str(root), here + 10_000, exclude_pid=os.getpid()) == set()


def test_a_file_closed_is_no_longer_found(tmp_path: Path, hold_open) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.txt").write_text("x")
    proc = hold_open((root / "a.txt", os.O_WRONLY))
    assert open_for_writing(str(root), None, exclude_pid=os.getpid()) == {"a.txt"}
    proc.kill()
    wait_for(
        lambda: open_for_writing(str(root), None, exclude_pid=os.getpid()) == set(),
        what="the writer's descriptors to go",
        timeout=10,
    )


def test_a_path_with_no_leasefs_mount_has_no_mount_id() -> None:
    assert mount_id("/") is None  # mounted, but not leasefs
    assert mount_id("/no/such/mount/point") is None


def _mount_id_of_file(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "mnt_id":
                return int(value)
    finally:
        os.close(fd)
    raise AssertionError("no mnt_id in fdinfo")
