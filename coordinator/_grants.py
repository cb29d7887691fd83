"""One grant attempt inside one store transaction, and the 409 that explains a refusal.

These functions run in the store's worker thread, inside the transaction of the lease change
that calls them (`coordinator._leasing`). They apply the rules of `coordinator._leases` to the
rows they read and never touch the wait queue or the lease lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from leasefs.wire import ErrorCode, EventType, Lease, LeaseGrant, covers, is_folder

from ._errors import ConflictError, TooMany
from ._lease_rows import leases_over
from ._leases import GrantRequest, decide
from ._records import expire, lease_data, lease_model, leases_of, record, version_model
from .store import LeaseRow, Tx


@dataclass(frozen=True)
class Blocked:
    """Why a grant could not happen now: leases of others and waiters ahead in line."""

    holders: list[Lease]
    queued_paths: list[str]


def try_grant(
    tx: Tx, request: GrantRequest, claimed: set[str], now: float, max_leases: int
) -> LeaseGrant | Blocked:
    """Grant all of ``request``'s paths, or none if another agent holds one (or a folder
    above it) or a waiter in line has ``claimed`` it; expired leases on the paths are
    expired on the way. The request's folders are granted too where they are free."""
    ws = request.workspace_id
    decision = decide(leases_over(tx, ws, request.paths, request.scope), request.agent_id, now)
    expire(tx, decision.expired, now)
    own = {row.path: row for row in decision.own}
    queued = [p for p in request.paths if p in claimed and p not in own]
    if decision.blockers or queued:
        return Blocked(holders=leases_of(tx, decision.blockers), queued_paths=queued)
    for path in request.paths:
        if path in own and own[path].scope != request.scope:
            tx.delete_lease(own[path])  # re-scoped below: its mount changed branch or setting
    folders = [f for f in request.folders if folder_is_free(tx, request, f, claimed, now)]
    new = sum(1 for p in request.paths if p not in own) + len(folders)
    check_lease_count(tx, request.agent_id, new, now, max_leases)
    token: int | None = None
    rows = []
    for path in (*request.paths, *folders):
        if path in own:
            row = replace(
                own[path],
                expires_at=now + request.ttl_s,
                ttl_s=request.ttl_s,
                work=request.work or own[path].work,
                scope=request.scope,
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
                request.scope,
            )
            record(tx, ws, now, request.agent_id, EventType.LEASE_GRANTED, path, lease_data(row))
            for warned_path, zone_id, reason in request.warned:
                if warned_path == path:
                    record(tx, ws, now, request.agent_id, "zone.warned", path,
                           {"zone_id": zone_id, "reason": reason}, publish=False)  # fmt: skip
        tx.upsert_lease(row)
        rows.append(row)
    latest = tx.latest_versions(ws, request.paths, request.branch)
    files = [p for p in request.paths if not is_folder(p)]
    other_branches = tx.latest_versions_elsewhere(ws, files, request.branch)
    authors = [v.agent_id for v in latest.values()]
    authors += [v.agent_id for found in other_branches.values() for v in found]
    agents = tx.agents_by_ids([request.agent_id, *authors])
    versions = {
        path: (version_model(latest[path], agents) if path in latest else None)
        for path in request.paths
    }
    elsewhere = {
        path: [version_model(v, agents) for v in found] for path, found in other_branches.items()
    }
    return LeaseGrant(
        leases=[lease_model(r, agents) for r in rows], versions=versions, elsewhere=elsewhere
    )


def folder_is_free(
    tx: Tx, request: GrantRequest, folder: str, claimed: set[str], now: float
) -> bool:
    """May ``folder`` be leased now: nobody (the asker included) holds anything over or
    under it, no waiter wants anything under it, and no version was ever recorded under it
    on the request's branch (the holder's mount takes its files as new ones, with no content
    to bring in)."""
    rows = leases_over(tx, request.workspace_id, [folder], request.scope)
    if any(row.expires_at > now for row in rows):
        return False
    if any(covers(folder, path) for path in claimed):
        return False
    return not tx.has_versions_under(request.workspace_id, folder, request.branch)


def find_blockers(tx: Tx, request: GrantRequest, claimed: set[str], now: float) -> Blocked:
    """What still stands between ``request`` and its grant."""
    rows = leases_over(tx, request.workspace_id, request.paths, request.scope)
    decision = decide(rows, request.agent_id, now)
    queued = [p for p in request.paths if p in claimed]
    return Blocked(holders=leases_of(tx, decision.blockers), queued_paths=queued)


def check_lease_count(tx: Tx, agent_id: int, new: int, now: float, limit: int) -> None:
    """Refuse (429) an agent that would hold more than ``limit`` live leases."""
    if new <= 0 or (held := tx.count_live_leases_of_agent(agent_id, now)) + new <= limit:
        return
    raise TooMany(
        f"an agent may hold at most {limit} leases (leasefs serve --max-leases-per-agent); "
        f"this one holds {held} and asks for {new} more: release some first",
        code=ErrorCode.TOO_MANY_LEASES,
        details={"max_leases": limit, "held": held, "requested": new},
    )


def lease_held(
    paths: Sequence[str], blocked: Blocked, waiters: int, why: str = "held"
) -> ConflictError:
    """The 409 ``lease_held`` naming who holds what, and how many wait in line."""
    parts = [
        f"{h.path}{' (a folder lease)' if is_folder(h.path) else ''} by {h.holder.label} "
        f"(agent {h.holder.id})"
        for h in blocked.holders
    ]
    parts += [f"{p} promised to another agent waiting in line" for p in blocked.queued_paths]
    return ConflictError(
        f"lease {why}: {'; '.join(parts) or ', '.join(paths)}",
        code=ErrorCode.LEASE_HELD,
        details={
            "holders": [h.model_dump() for h in blocked.holders],
            "queued_paths": blocked.queued_paths,
            "waiters": waiters,
        },
    )
