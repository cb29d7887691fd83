"""Is a leasefs filesystem mounted here, and taking it away: no pyfuse3 needed.

Kept apart from the FUSE code so that commands which only look at mounts (status, umount)
and the coordinator itself run on machines without libfuse.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

__all__ = ["is_mounted", "mount_id", "unmount"]

_FUSERMOUNT = "fusermount3"


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
    return mount_id(path) is not None


def mount_id(path: str | os.PathLike[str], *, resolve: bool = True) -> int | None:
    """The id /proc/self/mountinfo gives the leasefs filesystem mounted exactly at `path`
    (the newest, if several are stacked), None if there is none: what tells a mount's own
    files from the same paths in the directory underneath, and one mount from the next.

    `resolve=False` for a path resolved already: the process serving the mount must not
    resolve its own mountpoint (each lstat is a request to itself).
    """
    target = os.path.realpath(os.fspath(path)) if resolve else os.fspath(path)
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                separator = fields.index("-")
                point, fstype = _unescape(fields[4]), fields[separator + 1]
                if point == target and fstype == "fuse.leasefs":
                    found = int(fields[0])
    except FileNotFoundError:
        return None
    return found


def _unescape(field: str) -> str:
    """Mount points in mountinfo have space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)
