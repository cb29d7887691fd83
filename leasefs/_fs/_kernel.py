"""Telling the kernel about changes made in the backing directory by someone else.

The applier writes other agents' versions straight into the backing directory, not through
the mount, so the kernel's cached pages, attributes and names of those files are stale until
it is told. Kept apart from the passthrough so that whoever writes underneath needs only
this and the inode table, not the filesystem.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable

import pyfuse3
import trio

from ._at import at
from ._inodes import InodeId, InodeTable, split

log = logging.getLogger("leasefs.fs")


class KernelCaches:
    def __init__(self, root_fd: int, inodes: InodeTable) -> None:
        self._root = root_fd
        self._inodes = inodes

    async def invalidate_path(self, path: str, *, wait: bool = True) -> None:
        """Tell the kernel that `path` was changed in the backing directory by someone else.

        Drops the kernel's cached data and attributes for the file, and its cached name if
        the file was replaced, created or deleted. Runs in a worker thread: the kernel call
        blocks while a request on the same directory, or a write to the file, is in
        progress. So a change made while such a request may be waiting for it (a version
        handed to a waiting write, which holds the file's pages until answered) passes
        `wait=False`: the call is then made in the background, and lands once the request
        is answered.
        """
        inode = self._inodes.id_of(path)
        try:
            with at(self._root, path) as (folder, leaf):
                st: os.stat_result | None = os.stat(leaf, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        same_file = inode is not None and st is not None and self._inodes.is_current(inode, st)
        if inode is not None and not same_file:
            self._inodes.unlinked(path)  # the next lookup makes a new entry for what is there
        parent = None
        if path and not same_file:
            parent = self._inodes.id_of(split(path)[0])
        if pyfuse3.trio_token is None:  # not mounted (yet, or any more): nothing is cached
            return
        name = os.fsencode(split(path)[1])
        deleted = inode if st is None else None
        if wait:
            await trio.to_thread.run_sync(_tell_kernel, inode, parent, name, deleted)
        else:
            _in_background(_tell_kernel, inode, parent, name, deleted)

    async def drop(self, inodes: Iterable[InodeId], *, attributes_only: bool) -> None:
        """Drop the kernel's cached attributes (and pages, unless `attributes_only`) of
        `inodes`: other inodes of a file just changed through one of them (its other hard
        links, each an inode of its own to the kernel, whose caches it does not update).

        In a worker thread: the kernel call waits while a request on one of those inodes
        holds its pages, and that request needs this thread to be answered. Never pass the
        inode of the request being served (its pages may be held for this very request).
        """
        todo = list(inodes)
        if todo and pyfuse3.trio_token is not None:
            await trio.to_thread.run_sync(_invalidate, todo, attributes_only)

    def drop_soon(self, inode: InodeId) -> None:
        """Drop the kernel's cached attributes and pages of `inode` once the request being
        served is answered: for a request on `inode` itself (whose pages it holds until
        then) or one another request on it may be waiting behind. Not awaited."""
        if pyfuse3.trio_token is not None:
            _in_background(_invalidate, [inode], False)


def _in_background(call: Callable[..., None], *args: object) -> None:
    """Make a kernel call in a worker thread, not waited for by anyone."""

    async def run() -> None:
        try:
            await trio.to_thread.run_sync(call, *args)
        except Exception:  # a system task must not raise: it would take the mount down
            log.exception("could not drop the kernel's caches (%s%r)", call.__name__, args)

    trio.lowlevel.spawn_system_task(run)


def _invalidate(inodes: list[InodeId], attributes_only: bool) -> None:
    for inode in inodes:
        with contextlib.suppress(FileNotFoundError):
            pyfuse3.invalidate_inode(inode, attr_only=attributes_only)


def _tell_kernel(
    inode: InodeId | None, parent: InodeId | None, name: bytes, deleted: InodeId | None
) -> None:
    """Drop the kernel's caches for one file; unknown inodes and names are fine to skip.

    A `parent` is given when the name itself changed: its kept listing goes too. Kernels
    before 6.x drop it on an entry invalidation only when the name was in their cache.
    """
    if inode is not None:
        with contextlib.suppress(FileNotFoundError):
            pyfuse3.invalidate_inode(inode)
    if parent is not None:
        with contextlib.suppress(FileNotFoundError):
            pyfuse3.invalidate_entry(parent, name, deleted or 0)
        with contextlib.suppress(FileNotFoundError):
            pyfuse3.invalidate_inode(parent)
