"""What every request handler of `Passthrough` stands on: its state and shared helpers.

`PassthroughBase` holds the root descriptor, the inode and handle tables, the lease layer's
two hooks and the calls for the mount's owner, and the helpers the handlers share: an inode's
path (to read, to write), lstat relative to the root, the attributes the kernel is given, the
`before_mutation` hook passed, a new entry given its caller's owner and mode. The handlers
themselves, one mixin per job over this class, are composed in `_passthrough`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import pyfuse3
from pyfuse3 import EntryAttributes, FileInfo, FileNameT, FUSEError, InodeT, RequestContext

from ._at import at
from ._attrs import entry_attributes
from ._handles import FileHandle, HandleTable
from ._inode_files import InodeFiles
from ._inodes import InodeId, InodeTable, join, split
from ._kernel import KernelCaches
from ._listings import ListingsByInode
from ._mutation import Mutation

__all__ = [
    "DEFAULT_TIMEOUT",
    "FILES_BY_INODE",
    "LISTINGS_BY_INODE",
    "LISTINGS_CACHED",
    "PassthroughBase",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds the kernel may cache entries and attributes. Long is safe: nothing changes the
backing directory behind our back except the owner, who calls `invalidate_path`."""

_ADMIT_ATTEMPTS = 3
_READ_BUFFER_BYTES = 1 << 20  # libfuse's largest request (FUSE_MAX_MAX_PAGES pages)

LISTINGS_CACHED = hasattr(FileInfo(), "cache_readdir")
"""Whether this pyfuse3 lets opendir ask the kernel to keep the listing (FOPEN_CACHE_DIR).

Stock pyfuse3 3.5 cannot; scripts/pyfuse3/build adds it (and `enable_auto_inval_data`).
Without it every folder is read through the mount each time, which is most of what
`git status` and `find` cost here."""

LISTINGS_BY_INODE = hasattr(pyfuse3.Operations, "directories_without_handles")
"""Whether this pyfuse3 passes a folder's inode to readdir once opendir answers ENOSYS
(scripts/pyfuse3/build). The kernel then sends no OPENDIR and RELEASEDIR, a pair per folder
listed, most of what a warm `git status` or `find` still cost with listings cached."""

FILES_BY_INODE = hasattr(pyfuse3.Operations, "files_without_handles")
"""Whether this pyfuse3 passes a file's inode to read, write and fsync once open answers
ENOSYS (scripts/pyfuse3/build). The kernel then sends no OPEN and RELEASE per open(2), and
keeps every file's pages across opens: a warm read never reaches the daemon. Without it every
open(2) and close(2) is a request, most of what reading a warm tree costs."""


class PassthroughBase(pyfuse3.Operations):
    """The directory behind `root_fd`, and what the handlers share to serve it."""

    # -- state -----------------------------------------------------------------------------

    def __init__(
        self,
        root_fd: int,
        *,
        entry_timeout: float = DEFAULT_TIMEOUT,
        attr_timeout: float = DEFAULT_TIMEOUT,
        negative_timeout: float | None = None,
        inodes: InodeTable | None = None,
        handles: HandleTable | None = None,
        file_handles: bool = not FILES_BY_INODE,
    ) -> None:
        """`root_fd`: the directory, opened (O_RDONLY|O_DIRECTORY) before mounting over it.

        The descriptor stays the caller's to close, after unmounting. `inodes` and `handles`:
        tables the caller shares with others (who counts open writers, who tells the kernel
        of changes made underneath); fresh ones otherwise. `file_handles`: serve open(2)
        with a handle per open, as a stock pyfuse3 must (slower: two requests per open).
        """
        super().__init__()
        self._root = root_fd
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout
        self.negative_timeout = entry_timeout if negative_timeout is None else negative_timeout
        self._inodes = inodes if inodes is not None else InodeTable(os.fstat(root_fd))
        self._handles = handles if handles is not None else HandleTable()
        # Read by pyfuse3 at mount time: open then answers ENOSYS (see FILES_BY_INODE).
        self.files_without_handles = FILES_BY_INODE and not file_handles
        self._files = InodeFiles()
        self._kernel = KernelCaches(root_fd, self._inodes)
        self._listings = ListingsByInode()
        self._removed_folders: dict[InodeId, os.stat_result] = {}  # until the kernel forgets
        # Files whose name went to another agent's version (-> that name), until forgotten.
        self._superseded: dict[InodeId, str] = {}
        self._as_root = os.geteuid() == 0
        self.lookups_served = 0  # LOOKUP requests: what priming and the kernel's cache save
        self._read_buffer = memoryview(bytearray(_READ_BUFFER_BYTES))

    # -- hooks for the lease layer ---------------------------------------------------------

    async def before_mutation(
        self, kind: Mutation, paths: tuple[str, ...], ctx: RequestContext | None
    ) -> None:
        """Called before any request changes `paths` (repository-relative; '' is the root).

        `ctx` says who asks (``ctx.pid`` is the calling thread's id); None for a write, which
        pyfuse3 passes no context.

        May wait (with a deadline: a FUSE request cannot be interrupted) and may refuse by
        raising `FUSEError` (EBUSY). Called again with the new paths if a rename elsewhere
        moved them while it waited. Does nothing here.
        """

    async def after_write_release(self, path: str, fh: FileHandle) -> None:
        """Called once an open that could write is closed (its backing descriptor already is).

        `path` is the path the file was opened under. Errors are logged, never reported.
        Only with `file_handles`: without, the kernel tells of no close. Does nothing here.
        """

    def moves_versions_in(self, ctx: RequestContext) -> bool:
        """Whether the caller moves other agents' versions into the tree (a removal or a
        rename over a file by it supersedes the file: what is still written to the old one
        would be lost, so it goes to the new file at the name, as if opened a moment later).
        Nobody here."""
        return False

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

    def _readable_path(self, inode: InodeId) -> str:
        """Where to read `inode`: its path, or the one it had until replaced a moment ago."""
        path = self._inodes.path_of(inode)
        if path is None:
            path = self._inodes.recent_former_path(inode)
        if path is None:
            raise FUSEError(errno.ENOENT)
        return path

    @property
    def sees_opens(self) -> bool:
        """Whether the kernel tells of every open and close (`file_handles`), so that
        `write_handles` counts them; without, it sends neither."""
        return not self.files_without_handles

    def write_handles(self, path: str) -> int:
        """How many opens that could write are open under `path` right now (0 unless
        `sees_opens`)."""
        return self._handles.writers(path)

    async def invalidate_path(self, path: str) -> None:
        """Tell the kernel that `path` was changed in the backing directory by someone else
        (see `KernelCaches.invalidate_path`)."""
        await self._kernel.invalidate_path(path)

    def close_handles(self) -> None:
        """Close the backing descriptors of every open left (after unmounting)."""
        self._handles.close_all()
        self._files.close_all()

    # -- helpers ---------------------------------------------------------------------------

    def _lstat(self, path: str) -> os.stat_result:
        with at(self._root, path) as (folder, leaf):
            return os.stat(leaf, dir_fd=folder, follow_symlinks=False)

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
        fd = self._any_fd(inode)  # unlinked but still open somewhere
        if fd is not None:
            return os.fstat(fd)
        if (removed := self._removed_folders.get(inode)) is not None:
            return removed
        return self._lstat(self._readable_path(inode))

    def _any_fd(self, inode: InodeId) -> int | None:
        """A backing descriptor open on `inode`, if any: the way to reach a file that has no
        name left, and a cheaper one than opening it again."""
        fd = self._handles.fd_for(inode)
        return fd if fd is not None else self._files.any_fd(inode)

    def _file_fd(self, inode: InodeId, *, writable: bool) -> int:
        """The backing descriptor to read (or write) `inode` through, without file handles:
        the one kept for it, or the file opened by its path and kept."""
        fd = self._files.get(inode, writable=writable)
        if fd is not None:
            return fd
        if self._files.is_pinned(inode):
            raise FUSEError(errno.EBADF)  # no name left to open it by for writing
        path = self._path_to_write(inode) if writable else self._readable_path(inode)
        fd, can_read = _open_backing(self._root, path, writable=writable)
        self._files.put(inode, fd, writable=writable, readable=can_read)
        return fd

    def _keep_reachable(self, path: str) -> InodeId | None:
        """`path`'s name is about to go (unlink, or a rename over it): keep a descriptor of
        its file while the kernel may still have it open, since without file handles
        nothing else would reach it. Returns the inode pinned, to `_files.forget` if the
        change then fails."""
        if not self.files_without_handles:
            return None
        inode = self._inodes.id_of(path)
        if (
            inode is None
            or self._inodes.kind_of(inode) != stat.S_IFREG
            or self._inodes.lookups(inode) == 0
        ):
            return None
        if self._files.any_fd(inode) is None:
            try:
                fd, can_read = _open_backing(self._root, path, writable=True)
            except OSError:
                return None  # gone already, or not ours to open: nothing to keep
            self._files.put(inode, fd, writable=True, readable=can_read)
        self._files.pin(inode)
        return inode

    def _superseding(self, path: str, ctx: RequestContext) -> None:
        """`path`'s file is about to lose its name (unlink, or a rename over it); if to an
        incoming version, writes still arriving for the old file go to the new one."""
        if self.moves_versions_in(ctx) and (inode := self._inodes.id_of(path)) is not None:
            self._superseded[inode] = path

    async def _admit(
        self,
        ctx: RequestContext | None,
        kind: Mutation,
        resolve: Callable[[], tuple[str, ...]],
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
                    with at(self._root, path) as (folder, leaf):
                        os.chown(leaf, uid, gid, dir_fd=folder, follow_symlinks=False)
                changed = True
        if not stat.S_ISLNK(st.st_mode):
            wanted = stat.S_IMODE(mode)
            if stat.S_ISDIR(st.st_mode):
                wanted |= stat.S_IMODE(st.st_mode) & stat.S_ISGID  # inherited, as natively
            if changed or stat.S_IMODE(st.st_mode) != wanted:
                if fd is not None:
                    os.fchmod(fd, wanted)
                else:
                    with at(self._root, path) as (folder, leaf):
                        os.chmod(leaf, wanted, dir_fd=folder, follow_symlinks=False)
                changed = True
        if not changed:
            return st
        return os.fstat(fd) if fd is not None else self._lstat(path)


def _rel(path: str) -> str:
    """A repository path as an argument relative to the root descriptor."""
    return path or "."


_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _open_backing(root: int, path: str, *, writable: bool) -> tuple[int, bool]:
    """Open a backing file to serve reads (and writes, if `writable`) of every open of it;
    returns the descriptor and whether it can read. A file we may write but not read (a
    user's mount, mode 0200) gets a write-only one."""
    with at(root, path) as (folder, leaf):
        if not writable:
            return os.open(leaf, os.O_RDONLY | _OPEN_FLAGS, dir_fd=folder), True
        try:
            return os.open(leaf, os.O_RDWR | _OPEN_FLAGS, dir_fd=folder), True
        except PermissionError:
            return os.open(leaf, os.O_WRONLY | _OPEN_FLAGS, dir_fd=folder), False
