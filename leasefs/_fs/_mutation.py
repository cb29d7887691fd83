"""The kinds of change a mutating request makes, as passed to `Passthrough.before_mutation`."""

from __future__ import annotations

import enum

__all__ = ["Mutation"]


class Mutation(enum.StrEnum):
    """What a request is about to do to the paths it names."""

    WRITE = "write"  # a write(2) (or a shared mapping's writeback) into a file
    TRUNCATE = "truncate"  # open with O_TRUNC, or setattr of the size
    CREATE = "create"
    SETATTR = "setattr"  # mode, owner or times
    UNLINK = "unlink"
    RENAME = "rename"  # paths: (old, new); also for RENAME_EXCHANGE and RENAME_NOREPLACE
    MKDIR = "mkdir"
    RMDIR = "rmdir"
    SYMLINK = "symlink"
    LINK = "link"  # paths: (existing, new)
    MKNOD = "mknod"
    SETXATTR = "setxattr"
    REMOVEXATTR = "removexattr"
