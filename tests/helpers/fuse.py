"""Whether FUSE mounts can be made here, and taking one away whatever state it is in."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from leasefs._fs import is_mounted, unmount

UNMOUNT_TIMEOUT_S = 10.0


def fuse_missing() -> str | None:
    """Why FUSE mounts cannot be made on this machine, or None if they can."""
    if not os.path.exists("/dev/fuse"):
        return "FUSE tests need /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "FUSE tests need fusermount3 (package fuse3)"
    return None


FUSE_MISSING = fuse_missing()
requires_fuse = pytest.mark.skipif(FUSE_MISSING is not None, reason=FUSE_MISSING or "")


def unmount_cleanly(directory: Path, timeout: float = UNMOUNT_TIMEOUT_S) -> None:
    """If a leasefs filesystem is mounted at `directory`: ``fusermount3 -u``, then ``-uz``."""
    if not is_mounted(directory):
        return
    try:
        unmount(directory, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        unmount(directory, lazy=True, timeout=timeout)
