"""The lease rows that bear on a key: its own row, the folder leases above it, and for a
folder key everything under it.

Grants, releases, versions and the status of a path all ask this one question, so a file
under someone's folder lease is held by them everywhere, not only where grants are decided.
"""

from __future__ import annotations

from collections.abc import Sequence

from leasefs.wire import covers, folders_above, is_folder

from .store import LeaseRow, Tx


def leases_over(tx: Tx, workspace_id: int, keys: Sequence[str]) -> list[LeaseRow]:
    """Every row that overlaps one of ``keys`` (covers it, or, for a folder, lies under it)."""
    exact = list(dict.fromkeys(k for key in keys for k in (key, *folders_above(key))))
    rows = {row.path: row for row in tx.leases_for_paths(workspace_id, exact)}
    for key in keys:
        if is_folder(key):
            rows.update((row.path, row) for row in tx.leases_under(workspace_id, key))
    return list(rows.values())


def covering_lease(rows: Sequence[LeaseRow], path: str, now: float) -> LeaseRow | None:
    """The live row among ``rows`` that covers ``path``: its own, else the innermost folder."""
    live = [row for row in rows if row.expires_at > now and covers(row.path, path)]
    return max(live, key=lambda row: (row.path == path, len(row.path)), default=None)


def is_held(row: LeaseRow | None, agent_id: int, token: int, now: float) -> bool:
    """``row`` is a live lease of ``agent_id`` under fencing ``token``."""
    return (
        row is not None and row.agent_id == agent_id and row.token == token and row.expires_at > now
    )


def held_by(
    tx: Tx, workspace_id: int, agent_id: int, path: str, token: int, now: float
) -> LeaseRow | None:
    """The live lease under which ``agent_id`` may change ``path`` with fencing ``token``:
    the path's own, or a folder's above it (whose files carry the folder's token)."""
    lease = covering_lease(leases_over(tx, workspace_id, [path]), path, now)
    return lease if is_held(lease, agent_id, token, now) else None
