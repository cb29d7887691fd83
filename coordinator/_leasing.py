"""The lease service: acquire, renew, release, recall and expire, with the line of waiters.

Every lease change holds one trio lock, which keeps the in-memory wait queue and the store in
step: waiters are woken by the release or expiry itself, never by polling. Who may be granted
what, and in which order waiters go, are the pure rules of `coordinator._leases`; this module
applies them in store transactions and keeps the time (TTLs, the recall's break timeout).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial

import trio

from leasefs.wire import (
    ErrorCode,
    EventType,
    Lease,
    LeaseGrant,
    LeaseRequest,
    NarrowRequest,
    NarrowResult,
    PathStatus,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
    covers,
    is_folder,
)

from ._admission import require_role
from ._errors import ConflictError, CoordinatorError, Unauthenticated, Unprocessable
from ._grants import Blocked, find_blockers, lease_held, try_grant
from ._lease_rows import covering_lease, is_held, leases_over
from ._leases import WHOLE_WORKSPACE, GrantRequest, Waiter, WaitQueue, scope_of, scopes_meet
from ._limits import Limits
from ._reaper import Reaper
from ._records import agent_info, expire, lease_data, lease_model, leases_of, record
from ._signals import EventSignals
from ._zones import Zones
from .store import AgentRow, Store, Tx


class Leasing:
    """Leases over a `Store`: one lock, one wait queue, one reaper."""

    def __init__(
        self,
        store: Store,
        signals: EventSignals,
        limits: Limits,
        zones: Zones,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._signals = signals
        self.limits = limits
        self._zones = zones
        self._clock = clock
        self._lease_lock = trio.Lock()
        self._queue = WaitQueue()
        # (workspace, path, token) of a recalled lease -> when it lapses if not given back
        self._break_at: dict[tuple[int, str, int], float] = {}
        self.reaper = Reaper(store, self.expire_due, clock)

    # -- expiry ------------------------------------------------------------------------------

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

    # -- leases -----------------------------------------------------------------------------

    def _grant_tx(self, tx: Tx, request: GrantRequest, claimed: set[str]) -> LeaseGrant | Blocked:
        return try_grant(tx, request, claimed, self._clock(), self.limits.max_leases_per_agent)

    def _lease_held(
        self, request: GrantRequest, blocked: Blocked, why: str = "held"
    ) -> ConflictError:
        waiters = self._queue.waiting_on(request.workspace_id, request.paths, request.scope)
        return lease_held(request.paths, blocked, len(waiters), why)

    async def acquire(self, agent: AgentRow, request: LeaseRequest) -> LeaseGrant:
        require_role(agent, "member", "taking a lease")
        paths = tuple(dict.fromkeys(request.paths))
        asked = GrantRequest(
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            paths=paths,
            ttl_s=request.ttl_s,
            work=request.work,
            branch=request.branch,
            scope=scope_of(request.lease_scope, request.branch),
        )
        folders = tuple(dict.fromkeys(request.folders))

        def acquire_tx(tx: Tx, claimed: set[str]) -> tuple[GrantRequest, LeaseGrant | Blocked]:
            # The zone check shares the grant's transaction: one worker-thread trip, not two.
            warned = self._zones.admit_tx(tx, agent, paths)
            grant_request = replace(
                asked,
                warned=tuple((path, zone.id, zone.reason) for path, zone in warned),
                folders=tuple(self._zones.unzoned_tx(tx, agent, folders)) if folders else (),
            )
            return grant_request, self._grant_tx(tx, grant_request, claimed)

        async with self._lease_lock:
            if self._queue.waited_paths(agent.workspace_id):
                # Whoever waits in line for a lease that just ran out goes first, before this
                # newcomer (and before the reaper wakes).
                await self._expire_due_locked()
            claimed = self._queue.waited_paths(agent.workspace_id, asked.scope)
            grant_request, outcome = await self._store.run(partial(acquire_tx, claimed=claimed))
            self._notify([agent.workspace_id])
            if isinstance(outcome, LeaseGrant):
                self._announce_grant(outcome)
                return outcome
            if request.wait_s <= 0:
                raise self._lease_held(grant_request, outcome)
            waiter = self._queue.add(grant_request)
            await self._recall(agent.workspace_id, agent.id, outcome.holders)
        return await self._wait(waiter, request.wait_s)

    def _announce_grant(self, grant: LeaseGrant) -> None:
        if grant.leases:
            self.reaper.announce(min(lease.expires_at for lease in grant.leases))

    async def _recall(self, ws: int, asker_id: int, holders: Sequence[Lease]) -> None:
        """Tell each holder that someone waits (as SMB leases and NFSv4 delegations do): its
        mount gives the lease back as soon as no write handle is open, skipping the grace
        (and narrows a folder lease to the files it still holds)."""
        if not holders:
            return

        def recall(tx: Tx) -> None:
            now = self._clock()
            asker = tx.agents_by_ids([asker_id])[asker_id]
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
            claimed = self._queue.waited_paths(waiter.request.workspace_id, waiter.request.scope)
            blocked = await self._store.run(
                lambda tx: find_blockers(tx, waiter.request, claimed, self._clock())
            )
            raise self._lease_held(
                waiter.request, blocked, f"still held after waiting {wait_s:g} s"
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
                self.reaper.announce(min(lease.expires_at for lease in leases))
        return RenewResult(leases=leases)

    async def release(self, agent: AgentRow, request: ReleaseRequest) -> ReleaseResult:
        def release(tx: Tx) -> list[str]:
            now = self._clock()
            # Only the agent's own rows: another branch may hold the same path in its scope.
            rows = leases_over(tx, agent.workspace_id, [x.path for x in request.leases])
            rows = [r for r in rows if r.agent_id == agent.id]
            current = {r.path: r for r in rows}
            for ref in request.leases:
                # A file under a folder lease, never narrowed to its own row, has nothing to
                # delete: the folder's row covers it, with the same fencing token.
                row = current.get(ref.path) or covering_lease(rows, ref.path, now)
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
                    released.append(ref.path)
                    continue
                tx.delete_lease(row)
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
                        tx.delete_lease(row)
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

    async def narrow(self, agent: AgentRow, request: NarrowRequest) -> NarrowResult:
        """Replace a folder lease by leases on the files under it that ``agent`` still
        holds, in one transaction, then serve the line: whoever waited for another file
        under the folder goes now, whoever waits for a kept one is recalled on it."""
        ws = agent.workspace_id
        ref = request.folder
        keep = list(dict.fromkeys(request.keep))

        def narrow(tx: Tx) -> list[Lease]:
            now = self._clock()
            found = leases_over(tx, ws, [ref.path, *keep])
            folder = next((r for r in found if r.path == ref.path and r.agent_id == agent.id), None)
            # The rows in the folder's scope (other branches' leases under it are not in its
            # way); without the folder, our own rows, to tell a retry of this narrowing.
            rows = {
                r.path: r
                for r in found
                if (scopes_meet(r.scope, folder.scope) if folder else r.agent_id == agent.id)
            }
            if not is_folder(ref.path):
                raise Unprocessable(
                    f"{ref.path} is not a folder lease (its key ends with '/')",
                    code=ErrorCode.INVALID_REQUEST,
                    details={"path": ref.path},
                )
            gone = not any(r.path == ref.path and r.token == ref.token for r in found)
            if gone and all(is_held(rows.get(p), agent.id, ref.token, now) for p in keep):
                return leases_of(tx, [rows[p] for p in keep])  # narrowed already: a retry
            if folder is None or not is_held(folder, agent.id, ref.token, now):
                raise ConflictError(
                    f"you do not hold the folder lease {ref.path} with fencing token "
                    f"{ref.token}: it expired or passed to another agent; nothing was kept",
                    code=ErrorCode.STALE_TOKEN,
                    details={"path": ref.path, "token": ref.token},
                )
            outside = [p for p in keep if not covers(ref.path, p) or p == ref.path]
            if outside:
                raise Unprocessable(
                    f"{outside[0]} is not under the folder lease {ref.path}; nothing was kept",
                    code=ErrorCode.INVALID_REQUEST,
                    details={"path": outside[0]},
                )
            kept = []
            for path in keep:
                row = rows.get(path)
                if row is not None and row.agent_id != agent.id:
                    continue  # cannot happen while the folder held it; never hand it over
                if row is None or row.expires_at <= now:
                    row = replace(folder, path=path, acquired_at=now)
                    tx.upsert_lease(row)
                    record(tx, ws, now, agent.id, EventType.LEASE_GRANTED, path,
                           lease_data(row, reason="narrowed from " + ref.path))  # fmt: skip
                kept.append(row)
            tx.delete_lease(folder)
            record(tx, ws, now, agent.id, EventType.LEASE_RELEASED, ref.path,
                   lease_data(folder, reason="narrowed"))  # fmt: skip
            return leases_of(tx, kept)

        async with self._lease_lock:
            kept = await self._store.run(narrow)
            breaks = self._break_at.get((ws, ref.path, ref.token))
            if breaks is not None:  # whoever waited for the folder waits no longer for this
                for lease in kept:
                    self._break_at.setdefault((ws, lease.path, lease.token), breaks)
            self._notify([ws])
            await self._serve_waiters(ws)
            by_path = {lease.path: lease for lease in kept}
            scope = (kept[0].branch or WHOLE_WORKSPACE) if kept else WHOLE_WORKSPACE
            for waiter in self._queue.waiting_on(ws, by_path, scope):
                wanted = [by_path[p] for p in waiter.request.paths if p in by_path]
                await self._recall(ws, waiter.request.agent_id, wanted)
        return NarrowResult(leases=kept)

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
                rows = leases_over(tx, ws, paths)
                wanted = list(dict.fromkeys(paths))
            else:
                rows = tx.leases_of_workspace(ws)
                wanted = sorted({r.path for r in rows} | set(queue))
            live = {p: row for p in wanted if (row := covering_lease(rows, p, now)) is not None}
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

    # -- leaving ---------------------------------------------------------------------------

    async def leave(self, agent: AgentRow, retire_token: Callable[[int], None]) -> None:
        """Release every lease of ``agent``, drop its waits, and mark it left, in one
        transaction; ``retire_token`` runs as soon as that transaction is over."""
        async with self._lease_lock:
            for waiter in self._queue.remove_agent(agent.id):
                waiter.result = Unauthenticated(
                    "the agent left while waiting", code=ErrorCode.AGENT_LEFT
                )
                waiter.done.set()

            def leave(tx: Tx) -> None:
                now = self._clock()
                for row in tx.leases_of_agent(agent.id):
                    tx.delete_lease(row)
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
                retire_token(agent.id)
            self._notify([agent.workspace_id])
            await self._serve_waiters(agent.workspace_id)
