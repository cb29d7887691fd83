"""File I/O: opening and creating files, reading, writing, syncing and closing them.

Every open holds a backing descriptor in the handle table, and reads and writes are pread and
pwrite on it, synchronously (no writeback cache), so an error is reported by the call that
met it. An open that could write passes the `before_mutation` hook first; closing it calls
`after_write_release`.
"""

from __future__ import annotations

import errno
import os
import stat

import trio
from pyfuse3 import (
    EntryAttributes,
    FileHandleT,
    FileInfo,
    FileNameT,
    FlagT,
    FUSEError,
    InodeT,
    ModeT,
    RequestContext,
)

from ._base import PassthroughBase, _rel
from ._errors import fuse_handler, quiet_handler
from ._handles import FileHandle, OpenFile
from ._inodes import InodeId
from ._mutation import Mutation

__all__ = ["FileHandlers"]

# Flags the kernel handles itself, or that cannot be honoured with Python's unaligned buffers.
_NOT_PASSED_ON = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | getattr(os, "O_DIRECT", 0)


class FileHandlers(PassthroughBase):
    """Open, create, read, write, sync and close files."""

    @fuse_handler
    async def open(self, inode: InodeT, flags: FlagT, ctx: RequestContext) -> FileInfo:
        ino = InodeId(inode)
        truncate = bool(flags & os.O_TRUNC)
        writable = truncate or (flags & os.O_ACCMODE) != os.O_RDONLY
        if writable:
            kind = Mutation.TRUNCATE if truncate else Mutation.WRITE_OPEN
            (path,) = await self._admit(ctx, kind, lambda: (self._path_to_write(ino),))
        else:
            path = self._readable_path(ino)
        fd = os.open(_rel(path), _backing_flags(flags), dir_fd=self._root)
        try:
            return self._new_open(fd, ino, path, writable)
        except BaseException:
            os.close(fd)
            raise

    @fuse_handler
    async def create(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        flags: FlagT,
        ctx: RequestContext,
    ) -> tuple[FileInfo, EntryAttributes]:
        (path,) = await self._admit(
            ctx, Mutation.CREATE, lambda: (self._child(parent_inode, name),)
        )
        base = _backing_flags(flags) | os.O_CREAT
        try:
            fd = os.open(path, base | os.O_EXCL, stat.S_IMODE(mode), dir_fd=self._root)
            created = True
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            fd = os.open(path, base & ~os.O_CREAT, dir_fd=self._root)
            created = False
        try:
            st = os.fstat(fd)
            if created:
                st = self._settle_new(path, st, mode, ctx, fd)
            writable = created or bool(flags & os.O_TRUNC)
            writable = writable or (flags & os.O_ACCMODE) != os.O_RDONLY
            entry = self._remember(path, st)
            return self._new_open(fd, InodeId(entry.st_ino), path, writable), entry
        except BaseException:
            os.close(fd)
            raise

    def _new_open(self, fd: int, inode: InodeId, path: str, writable: bool) -> FileInfo:
        st = os.fstat(fd)
        fh = self._handles.add_file(OpenFile(fd, inode, path, writable))
        # Keeping the page cache across opens is safe while every change goes through this
        # inode; a second hard link is another inode to the kernel, whose cache we'd miss.
        keep = stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        return FileInfo(fh=fh, keep_cache=keep)

    @fuse_handler
    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes:
        # Into one buffer reused for every read: pyfuse3 copies the reply out before any other
        # task runs, and nothing here awaits between filling the buffer and returning it.
        # (A fresh bytes object per 128 KiB request was a seventh of a large read's cost.)
        fd = self._handles.file(FileHandle(fh)).fd
        if size > len(self._read_buffer):
            return os.pread(fd, size, off)
        done = os.preadv(fd, [self._read_buffer[:size]], off)
        return self._read_buffer[:done]  # type: ignore[return-value]  # pyfuse3 takes any buffer

    @fuse_handler
    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        fd = self._handles.file(FileHandle(fh)).fd
        view = memoryview(buf)
        done = 0
        while done < len(view):  # the kernel needs all of it written (no direct_io)
            done += os.pwrite(fd, view[done:], off + done)
        return done

    async def flush(self, fh: FileHandleT) -> None:
        """Not served: ENOSYS once makes the kernel stop sending FLUSH on every close(2).

        That is a third of the requests of reading a file (open, flush, release). Nothing is
        lost: writes reach the backing file synchronously in `write` (no writeback cache), so
        their errors are reported there, and a local backing filesystem's close(2) reports none.
        """
        raise FUSEError(errno.ENOSYS)

    @fuse_handler
    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        fd = self._handles.file(FileHandle(fh)).fd
        await trio.to_thread.run_sync(os.fdatasync if datasync else os.fsync, fd)

    @quiet_handler
    async def release(self, fh: FileHandleT) -> None:
        handle = FileHandle(fh)
        opened = self._handles.pop_file(handle)
        os.close(opened.fd)
        if opened.writable:
            await self.after_write_release(opened.path, handle)


def _backing_flags(flags: int) -> int:
    return (flags & ~_NOT_PASSED_ON) | os.O_NOFOLLOW | os.O_CLOEXEC
