"""Folders: making and removing them, listing them.

With the patched pyfuse3 (`LISTINGS_BY_INODE`) opendir answers ENOSYS once and readdir is
given the folder's inode: a listing read from its start is kept by inode for the reads that
continue it. Without it each opendir opens a descriptor, and the listing lives on its handle.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import trio
from pyfuse3 import (
    EntryAttributes,
    FileHandleT,
    FileInfo,
    FileNameT,
    FUSEError,
    InodeT,
    ModeT,
    ReaddirToken,
    RequestContext,
)

from ._at import at
from ._base import LISTINGS_BY_INODE, LISTINGS_CACHED, PassthroughBase
from ._errors import fuse_handler, quiet_handler
from ._handles import DirHandle, FileHandle
from ._inodes import InodeId, join, split
from ._listings import Listing, read_listing
from ._mutation import Mutation

__all__ = ["DirectoryHandlers"]

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class DirectoryHandlers(PassthroughBase):
    """Make, remove, list and sync folders."""

    @fuse_handler
    async def mkdir(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, ctx: RequestContext
    ) -> EntryAttributes:
        (path,) = await self._admit(ctx, Mutation.MKDIR, lambda: (self._child(parent_inode, name),))
        with at(self._root, path) as (folder, leaf):
            os.mkdir(leaf, stat.S_IMODE(mode), dir_fd=folder)
            fd = os.open(leaf, _FOLDER_FLAGS, dir_fd=folder)
        try:
            st = self._settle_new(path, os.fstat(fd), mode, ctx, fd)
        finally:
            os.close(fd)
        return self._remember(path, st)

    @fuse_handler
    async def rmdir(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        (path,) = await self._admit(ctx, Mutation.RMDIR, lambda: (self._child(parent_inode, name),))
        inode, before = self._inodes.id_of(path), self._lstat(path)
        with at(self._root, path) as (folder, leaf):
            os.rmdir(leaf, dir_fd=folder)
        self._inodes.unlinked(path)
        if inode is not None and LISTINGS_BY_INODE:
            # No handle holds it open for us: a process still in it (its cwd) can fstat it.
            self._removed_folders[inode] = _without_links(before)

    @fuse_handler
    async def opendir(self, inode: InodeT, ctx: RequestContext) -> FileHandleT | FileInfo:
        if LISTINGS_BY_INODE:
            # Answered once: the kernel then sends no more OPENDIR or RELEASEDIR, keeps every
            # listing, and readdir and fsyncdir get the folder's inode.
            raise FUSEError(errno.ENOSYS)
        ino = InodeId(inode)
        with at(self._root, self.path_of(ino)) as (folder, leaf):
            fd = os.open(leaf, _FOLDER_FLAGS, dir_fd=folder)
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
        with at(self._root, path) as (folder, leaf):
            fd = os.open(leaf, _FOLDER_FLAGS, dir_fd=folder)
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
        with at(self._root, self.path_of(InodeId(fh))) as (folder, leaf):
            fd = os.open(leaf, _FOLDER_FLAGS, dir_fd=folder)
        try:
            await trio.to_thread.run_sync(sync, fd)
        finally:
            os.close(fd)


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
