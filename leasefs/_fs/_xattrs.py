"""Extended attributes, through a descriptor of the file itself.

``os.*xattr`` take no ``dir_fd``, so the file is opened (or a descriptor already open is
used: the kernel asks for ``security.capability`` on every write). Symlinks and special files
are never opened: they have none to list or read, and setting one is refused as Linux refuses
it. Setting and removing pass the `before_mutation` hook first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence

import pyfuse3
from pyfuse3 import FUSEError, InodeT, RequestContext, XAttrNameT

from ._at import at
from ._base import PassthroughBase
from ._errors import fuse_handler
from ._inodes import InodeId
from ._mutation import Mutation

__all__ = ["XattrHandlers"]


class XattrHandlers(PassthroughBase):
    """Read, list, set and remove extended attributes."""

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
            fd = self._root if path == "" else self._any_fd(inode)
            if fd is None:
                raise FUSEError(errno.ENOENT)
            yield fd
            return
        if self._inodes.kind_of(inode) not in (stat.S_IFREG, stat.S_IFDIR):
            yield None
            return
        held = self._any_fd(inode)
        if held is not None:  # open already (the kernel asks on every write): no open/close
            yield held
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with at(self._root, path) as (folder, leaf):
            fd = os.open(leaf, flags, dir_fd=folder)
        try:
            yield fd
        finally:
            os.close(fd)

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


def _xattr_refusal(name: bytes) -> int:
    """What Linux answers for extended attributes on a symlink or special file."""
    return errno.EPERM if name.startswith(b"user.") else errno.ENOTSUP
