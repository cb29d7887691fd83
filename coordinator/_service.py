"""The coordinator's lease logic, and the front that the HTTP app calls.

Lease changes hold one trio lock, which keeps the in-memory wait queue and the store in step:
waiters are woken by the release or expiry itself, never by polling. Snapshots and the journal
(events, audit) live in their own modules; `Coordinator` owns one of each.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import trio

from leasefs.wire import (
    AgentInfo,
    AgentRegistration,
    ErrorCode,
    EventType,
    Lease,
    LeaseGrant,
    LeaseRequest,
    PathStatus,
    Registered,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
    Workspace,
)

from ._blobs import BlobFiles
from ._briefing import Briefings
from ._errors import ConflictError, CoordinatorError, NotFoundError, TooMany, Unauthenticated
from ._journal import Journal
from ._knowledge import Knowledge
from ._leases import GrantRequest, Waiter, WaitQueue, decide
from ._limits import Limits
from ._messages import Messages
from ._records import (
    agent_info,
    expire,
    hash_token,
    lease_data,
    lease_model,
    leases_of,
    record,
    version_model,
)
from ._signals import EventSignals
from ._snapshots import Snapshots
from ._tokens import TokenCache
from ._work import WorkSessions
from ._zones import Zones
from .store import AgentRow, LeaseRow, Store, Tx

_REAPER_MAX_SLEEP_S = 60.0


@dataclass(frozen=True)
class _Blocked:
    """Why a grant could not happen now: leases of others and waiters ahead in line."""

    holders: list[Lease]
    queued_paths: list[str]


class Coordinator:
    """The coordinator's state machine over a `Store` and the blob files."""

    def __init__(
        self,
        store: Store,
        blobs: BlobFiles,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self.limits = limits or Limits()
        self._clock = clock
        self._lease_lock = trio.Lock()
        self._queue = WaitQueue()
        self._tokens = TokenCache()
        self._reaper_wake = trio.Event()
        self._reaper_due = -math.inf  # when the reaper will look next; -inf while it reads
        self._announced = math.inf  # earliest expiry granted while the reaper read
        # (workspace, path, token) of a recalled lease -> when it lapses if not given back
        self._break_at: dict[tuple[int, str, int], float] = {}
        self._signals = EventSignals()
        self.snapshots = Snapshots(
            store, blobs, self._signals, max_blob_bytes=self.limits.max_blob_bytes, clock=clock
        )
        self.journal = Journal(store, self._signals, clock)
        self.work = WorkSessions(store, self._signals, clock)
        self.knowledge = Knowledge(store, self._signals, clock)
        self.messages = Messages(store, self._signals, clock)
        self.briefings = Briefings(store, clock)
        self.zones = Zones(store, self._signals, clock)

    # -- background work --------------------------------------------------------------------

    async def run_reaper(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Expire leases when their TTL runs out, and hand their paths to the next waiters.

        It sleeps until the earliest expiry in the store; a grant or renewal wakes it only if
        it moves that moment earlier (`_announce_expiry`), not on every lease change.
        """
        task_status.started()
        while True:
            self._reaper_due = -math.inf  # while reading, only collect announced expiries
            self._announced = math.inf
            next_expiry = await self._store.read(lambda tx: tx.next_expiry())
            now = self._clock()
            due = min(
                now + _REAPER_MAX_SLEEP_S,
                math.inf if next_expiry is None else next_expiry,
                self._announced,
            )
            if due <= now:
                await self.expire_due()
                continue
            self._reaper_wake = trio.Event()
            self._reaper_due = due
            with trio.move_on_after(due - now):
                await self._reaper_wake.wait()

    def _announce_expiry(self, expires_at: float) -> None:
        """A lease now runs out at ``expires_at``: wake the reaper if that is sooner than it
        planned to look."""
        self._announced = min(self._announced, expires_at)
        if expires_at < self._reaper_due:
            self._reaper_wake.set()

    async def expire_due(self) -> None:
        async with self._lease_lock:
            await self._expire_due_locked()

    async def _expire_due_locked(self) -> None:
        """Expire what ran out and serve the lines waiting for it. Holds the lease lock."""
        now = self._clock()
        workspaces = await self._store.run(lambda tx: expire(tx, tx.leases_expired_by(now), now))
        self._notify(workspaces)
        for workspace_id in workspaces:
            await self._serve_waiters(workspace_id)

    def _notify(self, workspace_ids: Iterable[int]) -> None:
        self._signals.notify(workspace_ids)

    # -- workspaces and agents --------------------------------------------------------------

    async def create_workspace(self, name: str) -> Workspace:
        def create(tx: Tx) -> Workspace:
            if tx.workspace_by_name(name) is not None:
                raise ConflictError(
                    f"workspace {name!r} already exists", code=ErrorCode.WORKSPACE_EXISTS
                )
            row = tx.insert_workspace(name, self._clock())
            record(
                tx,
                row.id,
                row.created_at,
                None,
                "workspace.created",
                None,
                {"name": name},
                publish=False,
            )
            return Workspace(name=row.name, created_at=row.created_at)

        return await self._store.run(create)

    async def get_workspace(self, name: str) -> Workspace:
        row = await self._store.read(lambda tx: tx.workspace_by_name(name))
        if row is None:
            raise NotFoundError(
                f"there is no workspace named {name!r}", code=ErrorCode.UNKNOWN_WORKSPACE
            )
        return Workspace(name=row.name, created_at=row.created_at)

    async def register(self, registration: AgentRegistration) -> Registered:
        token = secrets.token_urlsafe(32)

        def register(tx: Tx) -> Registered:
            workspace = tx.workspace_by_name(registration.workspace)
            if workspace is None:
                raise NotFoundError(
                    f"there is no workspace named {registration.workspace!r}; create it first",
                    code=ErrorCode.UNKNOWN_WORKSPACE,
                )
            now = self._clock()
            row = tx.insert_agent(
                workspace.id,
                registration.name,
                registration.host,
                registration.tool,
                hash_token(token),
                now,
            )
            info = agent_info(row)
            record(tx, workspace.id, now, row.id, EventType.AGENT_JOINED, None, info.model_dump())
            return Registered(workspace=workspace.name, agent=info, token=token)

        registered = await self._store.run(register)
        self._notify([await self._workspace_id(registered.workspace)])
        return registered

    async def _workspace_id(self, name: str) -> int:
        row = await self._store.read(lambda tx: tx.workspace_by_name(name))
        assert row is not None
        return row.id

    async def authenticate(self, token: str | None) -> AgentRow:
        if not token:
            raise Unauthenticated("this call needs an agent token: 'Authorization: Bearer <token>'")
        token_hash = hash_token(token)
        row = self._tokens.get(token_hash)
        if row is None:
            generation = self._tokens.generation
            row = await self._store.read(lambda tx: tx.agent_by_token_hash(token_hash))
            if row is not None:
                self._tokens.remember(token_hash, row, generation)
        if row is None:
            raise Unauthenticated("the agent token is not valid; register again to get one")
        if row.left_at is not None:
            raise Unauthenticated(
                "this agent has left its workspace; register again", code=ErrorCode.AGENT_LEFT
            )
        return row

    async def describe_agent(self, agent: AgentRow) -> AgentInfo:
        return agent_info(agent)

    async def leave(self, agent: AgentRow) -> None:
        """Release every lease of ``agent``, drop its waits, and retire its token."""
        async with self._lease_lock:
            for waiter in self._queue.remove_agent(agent.id):
                waiter.result = Unauthenticated(
                    "the agent left while waiting", code=ErrorCode.AGENT_LEFT
                )
                waiter.done.set()

            def leave(tx: Tx) -> None:
                now = self._clock()
                for row in tx.leases_of_agent(agent.id):
                    tx.delete_lease(row.workspace_id, row.path)
                    data = lease_data(row, reason="agent left")
                    record(
                        tx,
                        row.workspace_id,
                        now,
                        agent.id,
                        EventType.LEASE_RELEASED,
                        row.path,
                        data,
                    )
                tx.mark_agent_left(agent.id, now)
                record(
                    tx,
                    agent.workspace_id,
                    now,
                    agent.id,
                    EventType.AGENT_LEFT,
                    None,
                    {"name": agent.name},
                )

            try:
                await self._store.run(leave)
            finally:  # even if the commit's outcome is unknown: re-read the row next time
                self._tokens.forget(agent.id)
            self._notify([agent.workspace_id])
            await self._serve_waiters(agent.workspace_id)

    # -- leases -----------------------------------------------------------------------------

    def _check_lease_count(self, tx: Tx, agent_id: int, new: int, now: float) -> None:
        limit = self.limits.max_leases_per_agent
        if new <= 0 or (held := tx.count_live_leases_of_agent(agent_id, now)) + new <= limit:
            return
        raise TooMany(
            f"an agent may hold at most {limit} leases (leasefs serve --max-leases-per-agent); "
            f"this one holds {held} and asks for {new} more: release some first",
            code=ErrorCode.TOO_MANY_LEASES,
            details={"max_leases": limit, "held": held, "requested": new},
        )

    def _grant_tx(self, tx: Tx, request: GrantRequest, claimed: set[str]) -> LeaseGrant | _Blocked:
        now = self._clock()
        ws = request.workspace_id
        decision = decide(tx.leases_for_paths(ws, request.paths), request.agent_id, now)
        expire(tx, decision.expired, now)
        own = {row.path: row for row in decision.own}
        queued = [p for p in request.paths if p in claimed and p not in own]
        if decision.blockers or queued:
            return _Blocked(holders=leases_of(tx, decision.blockers), queued_paths=queued)
        self._check_lease_count(tx, request.agent_id, len(request.paths) - len(own), now)
        token: int | None = None
        rows = []
        for path in request.paths:
            if path in own:
                row = replace(
                    own[path],
                    expires_at=now + request.ttl_s,
                    ttl_s=request.ttl_s,
                    work=request.work or own[path].work,
                )
            else:
                token = token or tx.next_fencing_token(ws)
                row = LeaseRow(
                    ws,
                    path,
                    request.agent_id,
                    token,
                    now,
                    now + request.ttl_s,
                    request.ttl_s,
                    request.work,
                )
                record(
                    tx, ws, now, request.agent_id, EventType.LEASE_GRANTED, path, lease_data(row)
                )
                for warned_path, zone_id, reason in request.warned:
                    if warned_path == path:
                        record(tx, ws, now, request.agent_id, "zone.warned", path,
                               {"zone_id": zone_id, "reason": reason}, publish=False)  # fmt: skip
            tx.upsert_lease(row)
            rows.append(row)
        latest = tx.latest_versions(ws, request.paths, request.branch)
        agents = tx.agents_by_ids([request.agent_id, *(v.agent_id for v in latest.values())])
        versions = {
            path: (version_model(latest[path], agents) if path in latest else None)
            for path in request.paths
        }
        return LeaseGrant(leases=[lease_model(r, agents) for r in rows], versions=versions)

    async def acquire(self, agent: AgentRow, request: LeaseRequest) -> LeaseGrant:
        paths = tuple(dict.fromkeys(request.paths))
        asked = GrantRequest(
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            paths=paths,
            ttl_s=request.ttl_s,
            work=request.work,
            branch=request.branch,
        )

        def acquire_tx(tx: Tx, claimed: set[str]) -> tuple[GrantRequest, LeaseGrant | _Blocked]:
            # The zone check shares the grant's transaction: one worker-thread trip, not two.
            warned = self.zones.admit_tx(tx, agent, paths)
            grant_request = replace(
                asked, warned=tuple((path, zone.id, zone.reason) for path, zone in warned)
            )
            return grant_request, self._grant_tx(tx, grant_request, claimed)

        async with self._lease_lock:
            if self._queue.waited_paths(agent.workspace_id):
                # Whoever waits in line for a lease that just ran out goes first, before this
                # newcomer (and before the reaper wakes).
                await self._expire_due_locked()
            claimed = self._queue.waited_paths(agent.workspace_id)
            grant_request, outcome = await self._store.run(partial(acquire_tx, claimed=claimed))
            self._notify([agent.workspace_id])
            if isinstance(outcome, LeaseGrant):
                self._announce_grant(outcome)
                return outcome
            if request.wait_s <= 0:
                raise await self._lease_held(agent.workspace_id, paths, outcome)
            waiter = self._queue.add(grant_request)
            await self._recall(agent, outcome.holders)
        return await self._wait(waiter, request.wait_s)

    def _announce_grant(self, grant: LeaseGrant) -> None:
        if grant.leases:
            self._announce_expiry(min(lease.expires_at for lease in grant.leases))

    async def _recall(self, asker: AgentRow, holders: Sequence[Lease]) -> None:
        """Tell each holder that someone waits (as SMB leases and NFSv4 delegations do): its
        mount gives the lease back as soon as no write handle is open, skipping the grace."""
        if not holders:
            return

        ws = asker.workspace_id

        def recall(tx: Tx) -> None:
            now = self._clock()
            for lease in holders:
                self._break_at.setdefault(
                    (ws, lease.path, lease.token), now + self.limits.break_timeout_s
                )
                record(tx, ws, now, asker.id, EventType.LEASE_RECALLED, lease.path,
                       {"token": lease.token, "holder_id": lease.holder.id, "by": asker.name})  # fmt: skip

        self._forget_old_breaks(self._clock())
        await self._store.run(recall)
        self._notify([ws])

    def _forget_old_breaks(self, now: float) -> None:
        if len(self._break_at) > 10_000:
            self._break_at = {k: v for k, v in self._break_at.items() if v > now - 3600}

    async def _wait(self, waiter: Waiter, wait_s: float) -> LeaseGrant:
        """Wait in line; on timeout leave the line, on cancellation give back a late grant."""
        try:
            with trio.move_on_after(wait_s):
                await waiter.done.wait()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                async with self._lease_lock:
                    self._queue.remove(waiter)
                    if isinstance(waiter.result, LeaseGrant):
                        await self._release_rows(waiter.request.agent_id, waiter.result.leases)
                    else:  # whoever waited behind it may go now
                        await self._serve_waiters(waiter.request.workspace_id)
            raise
        async with self._lease_lock:
            self._queue.remove(waiter)
            result = waiter.result
            if isinstance(result, LeaseGrant):
                return result
            if isinstance(result, CoordinatorError):
                raise result
            await self._serve_waiters(waiter.request.workspace_id)  # those behind it may go now
            claimed = self._queue.waited_paths(waiter.request.workspace_id)
            blocked = await self._store.run(
                lambda tx: self._blockers_tx(tx, waiter.request, claimed)
            )
            raise await self._lease_held(
                waiter.request.workspace_id,
                waiter.request.paths,
                blocked,
                f"still held after waiting {wait_s:g} s",
            )

    def _blockers_tx(self, tx: Tx, request: GrantRequest, claimed: set[str]) -> _Blocked:
        decision = decide(
            tx.leases_for_paths(request.workspace_id, request.paths),
            request.agent_id,
            self._clock(),
        )
        queued = [p for p in request.paths if p in claimed]
        return _Blocked(holders=leases_of(tx, decision.blockers), queued_paths=queued)

    async def _lease_held(
        self, workspace_id: int, paths: Sequence[str], blocked: _Blocked, why: str = "held"
    ) -> ConflictError:
        parts = [
            f"{h.path} by {h.holder.name}@{h.holder.host or '?'} (agent {h.holder.id})"
            for h in blocked.holders
        ]
        parts += [f"{p} promised to another agent waiting in line" for p in blocked.queued_paths]
        waiters = self._queue.waiting_on(workspace_id, paths)
        return ConflictError(
            f"lease {why}: {'; '.join(parts) or ', '.join(paths)}",
            code=ErrorCode.LEASE_HELD,
            details={
                "holders": [h.model_dump() for h in blocked.holders],
                "queued_paths": blocked.queued_paths,
                "waiters": len(waiters),
            },
        )

    async def _serve_waiters(self, workspace_id: int) -> None:
        """Grant the waiters that can be served now, in arrival order. Holds the lease lock."""
        for waiter, ahead in self._queue.candidates(workspace_id):
            if ahead or waiter.result is not None:
                continue
            outcome = await self._store.run(
                partial(self._grant_tx, request=waiter.request, claimed=set())
            )
            if isinstance(outcome, LeaseGrant):
                self._announce_grant(outcome)
                waiter.result = outcome
                self._queue.remove(waiter)
                waiter.done.set()
        self._notify([workspace_id])

    async def renew(self, agent: AgentRow, request: RenewRequest) -> RenewResult:
        def renew(tx: Tx) -> list[Lease]:
            now = self._clock()
            renewed = []
            for row in tx.leases_of_agent(agent.id):
                if row.expires_at <= now:
                    continue
                if self._break_at.get((row.workspace_id, row.path, row.token), math.inf) <= now:
                    # Recalled and kept past the break timeout: no longer renewed, it lapses
                    # by its TTL (the holder, missing it from the answer, stops writing now).
                    continue
                ttl = request.ttl_s or row.ttl_s
                row = replace(row, expires_at=now + ttl, ttl_s=ttl)
                tx.upsert_lease(row)
                renewed.append(row)
            return leases_of(tx, renewed)

        async with self._lease_lock:
            leases = await self._store.run(renew)
            if leases:
                self._announce_expiry(min(lease.expires_at for lease in leases))
        return RenewResult(leases=leases)

    async def release(self, agent: AgentRow, request: ReleaseRequest) -> ReleaseResult:
        def release(tx: Tx) -> list[str]:
            now = self._clock()
            current = {
                r.path: r
                for r in tx.leases_for_paths(agent.workspace_id, [x.path for x in request.leases])
            }
            for ref in request.leases:
                row = current.get(ref.path)
                if row is None or row.agent_id != agent.id or row.token != ref.token:
                    raise ConflictError(
                        f"you do not hold {ref.path} with fencing token {ref.token}: the lease "
                        "expired or passed to another agent; nothing was released",
                        code=ErrorCode.STALE_TOKEN,
                        details={"path": ref.path, "token": ref.token},
                    )
            released = []
            for ref in request.leases:
                row = current.pop(ref.path, None)
                if row is None:
                    continue
                tx.delete_lease(row.workspace_id, row.path)
                record(
                    tx,
                    row.workspace_id,
                    now,
                    agent.id,
                    EventType.LEASE_RELEASED,
                    row.path,
                    lease_data(row),
                )
                released.append(row.path)
            return released

        async with self._lease_lock:
            released = await self._store.run(release)
            self._notify([agent.workspace_id])
            await self._serve_waiters(agent.workspace_id)
        return ReleaseResult(released=released)

    async def _release_rows(self, agent_id: int, leases: Sequence[Lease]) -> None:
        """Give back a grant nobody will receive (its waiter went away). Holds the lease lock."""

        def release(tx: Tx) -> int | None:
            now = self._clock()
            workspace_id = None
            for lease in leases:
                for row in tx.leases_of_agent(agent_id):
                    if row.path == lease.path and row.token == lease.token:
                        tx.delete_lease(row.workspace_id, row.path)
                        data = lease_data(row, reason="waiter went away")
                        record(
                            tx,
                            row.workspace_id,
                            now,
                            agent_id,
                            EventType.LEASE_RELEASED,
                            row.path,
                            data,
                        )
                        workspace_id = row.workspace_id
            return workspace_id

        workspace_id = await self._store.run(release)
        if workspace_id is not None:
            self._notify([workspace_id])
            await self._serve_waiters(workspace_id)

    async def path_status(self, agent: AgentRow, paths: Sequence[str] | None) -> list[PathStatus]:
        ws = agent.workspace_id
        now = self._clock()
        waiting_paths = self._queue.waited_paths(ws)
        # A snapshot of the queue taken now, read against the store below.
        queue = {
            p: [w.request.agent_id for w in self._queue.waiting_on(ws, [p])] for p in waiting_paths
        }

        def status(tx: Tx) -> list[PathStatus]:
            if paths:
                rows = tx.leases_for_paths(ws, paths)
                wanted = list(dict.fromkeys(paths))
            else:
                rows = tx.leases_of_workspace(ws)
                wanted = sorted({r.path for r in rows} | set(queue))
            live = {r.path: r for r in rows if r.expires_at > now}
            agents = tx.agents_by_ids(
                [*(r.agent_id for r in live.values()), *(a for ids in queue.values() for a in ids)]
            )
            return [
                PathStatus(
                    path=p,
                    lease=lease_model(live[p], agents) if p in live else None,
                    waiters=[agent_info(agents[a]) for a in queue.get(p, [])],
                )
                for p in wanted
            ]

        return await self._store.read(status)
