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
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence

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
from ._attrs import entry_attributes, negative_entry, statvfs_data
from ._errors import fuse_handler, quiet_handler
from ._handles import DirHandle, FileHandle, HandleTable, OpenFile
from ._inodes import InodeId, InodeTable, join, split
from ._kernel import KernelCaches
from ._listings import Listing, ListingsByInode, read_listing
from ._mutation import Mutation

__all__ = ["DEFAULT_TIMEOUT", "Passthrough"]

log = logging.getLogger("leasefs.fs")

DEFAULT_TIMEOUT = 60.0
"""Seconds the kernel may cache entries and attributes. Long is safe: nothing changes the
backing directory behind our back except the owner, who calls `invalidate_path`."""

# Flags the kernel handles itself, or that cannot be honoured with Python's unaligned buffers.
_NOT_PASSED_ON = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | getattr(os, "O_DIRECT", 0)
_ADMIT_ATTEMPTS = 3
_RENAME_FLAGS = pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE
_READ_BUFFER_BYTES = 1 << 20  # libfuse's largest request (FUSE_MAX_MAX_PAGES pages)

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

LISTINGS_CACHED = hasattr(FileInfo(), "cache_readdir")
"""Whether this pyfuse3 lets opendir ask the kernel to keep the listing (FOPEN_CACHE_DIR).

Stock pyfuse3 3.5 cannot; scripts/pyfuse3/build adds it (and `enable_auto_inval_data`).
Without it every folder is read through the mount each time, which is most of what
`git status` and `find` cost here."""

LISTINGS_BY_INODE = hasattr(pyfuse3.Operations, "directories_without_handles")
"""Whether this pyfuse3 passes a folder's inode to readdir once opendir answers ENOSYS
(scripts/pyfuse3/build). The kernel then sends no OPENDIR and RELEASEDIR, a pair per folder
listed, most of what a warm `git status` or `find` still cost with listings cached."""


class Passthrough(pyfuse3.Operations):
    """Serve the directory behind `root_fd` unchanged, file for file."""

    supports_dot_lookup = True
    enable_writeback_cache = False  # with it the kernel keeps stale sizes after backing changes
    # Keep the pages written through us when the kernel sees the new mtime (it would drop them
    # and read everything back through us): every change passes through the mount, and the
    # owner's changes underneath call `invalidate_path`. Needs the patched pyfuse3.
    enable_auto_inval_data = False
    directories_without_handles = LISTINGS_BY_INODE  # opendir answers ENOSYS, see there
    enable_acl = False

    def __init__(
        self,
        root_fd: int,
        *,
        entry_timeout: float = DEFAULT_TIMEOUT,
        attr_timeout: float = DEFAULT_TIMEOUT,
        negative_timeout: float | None = None,
        inodes: InodeTable | None = None,
        handles: HandleTable | None = None,
    ) -> None:
        """`root_fd`: the directory, opened (O_RDONLY|O_DIRECTORY) before mounting over it.

        The descriptor stays the caller's to close, after unmounting. `inodes` and `handles`:
        tables the caller shares with others (who counts open writers, who tells the kernel
        of changes made underneath); fresh ones otherwise.
        """
        super().__init__()
        self._root = root_fd
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout
        self.negative_timeout = entry_timeout if negative_timeout is None else negative_timeout
        self._inodes = inodes if inodes is not None else InodeTable(os.fstat(root_fd))
        self._handles = handles if handles is not None else HandleTable()
        self._kernel = KernelCaches(root_fd, self._inodes)
        self._listings = ListingsByInode()
        self._removed_folders: dict[InodeId, os.stat_result] = {}  # until the kernel forgets
        self._as_root = os.geteuid() == 0
        self._read_buffer = memoryview(bytearray(_READ_BUFFER_BYTES))

    # -- hooks for the lease layer ---------------------------------------------------------

    async def before_mutation(
        self, kind: Mutation, paths: tuple[str, ...], ctx: RequestContext
    ) -> None:
        """Called before any request changes `paths` (repository-relative; '' is the root).

        `ctx` says who asks (``ctx.pid`` is the calling thread's id).

        May wait (with a deadline: a FUSE request cannot be interrupted) and may refuse by
        raising `FUSEError` (EBUSY). Called again with the new paths if a rename elsewhere
        moved them while it waited. Does nothing here.
        """

    async def after_write_release(self, path: str, fh: FileHandle) -> None:
        """Called once an open that could write is closed (its backing descriptor already is).

        `path` is the path the file was opened under. Errors are logged, never reported.
        Does nothing here.
        """

    # -- for owners and subclasses ---------------------------------------------------------

    @property
    def backing_fd(self) -> int:
        """The descriptor of the backing directory: the way to change files underneath."""
        return self._root

    def path_of(self, inode: InodeId) -> str:
        """The repository path `inode` stands for; ENOENT once it has none (unlinked)."""
        path = self._inodes.path_of(inode)
        if path is None:
            raise FUSEError(errno.ENOENT)
        return path

    def _path_to_write(self, inode: InodeId) -> str:
        """Like `path_of`, but ESTALE for a file replaced a moment ago (an incoming version
        moved into place between the kernel's lookup and this call, or while the call waited
        for its lease): the kernel then looks the name up again and opens the replacement,
        instead of failing with ENOENT or writing into the discarded file."""
        path = self._inodes.path_of(inode)
        if path is None:
            stale = self._inodes.recent_former_path(inode) is not None
            raise FUSEError(errno.ESTALE if stale else errno.ENOENT)
        return path

    def handle_path(self, fh: FileHandle) -> str:
        """The path the open file `fh` was opened under (what its lease was taken on)."""
        return self._handles.file(fh).path

    def _readable_path(self, inode: InodeId) -> str:
        """Where to read `inode`: its path, or the one it had until replaced a moment ago."""
        path = self._inodes.path_of(inode)
        if path is None:
            path = self._inodes.recent_former_path(inode)
        if path is None:
            raise FUSEError(errno.ENOENT)
        return path

    def write_handles(self, path: str) -> int:
        """How many opens that could write are open under `path` right now."""
        return self._handles.writers(path)

    async def invalidate_path(self, path: str) -> None:
        """Tell the kernel that `path` was changed in the backing directory by someone else
        (see `KernelCaches.invalidate_path`)."""
        await self._kernel.invalidate_path(path)

    def close_handles(self) -> None:
        """Close the backing descriptors of every open left (after unmounting)."""
        self._handles.close_all()

    # -- helpers ---------------------------------------------------------------------------

    def _lstat(self, path: str) -> os.stat_result:
        return os.stat(_rel(path), dir_fd=self._root, follow_symlinks=False)

    def _child(self, parent: InodeT, name: FileNameT) -> str:
        return join(self.path_of(InodeId(parent)), os.fsdecode(name))

    def _attributes(self, st: os.stat_result, inode: InodeId) -> EntryAttributes:
        attr_timeout = self.attr_timeout
        if st.st_nlink > 1 and stat.S_ISREG(st.st_mode):
            # Each hard link is an inode of its own to the kernel: a write through one would
            # leave the others' cached size stale. Let the kernel ask every time instead.
            attr_timeout = 0
        return entry_attributes(
            st, inode, entry_timeout=self.entry_timeout, attr_timeout=attr_timeout
        )

    def _remember(self, path: str, st: os.stat_result) -> EntryAttributes:
        """The reply for a request that hands the kernel an entry (one more lookup)."""
        return self._attributes(st, self._inodes.lookup(path, st))

    def _stat_inode(self, inode: InodeId, fd: int | None = None) -> os.stat_result:
        if fd is not None:
            return os.fstat(fd)
        path = self._inodes.path_of(inode)
        if path is not None:
            return self._lstat(path)
        fd = self._handles.fd_for(inode)  # unlinked but still open somewhere
        if fd is not None:
            return os.fstat(fd)
        if (removed := self._removed_folders.get(inode)) is not None:
            return removed
        return self._lstat(self._readable_path(inode))

    async def _admit(
        self, ctx: RequestContext, kind: Mutation, resolve: Callable[[], tuple[str, ...]]
    ) -> tuple[str, ...]:
        """Pass the `before_mutation` hook; return the paths as they are once it has."""
        paths = resolve()
        for _ in range(_ADMIT_ATTEMPTS):
            await self.before_mutation(kind, paths, ctx)
            now = resolve()
            if now == paths:
                return paths
            paths = now  # renamed while the hook waited: ask again for the new paths
        raise FUSEError(errno.EBUSY)

    def _settle_new(
        self,
        path: str,
        st: os.stat_result,
        mode: int,
        ctx: RequestContext,
        fd: int | None = None,
    ) -> os.stat_result:
        """Give a just-created entry the owner and mode it would have had natively.

        We create as ourselves (root, under our umask); the caller's uid and gid (or the
        directory's group when it is setgid) and the exact requested mode are applied after.
        """
        rel = _rel(path)
        changed = False
        if self._as_root:
            uid, gid = ctx.uid, ctx.gid
            parent = self._lstat(split(path)[0])
            if parent.st_mode & stat.S_ISGID:
                gid = parent.st_gid
            if (st.st_uid, st.st_gid) != (uid, gid):
                if fd is not None:
                    os.fchown(fd, uid, gid)
                else:
                    os.chown(rel, uid, gid, dir_fd=self._root, follow_symlinks=False)
                changed = True
        if not stat.S_ISLNK(st.st_mode):
            wanted = stat.S_IMODE(mode)
            if stat.S_ISDIR(st.st_mode):
                wanted |= stat.S_IMODE(st.st_mode) & stat.S_ISGID  # inherited, as natively
            if changed or stat.S_IMODE(st.st_mode) != wanted:
                if fd is not None:
                    os.fchmod(fd, wanted)
                else:
                    os.chmod(rel, wanted, dir_fd=self._root, follow_symlinks=False)
                changed = True
        if not changed:
            return st
        return os.fstat(fd) if fd is not None else self._lstat(path)

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

    # -- names -----------------------------------------------------------------------------

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

    # -- files -----------------------------------------------------------------------------

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

    # -- directories -----------------------------------------------------------------------

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

    # -- extended attributes ---------------------------------------------------------------

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


def _rel(path: str) -> str:
    """A repository path as an argument relative to the root descriptor."""
    return path or "."


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
