"""File I/O: opening and creating files, reading, writing, syncing and closing them.

Reads and writes are pread and pwrite on a backing descriptor, synchronously (no writeback
cache), so an error is reported by the call that met it. Two ways to get that descriptor:

- *without file handles* (the patched pyfuse3's `files_without_handles`): `open` answers
  ENOSYS, after which the kernel sends no OPEN or RELEASE at all and keeps every file's
  pages; requests name the inode, served by the descriptors kept in `InodeFiles`.
- *with file handles* (`file_handles=True`, and a stock pyfuse3): every open holds its own
  backing descriptor in the handle table; closing one that could write calls
  `after_write_release`.

Either way a write passes the `before_mutation` hook first (every write, not the open: an
open is not a change, and without handles it is not even seen), and so does a truncating
open when the kernel truncates inside OPEN (with handles: FUSE_CAP_ATOMIC_O_TRUNC).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass

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

from ._at import at
from ._base import PassthroughBase, _open_backing
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
        if self.files_without_handles:
            # Answered once: the kernel then opens every file itself (FUSE's no_open), and a
            # truncating open comes as a setattr of the size, which `setattr` admits.
            raise FUSEError(errno.ENOSYS)
        ino = InodeId(inode)
        truncate = bool(flags & os.O_TRUNC)
        writable = truncate or (flags & os.O_ACCMODE) != os.O_RDONLY
        if truncate:
            (path,) = await self._admit(ctx, Mutation.TRUNCATE, lambda: (self._path_to_write(ino),))
        elif writable:
            path = self._path_to_write(ino)
        else:
            path = self._readable_path(ino)
        with at(self._root, path) as (folder, leaf):
            fd = os.open(leaf, _backing_flags(flags), dir_fd=folder)
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
        if self.files_without_handles:
            return self._create_without_handle(path, mode, flags, ctx)
        fd, created = self._create_or_open(path, _backing_flags(flags), mode, flags)
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

    def _create_without_handle(
        self, path: str, mode: ModeT, flags: FlagT, ctx: RequestContext
    ) -> tuple[FileInfo, EntryAttributes]:
        """Create (or open) `path` with a descriptor kept for its inode: read-write whatever
        the caller asked, since every later open of the file shares it (no O_APPEND either:
        the kernel sends each write's offset, at the end for an appending open)."""
        base = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        fd, created = self._create_or_open(path, base, mode, flags)
        try:
            if not created and flags & os.O_TRUNC:
                os.ftruncate(fd, 0)  # the kernel takes the file for new: it truncates nothing
            st = os.fstat(fd)
            if created:
                st = self._settle_new(path, st, mode, ctx, fd)
            entry = self._remember(path, st)
        except BaseException:
            os.close(fd)
            raise
        self._files.put(InodeId(entry.st_ino), fd, writable=True)
        return FileInfo(fh=0, keep_cache=True), entry

    def _create_or_open(self, path: str, base: int, mode: ModeT, flags: FlagT) -> tuple[int, bool]:
        """Open `path` with `base` flags, creating it (with exactly `mode`'s permission bits)
        unless it exists; an existing file fails only for the caller's O_EXCL (the kernel
        may ask to create a name it has not seen made). Returns the descriptor and whether
        the file was made now."""
        with at(self._root, path) as (folder, leaf):
            try:
                made = base | os.O_CREAT | os.O_EXCL
                return os.open(leaf, made, stat.S_IMODE(mode), dir_fd=folder), True
            except FileExistsError:
                if flags & os.O_EXCL:
                    raise
                return os.open(leaf, base & ~os.O_CREAT, dir_fd=folder), False

    def _new_open(self, fd: int, inode: InodeId, path: str, writable: bool) -> FileInfo:
        st = os.fstat(fd)
        fh = self._handles.add_file(OpenFile(fd, inode, path, writable))
        # Keeping the page cache across opens is safe while every change goes through this
        # inode; a second hard link is another inode to the kernel, whose cache we'd miss.
        keep = stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        return FileInfo(fh=fh, keep_cache=keep)

    @fuse_handler
    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes:
        """`fh` is the inode without file handles (the patched pyfuse3 passes it there)."""
        # Into one buffer reused for every read: pyfuse3 copies the reply out before any other
        # task runs, and nothing here awaits between filling the buffer and returning it.
        # (A fresh bytes object per 128 KiB request was a seventh of a large read's cost.)
        if self.files_without_handles:
            fd = self._file_fd(InodeId(fh), writable=False)
        else:
            fd = self._handles.file(FileHandle(fh)).fd
        if size > len(self._read_buffer):
            return os.pread(fd, size, off)
        done = os.preadv(fd, [self._read_buffer[:size]], off)
        return self._read_buffer[:done]  # type: ignore[return-value]  # pyfuse3 takes any buffer

    @fuse_handler
    async def write(
        self,
        fh: FileHandleT,
        off: int,
        buf: bytes,
        flags: int = 0,
        ctx: RequestContext | None = None,
    ) -> int:
        """`flags`, `ctx`: the open(2) flags and the writer, passed without file handles (with
        them, the backing descriptor was opened with the caller's O_APPEND, and the writer is
        the handle's opener)."""
        target = await self._admit_write(fh, flags, ctx)
        try:
            if target.append:
                # The kernel placed this append at the end as it last knew it; if the file
                # grew meanwhile (an incoming version applied while the write waited for its
                # lease), the end is further on, and `off` would overwrite the newer lines.
                end = os.fstat(target.fd).st_size
                if end != off:
                    off = end
                    self._kernel.drop_soon(target.inode)  # its pages hold the bytes elsewhere
            view = memoryview(buf)
            done = 0
            while done < len(view):  # the kernel needs all of it written (no direct_io)
                done += os.pwrite(target.fd, view[done:], off + done)
        finally:
            if target.borrowed:
                os.close(target.fd)
        if others := self._inodes.others_of_file(target.inode):
            await self._kernel.drop(others, attributes_only=False)  # its other hard links
        return done

    async def _admit_write(
        self, fh: FileHandleT, flags: int, ctx: RequestContext | None
    ) -> _WriteTarget:
        """Pass `before_mutation` for a write through `fh`; where to write it."""
        if self.files_without_handles:
            ino = InodeId(fh)
            append = bool(flags & os.O_APPEND)
        else:
            opened = self._handles.file(FileHandle(fh))
            ino = opened.inode
            append = False  # the backing descriptor carries the caller's O_APPEND
        successor = self._superseded.get(ino)
        if successor is not None and self._inodes.path_of(ino) is None:
            if not self.files_without_handles:
                append = bool(fcntl.fcntl(opened.fd, fcntl.F_GETFL) & os.O_APPEND)
            return await self._write_to_successor(ino, successor, append, ctx)
        if self.files_without_handles:
            if self._inodes.path_of(ino) is None and self._files.is_pinned(ino):
                # No name left (unlinked while open here): nobody else's to lease.
                return _WriteTarget(ino, self._file_fd(ino, writable=True), append)
            await self._admit(ctx, Mutation.WRITE, lambda: (self._path_to_write(ino),))
            return _WriteTarget(ino, self._file_fd(ino, writable=True), append)
        await self._admit(None, Mutation.WRITE, lambda: (opened.path,))
        return _WriteTarget(ino, opened.fd, append=False)  # the descriptor appends itself

    async def _write_to_successor(
        self, inode: InodeId, path: str, append: bool, ctx: RequestContext | None
    ) -> _WriteTarget:
        """A write to a file that another agent's version replaced since it was opened: into
        the old file it would be lost, so it goes on top of the version at the name (as
        after an open a moment later), with that name's lease."""
        (path,) = await self._admit(ctx, Mutation.WRITE, lambda: (path,))
        try:
            fd, _ = _open_backing(self._root, path, writable=True)
        except FileNotFoundError:
            raise FUSEError(errno.ESTALE) from None  # the version removed it: nothing to join
        self._kernel.drop_soon(inode)  # the old file's pages now hold bytes it never got
        if (current := self._inodes.id_of(path)) is not None:
            self._kernel.drop_soon(current)  # written underneath, not through its inode
        return _WriteTarget(inode, fd, append, borrowed=True)

    async def flush(self, fh: FileHandleT) -> None:
        """Not served: ENOSYS once makes the kernel stop sending FLUSH on every close(2).

        That is a third of the requests of reading a file (open, flush, release). Nothing is
        lost: writes reach the backing file synchronously in `write` (no writeback cache), so
        their errors are reported there, and a local backing filesystem's close(2) reports none.
        """
        raise FUSEError(errno.ENOSYS)

    @fuse_handler
    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        if self.files_without_handles:
            # Our own copy: the kept one may be closed (evicted, forgotten) while we wait.
            fd = os.dup(self._file_fd(InodeId(fh), writable=False))
        else:
            fd = os.dup(self._handles.file(FileHandle(fh)).fd)
        try:
            await trio.to_thread.run_sync(os.fdatasync if datasync else os.fsync, fd)
        finally:
            os.close(fd)

    @quiet_handler
    async def release(self, fh: FileHandleT) -> None:
        if self.files_without_handles:
            return  # a file made by `create` before the kernel knew to send no release
        handle = FileHandle(fh)
        opened = self._handles.pop_file(handle)
        os.close(opened.fd)
        if opened.writable:
            await self.after_write_release(opened.path, handle)


@dataclass(frozen=True, slots=True)
class _WriteTarget:
    """Where a write goes: the descriptor, whether it appends at the file's true end, and
    whether the descriptor was opened for this write alone (to close after)."""

    inode: InodeId
    fd: int
    append: bool
    borrowed: bool = False


def _backing_flags(flags: int) -> int:
    return (flags & ~_NOT_PASSED_ON) | os.O_NOFOLLOW | os.O_CLOEXEC
