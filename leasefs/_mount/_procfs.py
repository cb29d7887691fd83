"""Walking ``/proc``: the processes, and what each one's descriptors point at.

Shared by the two questions the mount asks of other processes: who bypasses it (works in the
directory underneath) and who holds its files open for writing. Only ``readlink``: nothing
here opens or stats a file through the mount. Processes that go away, or that we may not
look into (another user's, without root), are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator

__all__ = ["descriptors", "processes"]


def processes(exclude: Container[int] = ()) -> Iterator[int]:
    """The ids of the processes running now, but those in `exclude`."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) not in exclude:
            yield int(entry.name)


def descriptors(pid: int) -> Iterator[tuple[str, str]]:
    """``(fd, target)`` for each open descriptor of `pid`: its number, and what it points at
    (a path, or e.g. ``socket:[123]``)."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return  # gone, or not ours to look into
    for fd in fds:
        try:
            yield fd, os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue  # closed meanwhile
