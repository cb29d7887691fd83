"""A faithful passthrough of the directory the filesystem is mounted on, in place.

The mount covers the repository it serves, so the backing files are reached only through a
descriptor of that directory opened before mounting: every access is ``*at()`` relative to
it and never follows a final symlink (`/proc/self/fd/N` paths would not do: lstat through
them sees a symlink). Errors are the backing filesystem's own errno; the kernel checks
permissions itself (``default_permissions``) from the attributes we report.

The lease layer subclasses `Passthrough` and overrides two hooks: `before_mutation`, awaited
before every request that changes a path, and `after_write_release`, awaited when an open
that could write is closed.

The handlers are grouped by job, one mixin each over `PassthroughBase` (`_base`: the state
and the helpers they share), every one wrapped by `fuse_handler` or `quiet_handler` (flush
alone answers ENOSYS itself):

    _metadata      lookup, forget, getattr, setattr, readlink, statfs
    _file_io       open, create, read, write, flush, fsync, release
    _directories   mkdir, rmdir, opendir, readdir, releasedir, fsyncdir
    _namespace     mknod, symlink, link, rename, unlink
    _xattrs        getxattr, listxattr, setxattr, removexattr
"""

from __future__ import annotations

from ._base import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._base import LISTINGS_BY_INODE as LISTINGS_BY_INODE
from ._base import LISTINGS_CACHED as LISTINGS_CACHED
from ._directories import DirectoryHandlers
from ._file_io import FileHandlers
from ._metadata import MetadataHandlers
from ._namespace import NamespaceHandlers
from ._xattrs import XattrHandlers

__all__ = ["DEFAULT_TIMEOUT", "Passthrough"]


class Passthrough(
    MetadataHandlers, FileHandlers, DirectoryHandlers, NamespaceHandlers, XattrHandlers
):
    """Serve the directory behind `root_fd` unchanged, file for file."""

    supports_dot_lookup = True
    enable_writeback_cache = False  # with it the kernel keeps stale sizes after backing changes
    # Keep the pages written through us when the kernel sees the new mtime (it would drop them
    # and read everything back through us): every change passes through the mount, and the
    # owner's changes underneath call `invalidate_path`. Needs the patched pyfuse3.
    enable_auto_inval_data = False
    directories_without_handles = LISTINGS_BY_INODE  # opendir answers ENOSYS, see there
    enable_acl = False
