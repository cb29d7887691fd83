"""Backing descriptors per inode, for a kernel that opens files without telling us.

Once `open` answers ENOSYS the kernel sends no OPEN or RELEASE any more: reads and writes
arrive naming only the inode. Opening the backing file for each of them would cost a
syscall per request, so descriptors are kept per inode, the least recently used closed
beyond `capacity`. A file whose name goes away (unlinked, or replaced by a rename) while the
kernel still knows its inode is *pinned*: a process may hold it open, and the descriptor is
then the only way left to reach it. Pinned descriptors stay until the kernel forgets the
inode, which it does as soon as nobody has the file open.

No I/O beyond closing descriptors: the passthrough opens them (it knows the paths).
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from dataclasses import dataclass

from ._inodes import InodeId

__all__ = ["DEFAULT_CAPACITY", "InodeFiles"]

DEFAULT_CAPACITY = 256
"""Descriptors kept for files with a name. Only cold reads and the first write of a file
open one; warm reads never reach the daemon at all."""


@dataclass(slots=True)
class _Kept:
    fd: int
    writable: bool
    readable: bool
    pinned: bool = False


class InodeFiles:
    """Inode -> one open backing descriptor, most recently used last."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[InodeId, _Kept] = OrderedDict()
        self._unpinned = 0

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, inode: InodeId, *, writable: bool) -> int | None:
        """The descriptor kept for `inode`, if one is that can write (`writable`) or read."""
        kept = self._kept.get(inode)
        if kept is None or not (kept.writable if writable else kept.readable):
            return None
        self._kept.move_to_end(inode)
        return kept.fd

    def any_fd(self, inode: InodeId) -> int | None:
        """Whatever descriptor is kept for `inode` (to stat it), if any."""
        kept = self._kept.get(inode)
        return None if kept is None else kept.fd

    def is_pinned(self, inode: InodeId) -> bool:
        kept = self._kept.get(inode)
        return kept is not None and kept.pinned

    def put(self, inode: InodeId, fd: int, *, writable: bool, readable: bool = True) -> None:
        """Keep `fd` (now ours to close) for `inode`, closing the one it replaces."""
        old = self._kept.pop(inode, None)
        pinned = old is not None and old.pinned
        if old is not None:
            self._close(old)
        self._kept[inode] = _Kept(fd, writable, readable, pinned)
        if not pinned:
            self._unpinned += 1
        self._evict()

    def pin(self, inode: InodeId) -> None:
        """`inode`'s name is going away: keep its descriptor until `forget`."""
        kept = self._kept.get(inode)
        if kept is not None and not kept.pinned:
            kept.pinned = True
            self._unpinned -= 1

    def forget(self, inode: InodeId) -> None:
        """The kernel forgot `inode` (or its file was replaced in place): close its descriptor."""
        kept = self._kept.pop(inode, None)
        if kept is not None:
            self._close(kept)

    def close_all(self) -> None:
        for kept in self._kept.values():
            with contextlib.suppress(OSError):
                os.close(kept.fd)
        self._kept.clear()
        self._unpinned = 0

    def _close(self, kept: _Kept) -> None:
        if not kept.pinned:
            self._unpinned -= 1
        with contextlib.suppress(OSError):
            os.close(kept.fd)

    def _evict(self) -> None:
        if self._unpinned <= self._capacity:
            return
        for inode in list(self._kept):  # oldest first
            if self._unpinned <= self._capacity:
                return
            kept = self._kept[inode]
            if not kept.pinned:
                del self._kept[inode]
                self._close(kept)
