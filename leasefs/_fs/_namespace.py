"""Names made, moved and removed: mknod, symlink, link, rename and unlink.

Each passes the `before_mutation` hook with every path it changes (both, for a rename or a
link), then tells the inode table, so that inodes keep following their files. A file whose
name goes away keeps a descriptor while the kernel knows it (`_keep_reachable`).
"""

from __future__ import annotations

import errno
import os

import pyfuse3
from pyfuse3 import EntryAttributes, FileNameT, FlagT, FUSEError, InodeT, ModeT, RequestContext

from . import _libc
from ._at import at
from ._base import PassthroughBase
from ._errors import fuse_handler
from ._inodes import InodeId
from ._mutation import Mutation

__all__ = ["NamespaceHandlers"]

_RENAME_FLAGS = pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE


class NamespaceHandlers(PassthroughBase):
    """Make, link, move and remove names."""

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
        with at(self._root, path) as (folder, leaf):
            os.mknod(leaf, mode, rdev, dir_fd=folder)
        st = self._settle_new(path, self._lstat(path), mode, ctx)
        return self._remember(path, st)

    @fuse_handler
    async def unlink(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        (path,) = await self._admit(
            ctx, Mutation.UNLINK, lambda: (self._child(parent_inode, name),)
        )
        pinned = self._keep_reachable(path)
        self._superseding(path, ctx)
        others = self._other_links(path)
        try:
            with at(self._root, path) as (folder, leaf):
                os.unlink(leaf, dir_fd=folder)
        except BaseException:
            if pinned is not None:
                self._files.forget(pinned)
            raise
        self._inodes.unlinked(path)
        await self._kernel.drop(others, attributes_only=True)  # one link fewer, a new ctime

    def _other_links(self, path: str) -> list[InodeId]:
        """The kernel's inodes for the other hard links of the file at ``path``: each has
        attributes of its own there, which an unlink or a rename over ``path`` makes stale."""
        ino = self._inodes.id_of(path)
        return [] if ino is None else self._inodes.others_of_file(ino)

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
        with at(self._root, path) as (folder, leaf):
            os.symlink(os.fsdecode(target), leaf, dir_fd=folder)
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
        replaced = None
        others: list[InodeId] = []
        if not flags & pyfuse3.RENAME_EXCHANGE and self._inodes.id_of(old) != self._inodes.id_of(
            new
        ):
            replaced = self._keep_reachable(new)
            self._superseding(new, ctx)
            others = self._other_links(new)
        try:
            with (
                at(self._root, old) as (old_folder, old_name),
                at(self._root, new) as (new_folder, new_name),
            ):
                if flags:
                    _libc.renameat2(old_folder, old_name, new_folder, new_name, flags)
                else:
                    os.rename(old_name, new_name, src_dir_fd=old_folder, dst_dir_fd=new_folder)
        except BaseException:
            if replaced is not None:
                self._files.forget(replaced)
            raise
        if flags & pyfuse3.RENAME_EXCHANGE:
            self._inodes.exchanged(old, new)
        else:
            self._inodes.renamed(old, new)
        await self._kernel.drop(others, attributes_only=True)  # the replaced file's links

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
        with (
            at(self._root, existing) as (old_folder, old_leaf),
            at(self._root, new) as (new_folder, new_leaf),
        ):
            os.link(
                old_leaf,
                new_leaf,
                src_dir_fd=old_folder,
                dst_dir_fd=new_folder,
                follow_symlinks=False,
            )
        entry = self._remember(new, self._lstat(new))
        # Each name of the file is an inode of its own to the kernel, and the kernel updates
        # the link count of none of them: the one linked and the others are stale.
        stale = [ino, *self._inodes.others_of_file(ino)]
        await self._kernel.drop(stale, attributes_only=True)
        return entry
