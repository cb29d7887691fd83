"""The passthrough with leases: no change to a path in scope without holding its lease.

Every mutating request names its paths to `before_mutation`, each write(2) included (an
open is no change, and without file handles the daemon does not even see it); those in
scope (not ``.git/``, not git-ignored) must be leased first, or the request fails: EBUSY when
another agent holds a path, ENOLCK when the coordinator cannot be reached. A lease already
held costs no round trip, unless it is in jeopardy: then it is confirmed with the
coordinator first. Who holds a file is readable as the extended attribute
``user.leasefs.holder``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import trio
from pyfuse3 import FUSEError, InodeT, RequestContext, XAttrNameT

from .._client import Client, LeasefsError
from .._fs import (
    FILES_BY_INODE,
    FileHandle,
    HandleTable,
    InodeId,
    InodeTable,
    Mutation,
    Passthrough,
    backing_at,
    fuse_handler,
)
from ..wire import Lease
from ._errnos import LeaseRefused
from ._keeper import LeaseKeeper
from ._local_agents import LocalAgents
from ._scope import Scope

log = logging.getLogger("leasefs.mount")

HOLDER_XATTR = b"user.leasefs.holder"
_HOLDER_LOOKUP_S = 5.0
_UNLEASED_FOR_S = 1.0  # a changed .gitignore takes effect for writes within this
_UNLEASED_REMEMBERED = 4096


def describe_holder(lease: Lease) -> dict[str, object]:
    return {
        "agent": lease.holder.name,
        "agent_id": lease.holder.id,
        "host": lease.holder.host,
        "tool": lease.holder.tool,
        "since": lease.acquired_at,
        "expires_at": lease.expires_at,
        "work": lease.work,
        "token": lease.token,
    }


@dataclass(frozen=True)
class LeasingStatistics:
    refused_writes: int  # changes refused for want of a lease
    lookups_served: int  # LOOKUP requests answered


class LeasingFS(Passthrough):
    def __init__(
        self,
        root_fd: int,
        *,
        scope: Scope,
        client: Client,
        agents: LocalAgents,
        inodes: InodeTable | None = None,
        handles: HandleTable | None = None,
        entry_timeout: float = 60.0,
        attr_timeout: float = 60.0,
        file_handles: bool = not FILES_BY_INODE,
        move_cancelled: Callable[[str], bool] = lambda _: False,
    ) -> None:
        """``handles``: the table the keeper counts open writers in (with file handles).
        ``move_cancelled(path)``: the applier's move of a version onto ``path`` through the
        mount was cancelled (a grant applied it in place): its rename or unlink is refused."""
        super().__init__(
            root_fd,
            entry_timeout=entry_timeout,
            attr_timeout=attr_timeout,
            inodes=inodes,
            handles=handles,
            file_handles=file_handles,
        )
        self.scope = scope
        self._client = client
        self.agents = agents
        self.keeper = agents.own.keeper  # the mount's own agent's (with file handles: all)
        self._warned_no_writer = False
        self._refusals = 0
        self._pid = os.getpid()
        self._own_threads: set[int] = set()
        self._unleased_until: dict[str, float] = {}  # ignored paths written to, until when
        self._move_cancelled = move_cancelled

    def statistics(self) -> LeasingStatistics:
        return LeasingStatistics(refused_writes=self._refusals, lookups_served=self.lookups_served)

    def _leased_paths(
        self, kind: Mutation, paths: tuple[str, ...], keeper: LeaseKeeper
    ) -> list[str]:
        return [p for p in paths if p and self._in_scope(kind, p, keeper)]

    def _in_scope(self, kind: Mutation, path: str, keeper: LeaseKeeper) -> bool:
        """Whether `path` needs a lease. Asked of every write, so answered without the
        ignore rules (several stats) for a path held already, and from a verdict a moment
        old for a write to an ignored one (a big file is written in many requests)."""
        if keeper.leases.get(path) is not None:
            return True
        if kind is not Mutation.WRITE:
            return self.scope.is_leased(path)
        now = trio.current_time()
        if self._unleased_until.get(path, -1.0) > now:
            return False
        leased = self.scope.is_leased(path)
        if not leased:
            if len(self._unleased_until) > _UNLEASED_REMEMBERED:
                self._unleased_until.clear()
            self._unleased_until[path] = now + _UNLEASED_FOR_S
        return leased

    def _is_own(self, ctx: RequestContext | None) -> bool:
        """A request from this very process (the applier moving versions in): no lease.
        A write that comes without its context is never our own (the applier writes underneath)."""
        if ctx is None:
            return False
        if ctx.pid in self._own_threads:
            return True
        if os.path.exists(f"/proc/{self._pid}/task/{ctx.pid}"):
            self._own_threads.add(ctx.pid)
            return True
        return False

    def moves_versions_in(self, ctx: RequestContext) -> bool:
        return self._is_own(ctx)  # the applier, moving versions in through the mount

    async def before_mutation(
        self, kind: Mutation, paths: tuple[str, ...], ctx: RequestContext | None
    ) -> None:
        if self._is_own(ctx):
            if kind in (Mutation.RENAME, Mutation.UNLINK) and self._move_cancelled(paths[-1]):
                raise FUSEError(errno.ECANCELED)  # a grant applied that version in place
            return
        keeper = self._keeper_for(kind, ctx)
        leased = self._leased_paths(kind, paths, keeper)
        if not leased:
            return
        # A new folder is leased whole where nobody has anything under it: the files then
        # made in it (a build, a generator, an unpacked archive) cost no round trip each.
        new_folders = (
            [p + "/" for p in leased if not self._exists(p)] if kind is Mutation.MKDIR else []
        )
        try:
            await keeper.ensure(leased, new_folders)
        except LeaseRefused as exc:
            self._refusals += 1
            log.info("refused %s of %s: %s", kind.value, ", ".join(leased), exc)
            raise FUSEError(exc.errno) from exc

    def _keeper_for(self, kind: Mutation, ctx: RequestContext | None) -> LeaseKeeper:
        """The keeper of the agent the requesting process acts for (`_local_agents`)."""
        unattributed = ctx is None and kind is Mutation.WRITE and self.files_without_handles
        if unattributed and not self._warned_no_writer and len(self.agents.all()) > 1:
            self._warned_no_writer = True
            log.warning(
                "writes arrive without their writer (pyfuse3 without scripts/pyfuse3's "
                "current patch): every write counts as %s's; run scripts/setup",
                self.agents.own.name,
            )
        return self.agents.keeper_for(None if ctx is None else ctx.pid)

    def _exists(self, path: str) -> bool:
        """A mkdir of a folder that exists (``os.makedirs(exist_ok=True)`` asks anyway) makes
        nothing new: it must not lease what is already there."""
        try:
            with backing_at(self._root, path) as (folder, leaf):
                os.stat(leaf, dir_fd=folder, follow_symlinks=False)
        except OSError:
            return False
        return True

    async def after_write_release(self, path: str, fh: FileHandle) -> None:
        self.keeper.writer_closed(path)

    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> bytes:
        if name != HOLDER_XATTR:
            return await super().getxattr(inode, name, ctx)
        path = self.path_of(InodeId(inode))
        if not path:
            raise FUSEError(errno.ENODATA)
        return await self._holder_value(path)

    @fuse_handler
    async def _holder_value(self, path: str) -> bytes:
        lease = None
        with trio.move_on_after(_HOLDER_LOOKUP_S) as scope:
            try:
                [status] = await self._client.holders([path])
            except LeasefsError as exc:
                log.warning("holder of %s unknown: %s", path, exc)
                raise FUSEError(errno.EIO) from exc
            lease = status.lease
        if scope.cancelled_caught:
            raise FUSEError(errno.ETIMEDOUT)
        if lease is None:
            raise FUSEError(errno.ENODATA)
        return json.dumps(describe_holder(lease), sort_keys=True).encode()
