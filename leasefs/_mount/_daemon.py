"""The mount daemon: one repository, one agent, served in place until unmounted.

Order matters. The agent registers and learns its place in the event stream before the
filesystem goes up; on the way down every lease is released with its snapshot before the
filesystem goes away, so the repository is left holding exactly the latest content.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path

import trio

from .._client import Client, LeasefsError
from .._config import _registry
from .._fs import (
    FILES_BY_INODE,
    HandleTable,
    InodeTable,
    KernelCaches,
    OtherUsers,
    run_mount,
    unmount,
)
from ..wire import (
    DEFAULT_BRANCH,
    IDLE_GRACE_S,
    LEASE_TTL_S,
    WAIT_S,
    ConflictStatus,
    ControlAnswer,
    ControlRequest,
    Done,
    HeldStatus,
    MountStatus,
    Released,
    ReleaseNow,
    StatusAnswer,
    StatusRequest,
    UnmountRequest,
)
from ._applier import Applier
from ._bypass import Bypasser, find_bypassers
from ._control import serve_control
from ._follower import Follower
from ._keeper import KeeperOptions, LeaseKeeper, OpenForWriting
from ._lease_machine import MountLeases
from ._leasing_fs import LeasingFS
from ._open_writers import ProcessWriters
from ._priming import prime
from ._scope import Scope

log = logging.getLogger("leasefs.mount")

_SHUTDOWN_RELEASE_S = 60.0
_PRIME_WAIT_S = 2.0  # how long the mount's readiness waits for the priming walk


@dataclass(frozen=True)
class MountConfig:
    repo: Path
    coordinator: str
    workspace: str
    agent: str
    wait_s: float = WAIT_S
    ttl_s: float = LEASE_TTL_S
    idle_grace_s: float = IDLE_GRACE_S
    branch: str = DEFAULT_BRANCH
    other_users: OtherUsers = OtherUsers.NONE
    file_handles: bool = False  # a handle per open(2), as a stock pyfuse3 must anyway


class MountDaemon:
    def __init__(self, config: MountConfig) -> None:
        self.config = config
        self._shutdown = trio.Event()
        self.bypassers_at_start: list[Bypasser] = []

    async def serve(self, on_ready: Callable[[MountStatus], None] | None = None) -> None:
        config = self.config
        repo = config.repo
        root_fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        underlying_dev = os.fstat(root_fd).st_dev
        self.bypassers_at_start = find_bypassers(repo, underlying_dev, exclude={os.getpid()})
        # Resolved now: once mounted, this thread serves the mount and must never touch it.
        record_path, socket_path, log_path = _registry.paths_for(repo)
        cursor_path = _registry.cursor_path(repo, config.workspace)
        try:
            async with Client(config.coordinator) as client:
                registered = await client.join_workspace(
                    config.workspace,
                    config.agent,
                    host=socket.gethostname(),
                    tool="leasefs-mount",
                )
                scope = Scope(root_fd)
                options = KeeperOptions(
                    ttl_s=config.ttl_s,
                    idle_grace_s=config.idle_grace_s,
                    wait_s=config.wait_s,
                    branch=config.branch,
                )
                leases = MountLeases(options.timing)
                # Built once, in dependency order: the tables the filesystem shares first.
                inodes = InodeTable(os.fstat(root_fd))
                handles = HandleTable()
                applier = Applier(
                    client,
                    root_fd,
                    agent_id=registered.agent.id,
                    branch=config.branch,
                    in_scope=scope.is_leased,
                    on_changed=KernelCaches(root_fd, inodes).invalidate_path,
                    waiting_for_lease=leases.is_acquiring,
                    mount_root=repo,
                )
                file_handles = config.file_handles or not FILES_BY_INODE
                keeper = LeaseKeeper(
                    client,
                    root_fd,
                    applier,
                    options,
                    open_for_writing=_handles_writing(handles)
                    if file_handles
                    else ProcessWriters(repo),
                    leases=leases,
                )
                fs = LeasingFS(
                    root_fd,
                    scope=scope,
                    client=client,
                    keeper=keeper,
                    inodes=inodes,
                    handles=handles,
                    file_handles=file_handles,
                )
                follower = Follower(client, applier, cursor_path, on_recall=keeper.recall)
                self._running = _Running(
                    client, fs, applier, keeper, follower, registered.agent.id, underlying_dev
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(follower.run)
                    await nursery.start(keeper.run)
                    nursery.start_soon(self._watch_signals)
                    await nursery.start(serve_control, socket_path, self._control)
                    mounted = trio.Event()
                    nursery.start_soon(self._serve_fs, fs, mounted)
                    await mounted.wait()
                    primed = trio.Event()
                    nursery.start_soon(self._prime, scope, primed)
                    with trio.move_on_after(_PRIME_WAIT_S):
                        await primed.wait()  # the rest goes on in the background
                    with trio.move_on_after(10):
                        await follower.caught_up.wait()
                    _registry.write(
                        _registry.MountRecord(
                            repo=str(repo),
                            pid=os.getpid(),
                            socket=str(socket_path),
                            log=str(log_path),
                            coordinator=config.coordinator,
                            workspace=config.workspace,
                            agent=config.agent,
                            agent_id=registered.agent.id,
                            token=registered.token,
                        ),
                        record_path,
                    )
                    if on_ready is not None:
                        on_ready(await self.status())
                    await self._shutdown.wait()
                    await self._wind_down(client, keeper)
                    nursery.cancel_scope.cancel()
        finally:
            record_path.unlink(missing_ok=True)
            os.close(root_fd)

    async def _prime(self, scope: Scope, done: trio.Event) -> None:
        """List the tree through the mount once, so the first `git status` finds the
        kernel's entries in place (see `_priming`)."""
        started = trio.current_time()
        try:
            seen = await trio.to_thread.run_sync(
                prime, self.config.repo, scope.is_leased, abandon_on_cancel=True
            )
        except OSError as exc:
            log.warning("could not prime the kernel's entries: %s", exc)
        else:
            took = trio.current_time() - started
            log.info("primed the kernel with %d entries in %.2f s", seen, took)
        finally:
            done.set()

    async def _serve_fs(self, fs: LeasingFS, mounted: trio.Event) -> None:
        async with trio.open_nursery() as nursery:
            others = self.config.other_users.option
            options = [others] if others else []
            await nursery.start(run_mount, fs, str(self.config.repo), options)
            mounted.set()
        # The filesystem was unmounted from outside (fusermount3 -u): stop everything.
        self._shutdown.set()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                log.info("signal received: releasing leases and unmounting")
                self._shutdown.set()

    async def _wind_down(self, client: Client, keeper: LeaseKeeper) -> None:
        with trio.move_on_after(_SHUTDOWN_RELEASE_S):
            await keeper.release()
        left = keeper.held()
        if left:
            log.error("unmounting with %d lease(s) not released: %s", len(left), left)
        await trio.to_thread.run_sync(self._unmount)
        try:
            with trio.move_on_after(10):
                await client.leave()
        except LeasefsError as exc:
            log.warning("could not leave the workspace cleanly: %s", exc)

    def _unmount(self) -> None:
        try:
            unmount(self.config.repo, lazy=True)
        except OSError as exc:
            log.warning("%s", exc)

    async def _control(self, request: ControlRequest) -> ControlAnswer:
        match request:
            case StatusRequest():
                return StatusAnswer(status=await self.status())
            case ReleaseNow(paths=paths):
                return Released(released=await self._running.keeper.release(paths or None))
            case UnmountRequest():
                self._shutdown.set()
                return Done()

    async def status(self) -> MountStatus:
        parts = self._running
        now = time.time()
        held = parts.keeper.held()
        kept, applied = parts.keeper.statistics(), parts.applier.statistics()
        served = parts.fs.statistics()
        waiters: dict[str, list[str]] = {}
        if held:
            with trio.move_on_after(5):
                try:
                    for status in await parts.client.holders([h.path for h in held]):
                        if status.waiters:
                            waiters[status.path] = [w.name for w in status.waiters]
                except LeasefsError as exc:
                    log.info("waiters unknown: %s", exc)
        writing = await parts.keeper.open_for_writing() if held else frozenset()
        clock = trio.current_time()
        bypassers = await trio.to_thread.run_sync(
            find_bypassers, self.config.repo, parts.underlying_dev, {os.getpid()}
        )
        return MountStatus(
            repo=str(self.config.repo),
            pid=os.getpid(),
            agent=self.config.agent,
            agent_id=parts.agent_id,
            workspace=self.config.workspace,
            coordinator=self.config.coordinator,
            coordinator_reachable=kept.reachable,
            events_connected=parts.follower.statistics().connected,
            held=[
                HeldStatus(
                    path=h.path,
                    token=h.token,
                    age_s=now - h.acquired_at,
                    expires_in_s=max(0.0, h.expires_at - now),
                    open_for_writing=h.path in writing,
                    quiet_s=max(0.0, clock - h.last_used),
                    state=h.phase.value,
                )
                for h in held
            ],
            waiters=waiters,
            pending_snapshots=kept.pending_snapshots,
            versions_applied=applied.applied,
            refused_writes=served.refused_writes,
            lookups_served=served.lookups_served,
            conflicts=[ConflictStatus(**vars(c)) for c in applied.conflicts],
            bypassers=[str(b) for b in bypassers],
        )


def _handles_writing(handles: HandleTable) -> OpenForWriting:
    """With file handles, the handle table knows every open for writing."""

    async def writing() -> Set[str]:
        return handles.writing()

    return writing


@dataclass(frozen=True)
class _Running:
    """The parts of a serving mount, for status and control requests."""

    client: Client
    fs: LeasingFS
    applier: Applier
    keeper: LeaseKeeper
    follower: Follower
    agent_id: int
    underlying_dev: int
