"""Which files of the mount some process holds open for writing, found in ``/proc``.

Files opened without handles are opened and closed without the daemon hearing of it, so when
a lease is about to go back (quiet for its grace, or recalled) the keeper asks here whether a
writer still has the file open: giving it back between two writes of one long save would hand
half a file to the next agent. Each process's descriptors are read from ``/proc/<pid>/fd``
(``readlink`` only: nothing is opened through the mount) and their access mode and mount from
``/proc/<pid>/fdinfo``. Processes we may not look into (another user's, without root) count as
holding nothing open; writes through a shared memory mapping are not seen either.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import trio

from .._fs import mount_id
from ._procfs import descriptors, processes

__all__ = ["ProcessWriters", "open_for_writing"]

_WRITABLE = (os.O_WRONLY, os.O_RDWR)


def open_for_writing(
    mount_root: str,
    mount_id: int | None,
    *,
    exclude_pid: int,
    counts: Callable[[int], bool] = lambda pid: True,
) -> set[str]:
    """Repository paths some process other than `exclude_pid` holds open for writing
    through the mount at `mount_root` (an absolute, resolved path). `mount_id`: the mount's
    id in ``/proc/self/mountinfo``, to tell its files from the same paths underneath.
    `counts`: whether a process's files count (those of one agent, in a shared tree)."""
    prefix = mount_root.rstrip("/") + "/"
    found: set[str] = set()
    for pid in processes(exclude=(exclude_pid,)):
        if not counts(pid):
            continue
        for fd, target in descriptors(pid):
            if not target.startswith(prefix) or target.endswith(" (deleted)"):
                continue
            if _writable_on(f"/proc/{pid}/fdinfo/{fd}", mount_id):
                found.add(target[len(prefix) :])
    return found


def _writable_on(fdinfo: str, mount_id: int | None) -> bool:
    flags, mnt = 0, None
    try:
        with open(fdinfo, encoding="ascii") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key == "flags":
                    flags = int(value.strip(), 8)
                elif key == "mnt_id":
                    mnt = int(value.strip())
    except (OSError, ValueError):
        return False
    if mount_id is not None and mnt is not None and mnt != mount_id:
        return False  # the same path in the directory underneath (a bypasser's file)
    return flags & os.O_ACCMODE in _WRITABLE


class ProcessWriters:
    """`open_for_writing` for one mount, run in a worker thread (it reads all of /proc)."""

    def __init__(self, mount_root: Path, counts: Callable[[int], bool] = lambda pid: True) -> None:
        """`mount_root`: absolute and resolved already (resolving it once mounted would look
        it up through the mount, from the thread that serves the mount: a deadlock).
        `counts`: whether a process's files count (one agent's, in a shared tree)."""
        self._root = str(mount_root)
        self._counts = counts
        self._mount_id: int | None = None
        self._pid = os.getpid()

    async def __call__(self) -> set[str]:
        return await trio.to_thread.run_sync(self._look)

    def _look(self) -> set[str]:
        if self._mount_id is None:
            self._mount_id = mount_id(self._root, resolve=False)  # known once mounted
        return open_for_writing(
            self._root, self._mount_id, exclude_pid=self._pid, counts=self._counts
        )
