"""Names and attributes: finding an entry, saying what it is, changing its metadata.

Each lookup hands the kernel a reference to an inode that `forget` gives back. `setattr`
passes the `before_mutation` hook first when it changes something, and goes through the
open descriptor the kernel names, or one still open, for a file with no name left.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from pyfuse3 import (
    EntryAttributes,
    FileHandleT,
    FileNameT,
    FUSEError,
    InodeT,
    RequestContext,
    SetattrFields,
    StatvfsData,
)

from . import _libc
from ._at import at
from ._attrs import negative_entry, statvfs_data
from ._base import PassthroughBase, _rel
from ._errors import fuse_handler, quiet_handler
from ._handles import FileHandle
from ._inodes import InodeId, join, split
from ._mutation import Mutation

__all__ = ["MetadataHandlers"]


class MetadataHandlers(PassthroughBase):
    """Look entries up, report and change their attributes."""

    @fuse_handler
    async def lookup(
        self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext
    ) -> EntryAttributes:
        self.lookups_served += 1
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
            ino = InodeId(inode)
            self._inodes.forget(ino, count)
            if ino not in self._inodes:
                self._files.forget(ino)
                self._superseded.pop(ino, None)
                if self._removed_folders:
                    self._removed_folders.pop(ino, None)

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
            fd = self._any_fd(ino)
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
                with at(self._root, rel) as (folder, leaf):
                    os.chmod(leaf, mode, dir_fd=folder, follow_symlinks=False)
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            gid = attr.st_gid if fields.update_gid else -1
            if fd is not None:
                os.fchown(fd, uid, gid)
            else:
                with at(self._root, rel) as (folder, leaf):
                    os.chown(leaf, uid, gid, dir_fd=folder, follow_symlinks=False)
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
                with at(self._root, rel) as (folder, leaf):
                    _libc.utimensat(folder, leaf, atime, mtime)
        if any(changes) and (others := self._inodes.others_of_file(ino)):
            # Its other hard links: their modes, owners and times changed too (and their
            # pages, for a new size).
            await self._kernel.drop(others, attributes_only=not fields.update_size)
        return self._attributes(self._stat_inode(ino, fd), ino)

    def _truncate(self, rel: str, size: int) -> None:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with at(self._root, rel) as (folder, leaf):
            fd = os.open(leaf, flags, dir_fd=folder)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    @fuse_handler
    async def readlink(self, inode: InodeT, ctx: RequestContext) -> FileNameT:
        path = self.path_of(InodeId(inode))
        with at(self._root, path) as (folder, leaf):
            return os.fsencode(os.readlink(leaf, dir_fd=folder))

    @fuse_handler
    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        return statvfs_data(os.statvfs(self._root))
