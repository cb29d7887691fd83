"""The FUSE side of leasefs: an in-place passthrough that a lease layer builds on.

`Passthrough` serves a directory over itself; subclasses override `before_mutation` and
`after_write_release`. `run_mount` serves it under trio, `unmount` takes it away from outside.
"""

from ._at import backing_at as backing_at
from ._base import FILES_BY_INODE as FILES_BY_INODE
from ._errors import fuse_handler as fuse_handler
from ._errors import quiet_handler as quiet_handler
from ._handles import FileHandle as FileHandle
from ._handles import HandleTable as HandleTable
from ._inodes import ROOT_INODE as ROOT_INODE
from ._inodes import InodeId as InodeId
from ._inodes import InodeTable as InodeTable
from ._kernel import KernelCaches as KernelCaches
from ._mounting import DEFAULT_MAX_TASKS as DEFAULT_MAX_TASKS
from ._mounting import OtherUsers as OtherUsers
from ._mounting import is_mounted as is_mounted
from ._mounting import mount_id as mount_id
from ._mounting import mount_options as mount_options
from ._mounting import other_users_refusal as other_users_refusal
from ._mounting import read_fuse_conf as read_fuse_conf
from ._mounting import run_mount as run_mount
from ._mounting import unmount as unmount
from ._mutation import Mutation as Mutation
from ._passthrough import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._passthrough import Passthrough as Passthrough

__all__ = [
    "DEFAULT_MAX_TASKS",
    "DEFAULT_TIMEOUT",
    "FILES_BY_INODE",
    "ROOT_INODE",
    "FileHandle",
    "HandleTable",
    "InodeId",
    "InodeTable",
    "KernelCaches",
    "Mutation",
    "OtherUsers",
    "Passthrough",
    "backing_at",
    "fuse_handler",
    "is_mounted",
    "mount_id",
    "mount_options",
    "other_users_refusal",
    "quiet_handler",
    "read_fuse_conf",
    "run_mount",
    "unmount",
]
