"""The mount daemon: one repository served in place until unmounted, for its own agent and
any `leasefs run` agents working in the same tree.

Order matters. The agent registers and learns its place in the event stream before the
filesystem goes up; on the way down every lease is released with its snapshot before the
filesystem goes away, so the repository is left holding exactly the latest content.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Set
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from .._client import Client, LeasefsError
from .._config import _registry, checked_out_branch
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
    IDLE_GRACE_S,
    LEASE_TTL_S,
    WAIT_S,
    AddRunAgent,
    ConflictStatus,
    ControlAnswer,
    ControlRefusal,
    ControlRequest,
    Done,
    HeldStatus,
    LeaseScope,
    MountStatus,
    Released,
    ReleaseNow,
    RunAgentAdded,
    RunAgentStatus,
    RunEnded,
    StatusAnswer,
    StatusRequest,
    UnmountRequest,
)
from ._applier import Applier
from ._bypass import Bypasser, find_bypassers
from ._checkout import git_lock, matching_head
from ._control import serve_control
from ._follower import Follower
from ._keeper import KeeperOptions, LeaseKeeper, OpenForWriting
from ._lease_machine import MountLeases
from ._leasing_fs import LeasingFS
from ._local_agents import LocalAgent, LocalAgents
from ._open_writers import ProcessWriters
from ._priming import prime
from ._process_agents import ProcessAgents
from ._scope import Scope

log = logging.getLogger("leasefs.mount")

_SHUTDOWN_RELEASE_S = 60.0
_PRIME_WAIT_S = 2.0  # how long the mount's readiness waits for the priming walk
_BRANCH_LOOK_S = 0.5  # how often the tree's HEAD is looked at, for a branch switch
_GIT_BUSY_WAIT_S = 10.0  # how long releases wait for a git command rewriting the tree
_GIT_BUSY_LOOK_S = 0.05


@dataclass(frozen=True)
class MountConfig:
    repo: Path
    coordinator: str
    workspace: str
    agent: str
    wait_s: float = WAIT_S
    ttl_s: float = LEASE_TTL_S
    idle_grace_s: float = IDLE_GRACE_S
    branch: str | None = None  # None: the branch checked out in the tree, followed as it changes
    lease_scope: LeaseScope = "workspace"
    other_users: OtherUsers = OtherUsers.NONE
    file_handles: bool = False  # a handle per open(2), as a stock pyfuse3 must anyway


class MountDaemon:
    def __init__(self, config: MountConfig) -> None:
        self.config = config
        self._shutdown = trio.Event()
        self.bypassers_at_start: list[Bypasser] = []
        self._branch_lock = trio.Lock()
        self._stale_git_lock: tuple[int, int] | None = None
        self._settling = trio.Lock()

    async def serve(self, on_ready: Callable[[MountStatus], None] | None = None) -> None:
        config = self.config
        repo = config.repo
        root_fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        underlying_dev = os.fstat(root_fd).st_dev
        real_repo = Path(await trio.Path(repo).resolve())  # never once mounted: ProcessWriters
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
                branch = config.branch or checked_out_branch(root_fd)
                options = KeeperOptions(
                    ttl_s=config.ttl_s,
                    idle_grace_s=config.idle_grace_s,
                    wait_s=config.wait_s,
                    branch=branch,
                    lease_scope=config.lease_scope,
                )
                # Built once, in dependency order: the tables the filesystem shares first.
                inodes = InodeTable(os.fstat(root_fd))
                handles = HandleTable()
                processes = ProcessAgents()
                agents: LocalAgents | None = None

                def waiting_for_lease(path: str) -> bool:
                    return agents is not None and agents.is_acquiring(path)

                applier = Applier(
                    client,
                    root_fd,
                    agent_id=registered.agent.id,
                    branch=branch,
                    in_scope=scope.is_leased,
                    on_changed=KernelCaches(root_fd, inodes).invalidate_path,
                    waiting_for_lease=waiting_for_lease,
                    mount_root=repo,
                )
                file_handles = config.file_handles or not FILES_BY_INODE
                self._parts = _KeeperParts(
                    root_fd,
                    applier,
                    options,
                    handles if file_handles else None,
                    real_repo,
                    before_release=partial(self._settle_tree, root_fd),
                )
                own = LocalAgent(
                    name=config.agent,
                    agent_id=registered.agent.id,
                    token=registered.token,
                    client=client,
                    keeper=self._parts.keeper(client, processes.acts_for(None)),
                    tool="leasefs-mount",
                )
                agents = LocalAgents(own, processes)
                keeper = own.keeper
                fs = LeasingFS(
                    root_fd,
                    scope=scope,
                    client=client,
                    agents=agents,
                    inodes=inodes,
                    handles=handles,
                    file_handles=file_handles,
                    move_cancelled=applier.move_cancelled,
                )
                follower = Follower(client, applier, cursor_path, on_recall=agents.recall)
                self._running = _Running(
                    client, fs, applier, agents, follower, registered.agent.id, underlying_dev
                )
                async with AsyncExitStack() as run_clients, trio.open_nursery() as nursery:
                    self._nursery, self._run_clients = nursery, run_clients
                    await nursery.start(follower.run)
                    await nursery.start(keeper.run)
                    nursery.start_soon(self._watch_signals)
                    if config.branch is None:
                        nursery.start_soon(self._follow_branch, root_fd)
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
                    await self._wind_down(agents)
                    nursery.cancel_scope.cancel()
        finally:
            record_path.unlink(missing_ok=True)
            os.close(root_fd)

    async def _follow_branch(self, root_fd: int) -> None:
        """Follow `git checkout`/`git switch` in the tree (HEAD read underneath the mount)."""
        while True:
            await trio.sleep(_BRANCH_LOOK_S)
            await self._check_branch(root_fd)

    async def _check_branch(self, root_fd: int) -> None:
        """From a branch switch on, versions are recorded on, and applied from, the branch
        now checked out; the files the checkout rewrote are git's, not edits (`_checkout`)."""
        if self.config.branch is not None:
            return  # pinned by whoever made the mount
        async with self._branch_lock:
            parts = self._running
            now = await trio.to_thread.run_sync(checked_out_branch, root_fd)
            was = parts.applier.branch
            if now == was:
                return
            agents = parts.agents.all()
            held = [lease.path for a in agents for lease in a.keeper.held() if not lease.is_folder]
            checked_out = await trio.to_thread.run_sync(matching_head, root_fd, held)
            for agent in agents:
                for path, content in checked_out.items():
                    agent.keeper.leases.rebase(path, content)
            log.info(
                "branch %s checked out (was %s): versions follow it from now on; %d held "
                "file(s) hold just what git checked out and go back without a version",
                now, was, len(checked_out),
            )  # fmt: skip
            parts.applier.switch_branch(now)
            for agent in agents:
                agent.keeper.switch_branch(now)

    async def _settle_tree(self, root_fd: int) -> None:
        """Before leases go back: let a git command rewriting the tree finish (a while at
        most), then see whether it switched branches."""
        async with self._settling:  # one wait for all releases at once
            lock: tuple[int, int] | None = None
            with trio.move_on_after(_GIT_BUSY_WAIT_S) as waited:
                while (lock := await trio.to_thread.run_sync(git_lock, root_fd)) is not None:
                    if lock == self._stale_git_lock:
                        break  # waited for this one before: not again for every release
                    await trio.sleep(_GIT_BUSY_LOOK_S)  # git's lock file is all there is to watch
            if waited.cancelled_caught and lock is not None:
                self._stale_git_lock = lock
                log.warning(
                    "git's index.lock stayed for %.0f s (a git killed midway?): leases go back "
                    "anyway; remove .git/index.lock if no git runs", _GIT_BUSY_WAIT_S,
                )  # fmt: skip
        await self._check_branch(root_fd)

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

    async def _wind_down(self, agents: LocalAgents) -> None:
        """Every agent's leases back with their snapshots, the filesystem away, then each
        agent leaves the workspace."""
        with trio.move_on_after(_SHUTDOWN_RELEASE_S):
            async with trio.open_nursery() as nursery:
                for agent in agents.all():
                    nursery.start_soon(agent.keeper.release)
        for agent in agents.all():
            if left := agent.keeper.held():
                log.error(
                    "unmounting with %d lease(s) of %s not released: %s",
                    len(left), agent.name, left,
                )  # fmt: skip
        await trio.to_thread.run_sync(self._unmount)
        for agent in agents.all():
            try:
                with trio.move_on_after(10):
                    await agent.client.leave()
            except LeasefsError as exc:
                log.warning("%s could not leave the workspace cleanly: %s", agent.name, exc)

    async def _add_run(self, request: AddRunAgent) -> RunAgentAdded:
        """A `leasefs run` starts in this tree: its processes act as ``request.agent``, an
        agent registered now (or the one of an earlier run of that name)."""
        agents = self._running.agents
        if self._parts.handles is not None:
            raise _Refused(
                "this mount keeps a handle per open (--file-handles, or pyfuse3 without "
                "scripts/pyfuse3's patch): it cannot tell agents apart; mount without it"
            )
        if request.agent == agents.own.name:
            raise _Refused(f"{request.agent} is this mount's own agent: pick another --agent")
        agent = agents.named(request.agent)
        if agent is None:
            config = self.config
            client = await self._run_clients.enter_async_context(Client(config.coordinator))
            registered = await client.join_workspace(
                config.workspace, request.agent, host=socket.gethostname(), tool=request.tool
            )
            keeper = self._parts.keeper(client, agents.processes.acts_for(request.agent))
            agent = LocalAgent(
                name=request.agent, agent_id=registered.agent.id, token=registered.token,
                client=client, keeper=keeper, tool=request.tool,
            )  # fmt: skip
            self._running.applier.add_local_agent(agent.agent_id)
            await self._nursery.start(keeper.run)
            agents.add(agent)
            log.info("agent %s works in this tree (leasefs run)", agent.name)
        marker = secrets.token_hex(16)
        try:
            agents.processes.add(agent.name, marker, request.root_pid)
        except ProcessLookupError as exc:
            raise _Refused(f"process {request.root_pid} is not running") from exc
        return RunAgentAdded(
            agent=agent.name, agent_id=agent.agent_id, token=agent.token, marker=marker
        )

    async def _end_run(self, request: RunEnded) -> Released:
        """A `leasefs run` ended: its agent's leases go back (with snapshots) at once; a
        process of it that lives on takes them again when it writes."""
        agent = self._running.agents.named(request.agent)
        if agent is None or agent is self._running.agents.own:
            return Released(released=[])
        return Released(released=await agent.keeper.release())

    def _unmount(self) -> None:
        try:
            unmount(self.config.repo, lazy=True)
        except OSError as exc:
            log.warning("%s", exc)

    async def _control(self, request: ControlRequest) -> ControlAnswer:
        try:
            match request:
                case StatusRequest():
                    return StatusAnswer(status=await self.status())
                case ReleaseNow(paths=paths, agent=agent):
                    keepers = [
                        a.keeper
                        for a in self._running.agents.all()
                        if agent is None or a.name == agent
                    ]
                    released = [p for k in keepers for p in await k.release(paths or None)]
                    return Released(released=released)
                case UnmountRequest():
                    self._shutdown.set()
                    return Done()
                case AddRunAgent():
                    return await self._add_run(request)
                case RunEnded():
                    return await self._end_run(request)
        except _Refused as exc:
            return ControlRefusal(error=str(exc))
        except LeasefsError as exc:
            return ControlRefusal(error=f"the coordinator refused: {exc}")

    async def status(self) -> MountStatus:
        parts = self._running
        now = time.time()
        agents = parts.agents.all()
        held = [(agent, lease) for agent in agents for lease in agent.keeper.held()]
        kept = [agent.keeper.statistics() for agent in agents]
        applied = parts.applier.statistics()
        served = parts.fs.statistics()
        waiters: dict[str, list[str]] = {}
        if held:
            with trio.move_on_after(5):
                try:
                    for status in await parts.client.holders([h.path for _, h in held]):
                        if status.waiters:
                            waiters[status.path] = [w.name for w in status.waiters]
                except LeasefsError as exc:
                    log.info("waiters unknown: %s", exc)
        writing: dict[str, Set[str]] = {}
        for agent in agents:
            if agent.keeper.held():
                writing[agent.name] = await agent.keeper.open_for_writing()
        clock = trio.current_time()
        bypassers = await trio.to_thread.run_sync(
            find_bypassers, self.config.repo, parts.underlying_dev, {os.getpid()}
        )
        runs = parts.agents.processes.runs()
        return MountStatus(
            repo=str(self.config.repo),
            pid=os.getpid(),
            agent=self.config.agent,
            agent_id=parts.agent_id,
            branch=parts.applier.branch,
            lease_scope=self.config.lease_scope,
            workspace=self.config.workspace,
            coordinator=self.config.coordinator,
            coordinator_reachable=all(k.reachable for k in kept),
            events_connected=parts.follower.statistics().connected,
            held=[
                HeldStatus(
                    path=h.path,
                    token=h.token,
                    age_s=now - h.acquired_at,
                    expires_in_s=max(0.0, h.expires_at - now),
                    open_for_writing=h.path in writing.get(agent.name, ()),
                    quiet_s=max(0.0, clock - h.last_used),
                    state=h.phase.value,
                    agent=agent.name,
                )
                for agent, h in held
            ],
            waiters=waiters,
            pending_snapshots=sum(k.pending_snapshots for k in kept),
            versions_applied=applied.applied,
            refused_writes=served.refused_writes,
            lookups_served=served.lookups_served,
            conflicts=[ConflictStatus(**vars(c)) for c in applied.conflicts],
            bypassers=[str(b) for b in bypassers],
            notices=[n for agent in agents for n in agent.keeper.notices],
            run_agents=[
                RunAgentStatus(
                    agent=agent.name,
                    agent_id=agent.agent_id,
                    tool=agent.tool,
                    processes=[r.root_pid for r in runs if r.agent == agent.name],
                )
                for agent in agents[1:]
            ],
        )


class _Refused(Exception):
    """A control request this mount cannot carry out, and why."""


@dataclass(frozen=True)
class _KeeperParts:
    """What every agent's lease keeper in this tree is built from."""

    root_fd: int
    applier: Applier
    options: KeeperOptions
    handles: HandleTable | None  # with file handles: the table of open writers
    repo: Path
    before_release: Callable[[], Awaitable[None]]

    def keeper(self, client: Client, acts_for: Callable[[int], bool]) -> LeaseKeeper:
        """A keeper for the agent of ``client``, whose processes ``acts_for`` picks out."""
        writers = (
            _handles_writing(self.handles)
            if self.handles is not None
            else ProcessWriters(self.repo, acts_for)
        )
        return LeaseKeeper(
            client,
            self.root_fd,
            self.applier,
            self.options,
            open_for_writing=writers,
            leases=MountLeases(self.options.timing),
            before_release=self.before_release,
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
    agents: LocalAgents
    follower: Follower
    agent_id: int
    underlying_dev: int
