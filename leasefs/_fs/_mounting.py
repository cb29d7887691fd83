"""Mounting a `Passthrough` under trio, and unmounting it from outside.

pyfuse3 keeps one session per process, so one process serves one mount.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

import pyfuse3
import trio

from ._fusermount import is_mounted, unmount
from ._passthrough import Passthrough

__all__ = ["DEFAULT_MAX_TASKS", "is_mounted", "mount_options", "run_mount", "unmount"]

DEFAULT_MAX_TASKS = 128
"""Requests served at once. Each waits for its handler to return, and a handler of the lease
layer may wait for the coordinator: leave room for everyone else's reads and lookups."""

_FUSERMOUNT = "fusermount3"


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
    pyfuse3.init(ops, path, mount_options(options))
    try:
        task_status.started()
        await pyfuse3.main(max_tasks=max_tasks)
    finally:
        pyfuse3.close(unmount=True)  # a no-op if the kernel side is already gone
        ops.close_handles()
