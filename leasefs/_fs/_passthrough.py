"""A faithful passthrough of the directory the filesystem is mounted on, in place.

The mount covers the repository it serves, so the backing files are reached only through a
descriptor of that directory opened before mounting: every access is ``*at()`` relative to
it and never follows a final symlink (`/proc/self/fd/N` paths would not do: lstat through
them sees a symlink). Errors are the backing filesystem's own errno; the kernel checks
permissions itself (``default_permissions``) from the attributes we report.

The lease layer subclasses `Passthrough` and overrides two hooks: `before_mutation`, awaited
before every request that changes a path, and `after_write_release`, awaited when an open
that could write is closed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence

import pyfuse3
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
    ReaddirToken,
    RequestContext,
    SetattrFields,
    StatvfsData,
    XAttrNameT,
)

from . import _libc
from ._attrs import negative_entry, statvfs_data
from ._base import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._base import LISTINGS_BY_INODE as LISTINGS_BY_INODE
from ._base import LISTINGS_CACHED as LISTINGS_CACHED
from ._base import PassthroughBase, _rel
from ._errors import fuse_handler, quiet_handler
from ._handles import DirHandle, FileHandle, OpenFile
from ._inodes import InodeId, join, split
from ._listings import Listing, read_listing
from ._mutation import Mutation

__all__ = ["DEFAULT_TIMEOUT", "Passthrough"]

# Flags the kernel handles itself, or that cannot be honoured with Python's unaligned buffers.
_NOT_PASSED_ON = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | getattr(os, "O_DIRECT", 0)
_RENAME_FLAGS = pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Passthrough(PassthroughBase):
    """Serve the directory behind `root_fd` unchanged, file for file."""

    supports_dot_lookup = True
    enable_writeback_cache = False  # with it the kernel keeps stale sizes after backing changes
    # Keep the pages written through us when the kernel sees the new mtime (it would drop them
    # and read everything back through us): every change passes through the mount, and the
    # owner's changes underneath call `invalidate_path`. Needs the patched pyfuse3.
    enable_auto_inval_data = False
    directories_without_handles = LISTINGS_BY_INODE  # opendir answers ENOSYS, see there
    enable_acl = False

    def _new_open(self, fd: int, inode: InodeId, path: str, writable: bool) -> FileInfo:
        st = os.fstat(fd)
        fh = self._handles.add_file(OpenFile(fd, inode, path, writable))
        # Keeping the page cache across opens is safe while every change goes through this
        # inode; a second hard link is another inode to the kernel, whose cache we'd miss.
        keep = stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        return FileInfo(fh=fh, keep_cache=keep)

    @contextlib.contextmanager
    def _xattr_fd(self, inode: InodeId) -> Iterator[int | None]:
        """A descriptor to read or write the extended attributes of `inode` through.

        ``os.*xattr`` take no ``dir_fd``, so open the file itself; None for symlinks and
        special files, which we must not open.
        """
        path = self._inodes.path_of(inode)
        if not path:
            # The root, or a file with no name left (the kernel asks for security.capability
            # on every write, also to an unlinked file still open): use a descriptor we hold.
            fd = self._root if path == "" else self._handles.fd_for(inode)
            if fd is None:
                raise FUSEError(errno.ENOENT)
            yield fd
            return
        if self._inodes.kind_of(inode) not in (stat.S_IFREG, stat.S_IFDIR):
            yield None
            return
        held = self._handles.fd_for(inode)
        if held is not None:  # open already (the kernel asks on every write): no open/close
            yield held
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(path, flags, dir_fd=self._root)
        try:
            yield fd
        finally:
            os.close(fd)

    @fuse_handler
    async def lookup(
        self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext
    ) -> EntryAttributes:
        parent = self.path_of(InodeId(parent_inode))
        if name == b".":
            path = parent
        elif name == b"..":
            path = split(parent)[0]
        else:
            path = join(parent, os.fsdecode(name))
        try:
            st = self._lstat(path)
        except FileNotFoundError:
            if self.negative_timeout > 0:
                return negative_entry(self.negative_timeout)
            raise
        return self._remember(path, st)

    @quiet_handler
    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        for inode, count in inode_list:
            self._inodes.forget(InodeId(inode), count)
            if self._removed_folders and InodeId(inode) not in self._inodes:
                self._removed_folders.pop(InodeId(inode), None)

    @fuse_handler
    async def getattr(self, inode: InodeT, ctx: RequestContext) -> EntryAttributes:
        ino = InodeId(inode)
        return self._attributes(self._stat_inode(ino), ino)

    @fuse_handler
    async def setattr(
        self,
        inode: InodeT,
        attr: EntryAttributes,
        fields: SetattrFields,
        fh: FileHandleT | None,
        ctx: RequestContext,
    ) -> EntryAttributes:
        ino = InodeId(inode)
        opened = self._handles.find_file(FileHandle(fh)) if fh is not None else None
        fd = opened.fd if opened is not None else None
        changes = (
            fields.update_mode,
            fields.update_uid,
            fields.update_gid,
            fields.update_size,
            fields.update_atime,
            fields.update_mtime,
        )
        path = self._inodes.path_of(ino)
        if any(changes) and path is not None:
            kind = Mutation.TRUNCATE if fields.update_size else Mutation.SETATTR
            (path,) = await self._admit(ctx, kind, lambda: (self.path_of(ino),))
        if fd is None and path is None:
            fd = self._handles.fd_for(ino)
            if fd is None:
                raise FUSEError(errno.ENOENT)
        rel = _rel(path or "")
        if fields.update_mode:
            mode = stat.S_IMODE(attr.st_mode)
            if fd is not None:
                os.fchmod(fd, mode)
            elif self._inodes.kind_of(ino) == stat.S_IFLNK:
                raise FUSEError(errno.EOPNOTSUPP)
            else:
                os.chmod(rel, mode, dir_fd=self._root, follow_symlinks=False)
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            gid = attr.st_gid if fields.update_gid else -1
            if fd is not None:
                os.fchown(fd, uid, gid)
            else:
                os.chown(rel, uid, gid, dir_fd=self._root, follow_symlinks=False)
        if fields.update_size:
            if fd is not None:
                os.ftruncate(fd, attr.st_size)
            else:
                self._truncate(rel, attr.st_size)
        if fields.update_atime or fields.update_mtime:
            atime = attr.st_atime_ns if fields.update_atime else None
            mtime = attr.st_mtime_ns if fields.update_mtime else None
            if fd is not None:
                _libc.futimens(fd, atime, mtime)
            else:
                _libc.utimensat(self._root, rel, atime, mtime)
        return self._attributes(self._stat_inode(ino, fd), ino)

    def _truncate(self, rel: str, size: int) -> None:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(rel, flags, dir_fd=self._root)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    @fuse_handler
    async def readlink(self, inode: InodeT, ctx: RequestContext) -> FileNameT:
        path = self.path_of(InodeId(inode))
        return os.fsencode(os.readlink(_rel(path), dir_fd=self._root))

    @fuse_handler
    async def mknod(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        rdev: int,
        ctx: RequestContext,
    ) -> EntryAttributes:
        (path,) = await self._admit(ctx, Mutation.MKNOD, lambda: (self._child(parent_inode, name),))
        os.mknod(path, mode, rdev, dir_fd=self._root)
        st = self._settle_new(path, self._lstat(path), mode, ctx)
        return self._remember(path, st)

    @fuse_handler
    async def mkdir(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, ctx: RequestContext
    ) -> EntryAttributes:
        (path,) = await self._admit(ctx, Mutation.MKDIR, lambda: (self._child(parent_inode, name),))
        os.mkdir(path, stat.S_IMODE(mode), dir_fd=self._root)
        fd = os.open(path, _FOLDER_FLAGS, dir_fd=self._root)
        try:
            st = self._settle_new(path, os.fstat(fd), mode, ctx, fd)
        finally:
            os.close(fd)
        return self._remember(path, st)

    @fuse_handler
    async def unlink(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        (path,) = await self._admit(
            ctx, Mutation.UNLINK, lambda: (self._child(parent_inode, name),)
        )
        os.unlink(path, dir_fd=self._root)
        self._inodes.unlinked(path)

    @fuse_handler
    async def rmdir(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        (path,) = await self._admit(ctx, Mutation.RMDIR, lambda: (self._child(parent_inode, name),))
        inode, before = self._inodes.id_of(path), self._lstat(path)
        os.rmdir(path, dir_fd=self._root)
        self._inodes.unlinked(path)
        if inode is not None and LISTINGS_BY_INODE:
            # No handle holds it open for us: a process still in it (its cwd) can fstat it.
            self._removed_folders[inode] = _without_links(before)

    @fuse_handler
    async def symlink(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        target: FileNameT,
        ctx: RequestContext,
    ) -> EntryAttributes:
        (path,) = await self._admit(
            ctx, Mutation.SYMLINK, lambda: (self._child(parent_inode, name),)
        )
        os.symlink(os.fsdecode(target), path, dir_fd=self._root)
        st = self._settle_new(path, self._lstat(path), 0o777, ctx)
        return self._remember(path, st)

    @fuse_handler
    async def rename(
        self,
        parent_inode_old: InodeT,
        name_old: FileNameT,
        parent_inode_new: InodeT,
        name_new: FileNameT,
        flags: FlagT,
        ctx: RequestContext,
    ) -> None:
        if flags & ~_RENAME_FLAGS:
            raise FUSEError(errno.EINVAL)
        old, new = await self._admit(
            ctx,
            Mutation.RENAME,
            lambda: (
                self._child(parent_inode_old, name_old),
                self._child(parent_inode_new, name_new),
            ),
        )
        if flags:
            _libc.renameat2(self._root, old, new, flags)
        else:
            os.rename(old, new, src_dir_fd=self._root, dst_dir_fd=self._root)
        if flags & pyfuse3.RENAME_EXCHANGE:
            self._inodes.exchanged(old, new)
        else:
            self._inodes.renamed(old, new)

    @fuse_handler
    async def link(
        self,
        inode: InodeT,
        new_parent_inode: InodeT,
        new_name: FileNameT,
        ctx: RequestContext,
    ) -> EntryAttributes:
        ino = InodeId(inode)
        existing, new = await self._admit(
            ctx,
            Mutation.LINK,
            lambda: (self.path_of(ino), self._child(new_parent_inode, new_name)),
        )
        os.link(
            existing,
            new,
            src_dir_fd=self._root,
            dst_dir_fd=self._root,
            follow_symlinks=False,
        )
        return self._remember(new, self._lstat(new))

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

    @fuse_handler
    async def opendir(self, inode: InodeT, ctx: RequestContext) -> FileHandleT | FileInfo:
        if LISTINGS_BY_INODE:
            # Answered once: the kernel then sends no more OPENDIR or RELEASEDIR, keeps every
            # listing, and readdir and fsyncdir get the folder's inode.
            raise FUSEError(errno.ENOSYS)
        ino = InodeId(inode)
        fd = os.open(_rel(self.path_of(ino)), _FOLDER_FLAGS, dir_fd=self._root)
        fh = self._handles.add_dir(DirHandle(fd, ino))
        if not LISTINGS_CACHED:
            return fh
        # The kernel drops a kept listing when the folder changes through the mount, and
        # `invalidate_path` drops it when the owner changes the folder underneath.
        return FileInfo(fh=fh, keep_cache=True, cache_readdir=True)

    @fuse_handler
    async def readdir(self, fh: FileHandleT, start_id: int, token: ReaddirToken) -> None:
        if LISTINGS_BY_INODE:
            inode = InodeId(fh)
            listing = self._listings.get(inode) if start_id else None
            if listing is None:
                listing = self._read_folder(inode)
                self._listings.keep(inode, listing)
            self._reply_listing(inode, listing, start_id, token)
            return
        handle = self._handles.dir(FileHandle(fh))
        if start_id == 0 or handle.entries is None:
            handle.entries = read_listing(handle.fd)
        self._reply_listing(handle.inode, handle.entries, start_id, token)

    def _read_folder(self, inode: InodeId) -> Listing:
        """The listing of folder ``inode``; empty once it has no path (removed while open)."""
        path = self._inodes.path_of(inode)
        if path is None:
            return []
        fd = os.open(_rel(path), _FOLDER_FLAGS, dir_fd=self._root)
        try:
            return read_listing(fd)
        finally:
            os.close(fd)

    def _reply_listing(
        self, inode: InodeId, listing: Listing, start_id: int, token: ReaddirToken
    ) -> None:
        directory = self._inodes.path_of(inode)
        if directory is None:
            return
        parent = self._inodes.id_of(split(directory)[0]) if directory else None
        dots = ((b".", inode), (b"..", parent or inode))
        for offset in range(start_id, len(listing) + len(dots)):
            if offset < len(dots):
                name, ino = dots[offset]  # the kernel takes no reference for these
                if not pyfuse3.readdir_reply(token, name, _dot_attributes(ino), offset + 1):
                    return
                continue
            entry_name, st = listing[offset - len(dots)]
            ino = self._inodes.reserve(join(directory, entry_name), st)
            name = os.fsencode(entry_name)
            if not pyfuse3.readdir_reply(token, name, self._attributes(st, ino), offset + 1):
                self._inodes.discard_unreferenced(ino)
                return
            self._inodes.incref(ino)

    @quiet_handler
    async def releasedir(self, fh: FileHandleT) -> None:
        os.close(self._handles.pop_dir(FileHandle(fh)).fd)

    @fuse_handler
    async def fsyncdir(self, fh: FileHandleT, datasync: bool) -> None:
        sync = os.fdatasync if datasync else os.fsync
        if not LISTINGS_BY_INODE:
            await trio.to_thread.run_sync(sync, self._handles.dir(FileHandle(fh)).fd)
            return
        fd = os.open(_rel(self.path_of(InodeId(fh))), _FOLDER_FLAGS, dir_fd=self._root)
        try:
            await trio.to_thread.run_sync(sync, fd)
        finally:
            os.close(fd)

    @fuse_handler
    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        return statvfs_data(os.statvfs(self._root))

    @fuse_handler
    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> bytes:
        with self._xattr_fd(InodeId(inode)) as fd:
            if fd is None:
                raise FUSEError(pyfuse3.ENOATTR)
            return os.getxattr(fd, name)

    @fuse_handler
    async def listxattr(self, inode: InodeT, ctx: RequestContext) -> Sequence[XAttrNameT]:
        with self._xattr_fd(InodeId(inode)) as fd:
            return [] if fd is None else [os.fsencode(n) for n in os.listxattr(fd)]

    @fuse_handler
    async def setxattr(
        self, inode: InodeT, name: XAttrNameT, value: bytes, ctx: RequestContext
    ) -> None:
        ino = InodeId(inode)
        await self._admit(ctx, Mutation.SETXATTR, lambda: (self.path_of(ino),))
        with self._xattr_fd(ino) as fd:
            if fd is None:
                raise FUSEError(_xattr_refusal(name))
            os.setxattr(fd, name, value)

    @fuse_handler
    async def removexattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> None:
        ino = InodeId(inode)
        await self._admit(ctx, Mutation.REMOVEXATTR, lambda: (self.path_of(ino),))
        with self._xattr_fd(ino) as fd:
            if fd is None:
                raise FUSEError(_xattr_refusal(name))
            os.removexattr(fd, name)


def _backing_flags(flags: int) -> int:
    return (flags & ~_NOT_PASSED_ON) | os.O_NOFOLLOW | os.O_CLOEXEC


def _without_links(st: os.stat_result) -> os.stat_result:
    """``st`` as fstat reports it once the entry is removed: no links left."""
    fields = (st.st_mode, st.st_ino, st.st_dev, 0, *tuple(st)[4:10])
    extra = ("st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks", "st_rdev")
    return os.stat_result(fields, {name: getattr(st, name) for name in extra})


def _dot_attributes(inode: InodeId) -> EntryAttributes:
    attr = EntryAttributes()
    attr.st_ino = inode
    attr.st_mode = stat.S_IFDIR
    return attr


def _xattr_refusal(name: bytes) -> int:
    """What Linux answers for extended attributes on a symlink or special file."""
    return errno.EPERM if name.startswith(b"user.") else errno.ENOTSUP
