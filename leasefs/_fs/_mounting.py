"""Mounting a `Passthrough` under trio, and unmounting it from outside.

pyfuse3 keeps one session per process, so one process serves one mount.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable

import pyfuse3
import trio

from ._passthrough import Passthrough

__all__ = ["DEFAULT_MAX_TASKS", "is_mounted", "mount_options", "run_mount", "unmount"]

DEFAULT_MAX_TASKS = 128
"""Requests served at once. Each waits for its handler to return, and a handler of the lease
layer may wait for the coordinator: leave room for everyone else's reads and lookups."""

_FUSERMOUNT = "fusermount3"


def mount_options(extra: Iterable[str] = ()) -> set[str]:
    """The options we mount with: the kernel checks permissions, and (when fusermount3 is
    there to do it) the mount goes away by itself if the serving process dies, instead of
    leaving a dead filesystem over the repository."""
    options = set(pyfuse3.default_options) | {"fsname=leasefs", "subtype=leasefs"}
    options.add("default_permissions")
    if shutil.which(_FUSERMOUNT):
        options.add("auto_unmount")
    options.update(extra)
    return options


async def run_mount(
    ops: Passthrough,
    mountpoint: str | os.PathLike[str],
    options: Iterable[str] = (),
    *,
    max_tasks: int = DEFAULT_MAX_TASKS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mount `ops` on `mountpoint` and serve it until unmounted or cancelled.

    Reports started once the mount is in place (requests wait in the kernel until the loop
    runs). Cancelling unmounts; an outside unmount (`unmount`, fusermount3 -u) returns.
    """
    path = os.fspath(mountpoint)
    pyfuse3.init(ops, path, mount_options(options))
    try:
        task_status.started()
        await pyfuse3.main(max_tasks=max_tasks)
    finally:
        pyfuse3.close(unmount=True)  # a no-op if the kernel side is already gone
        ops.close_handles()


def unmount(mountpoint: str | os.PathLike[str], lazy: bool = False, timeout: float = 10.0) -> None:
    """Unmount a FUSE filesystem with fusermount3 -u; with `lazy`, fall back to -uz.

    -u fails while a process still uses the mount (EBUSY); -uz detaches it at once and lets
    the kernel finish it when the last user is gone. Raises OSError if it stays mounted.
    """
    path = os.path.abspath(mountpoint)
    if shutil.which(_FUSERMOUNT) is None:
        raise FileNotFoundError(f"{_FUSERMOUNT} is not installed; cannot unmount {path}")
    attempts = [["-u"], ["-u", "-z"]] if lazy else [["-u"]]
    message = ""
    for args in attempts:
        result = subprocess.run(
            [_FUSERMOUNT, *args, path],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode == 0:
            return
        message = result.stderr.strip() or f"{_FUSERMOUNT} exited with {result.returncode}"
    raise OSError(f"cannot unmount {path}: {message}")


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """Whether a leasefs filesystem is mounted exactly at `path` (from /proc/self/mountinfo)."""
    target = os.path.realpath(os.fspath(path))
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                separator = fields.index("-")
                point, fstype = _unescape(fields[4]), fields[separator + 1]
                if point == target and fstype == "fuse.leasefs":
                    return True
    except FileNotFoundError:
        return False
    return False


def _unescape(field: str) -> str:
    """Mount points in mountinfo have space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)
