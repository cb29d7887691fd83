"""Open files and directories: one backing descriptor per open, never shared.

Sharing one descriptor per inode (as pyfuse3's example does) loses each open's own flags:
O_TRUNC and O_APPEND of one caller leak into another, and a read-only descriptor ends up
serving writes. Here every `open`/`create`/`opendir` gets its own descriptor and handle.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import NewType

from ._inodes import InodeId
from ._listings import Listing

__all__ = ["DirHandle", "FileHandle", "HandleTable", "OpenFile"]

FileHandle = NewType("FileHandle", int)


@dataclass(slots=True)
class OpenFile:
    """One open of a regular file."""

    fd: int
    inode: InodeId
    path: str  # the path it was opened under: what a lease for this open was taken on
    writable: bool


@dataclass(slots=True)
class DirHandle:
    """One open of a directory, with the listing read at offset 0 so later offsets are stable."""

    fd: int
    inode: InodeId
    entries: Listing | None = field(default=None)


class HandleTable:
    """Handle numbers for open files and directories, and counts of write opens per path."""

    def __init__(self) -> None:
        self._files: dict[FileHandle, OpenFile] = {}
        self._dirs: dict[FileHandle, DirHandle] = {}
        self._writers: Counter[str] = Counter()
        self._fds: dict[InodeId, list[int]] = {}  # open descriptors per inode, oldest first
        self._next = 1

    def _number(self) -> FileHandle:
        fh = FileHandle(self._next)
        self._next += 1
        return fh

    def add_file(self, item: OpenFile) -> FileHandle:
        fh = self._number()
        self._files[fh] = item
        self._fds.setdefault(item.inode, []).append(item.fd)
        if item.writable:
            self._writers[item.path] += 1
        return fh

    def add_dir(self, item: DirHandle) -> FileHandle:
        fh = self._number()
        self._dirs[fh] = item
        self._fds.setdefault(item.inode, []).append(item.fd)
        return fh

    def file(self, fh: FileHandle) -> OpenFile:
        return self._files[fh]

    def find_file(self, fh: FileHandle) -> OpenFile | None:
        return self._files.get(fh)

    def dir(self, fh: FileHandle) -> DirHandle:
        return self._dirs[fh]

    def pop_file(self, fh: FileHandle) -> OpenFile:
        item = self._files.pop(fh)
        self._drop_fd(item.inode, item.fd)
        if item.writable:
            self._writers[item.path] -= 1
            if self._writers[item.path] <= 0:
                del self._writers[item.path]
        return item

    def pop_dir(self, fh: FileHandle) -> DirHandle:
        item = self._dirs.pop(fh)
        self._drop_fd(item.inode, item.fd)
        return item

    def _drop_fd(self, inode: InodeId, fd: int) -> None:
        fds = self._fds[inode]
        fds.remove(fd)
        if not fds:
            del self._fds[inode]

    def writers(self, path: str) -> int:
        """How many write handles are open that were opened under `path`."""
        return self._writers.get(path, 0)

    def writing(self) -> frozenset[str]:
        """The paths some write handle was opened under and is still open."""
        return frozenset(self._writers)

    def fd_for(self, inode: InodeId) -> int | None:
        """Any descriptor open on `inode`: the way to reach a file that has no name left, and
        a cheaper way than opening it again (the kernel asks for an extended attribute on
        every write(2))."""
        fds = self._fds.get(inode)
        return fds[0] if fds else None

    def close_all(self) -> None:
        """Close every descriptor (after unmount: the kernel sends no more releases)."""
        items: list[OpenFile | DirHandle] = [*self._files.values(), *self._dirs.values()]
        for item in items:
            with contextlib.suppress(OSError):
                os.close(item.fd)
        self._files.clear()
        self._dirs.clear()
        self._writers.clear()
        self._fds.clear()
