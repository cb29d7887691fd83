"""Mounting a `Passthrough` under trio, and unmounting it from outside.

pyfuse3 keeps one session per process, so one process serves one mount.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from enum import StrEnum

import pyfuse3
import trio

from ._fusermount import is_mounted, mount_id, unmount
from ._passthrough import Passthrough
from ._unmount_watch import UnmountWatch

__all__ = [
    "DEFAULT_MAX_TASKS",
    "OtherUsers",
    "is_mounted",
    "mount_id",
    "mount_options",
    "other_users_refusal",
    "read_fuse_conf",
    "run_mount",
    "unmount",
]

DEFAULT_MAX_TASKS = 128
"""Requests served at once. Each waits for its handler to return, and a handler of the lease
layer may wait for the coordinator: leave room for everyone else's reads and lookups."""

_FUSERMOUNT = "fusermount3"
FUSE_CONF = "/etc/fuse.conf"


class OtherUsers(StrEnum):
    """Who besides the mount's owner may use the mount (the kernel still checks every
    permission, ``default_permissions``, exactly as natively)."""

    NONE = "none"
    ROOT = "root"  # sudo, a container or build running as root
    ALL = "all"  # any user id (a build user, ``sudo -u``)

    @property
    def option(self) -> str | None:
        return {OtherUsers.ROOT: "allow_root", OtherUsers.ALL: "allow_other"}.get(self)


def read_fuse_conf() -> str | None:
    """The text of /etc/fuse.conf, None if there is none to read."""
    try:
        with open(FUSE_CONF, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def other_users_refusal(others: OtherUsers, euid: int, fuse_conf: str | None) -> str | None:
    """Why fusermount3 would refuse to let other users in, or None if it will not.

    Root may always; anyone else needs ``user_allow_other`` in /etc/fuse.conf (``fuse_conf``:
    its text, None if it is missing), for allow_root as for allow_other.
    """
    if others is OtherUsers.NONE or euid == 0:
        return None
    lines = (line.split("#", 1)[0].strip() for line in (fuse_conf or "").splitlines())
    if "user_allow_other" in lines:
        return None
    return (
        f"--allow-{'root' if others is OtherUsers.ROOT else 'other'} needs 'user_allow_other' "
        f"in {FUSE_CONF} when the mount is not run by root: as root, run "
        f'"echo user_allow_other >> {FUSE_CONF}", then mount again'
    )


def mount_options(extra: Iterable[str] = ()) -> set[str]:
    """The options we mount with: the kernel checks permissions, and (when fusermount3 is
    there to do it) the mount goes away by itself if the serving process dies, instead of
    leaving a dead filesystem over the repository."""
    options = set(pyfuse3.default_options) | {"fsname=leasefs", "subtype=leasefs"}
    options.add("default_permissions")
    if shutil.which(_FUSERMOUNT):
        options.add("auto_unmount")
    options.update(extra)
    return options


async def run_mount(
    ops: Passthrough,
    mountpoint: str | os.PathLike[str],
    options: Iterable[str] = (),
    *,
    max_tasks: int = DEFAULT_MAX_TASKS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mount `ops` on `mountpoint` and serve it until unmounted or cancelled.

    Reports started once the mount is in place (requests wait in the kernel until the loop
    runs). Cancelling unmounts; an outside unmount (`unmount`, fusermount3 -u) returns.
    """
    path = os.fspath(mountpoint)
    watch = UnmountWatch(path)  # auto_unmount's stand-in where it cannot tell (see there)
    pyfuse3.init(ops, path, mount_options(options))
    try:
        watch.start()
        task_status.started()
        await pyfuse3.main(max_tasks=max_tasks)
    finally:
        pyfuse3.close(unmount=True)  # a no-op if the kernel side is already gone
        watch.done()
        ops.close_handles()
