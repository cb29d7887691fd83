"""The lease rows that bear on a key: its own row, the folder leases above it, and for a
folder key everything under it.

Grants, releases, versions and the status of a path all ask this one question, so a file
under someone's folder lease is held by them everywhere, not only where grants are decided.
Rows of every scope come back unless a scope is named: then only those that meet it.
"""

from __future__ import annotations

from collections.abc import Sequence

from leasefs.wire import covers, folders_above, is_folder

from ._leases import scopes_meet
from .store import LeaseRow, Tx


def leases_over(
    tx: Tx, workspace_id: int, keys: Sequence[str], scope: str | None = None
) -> list[LeaseRow]:
    """Every row that overlaps one of ``keys`` (covers it, or, for a folder, lies under it),
    in a scope meeting ``scope`` (any scope if None)."""
    exact = list(dict.fromkeys(k for key in keys for k in (key, *folders_above(key))))
    found = tx.leases_for_paths(workspace_id, exact)
    for key in keys:
        if is_folder(key):
            found += tx.leases_under(workspace_id, key)
    rows = {(row.scope, row.path): row for row in found}
    return [row for row in rows.values() if scope is None or scopes_meet(row.scope, scope)]


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
    the path's own, or a folder's above it (whose files carry the folder's token), and no
    other agent's more specific one in a scope it meets."""
    rows = leases_over(tx, workspace_id, [path])
    mine = [row for row in rows if row.agent_id == agent_id and row.token == token]
    own = covering_lease(mine, path, now)
    if own is None:
        return None
    lease = covering_lease([r for r in rows if scopes_meet(r.scope, own.scope)], path, now)
    return lease if is_held(lease, agent_id, token, now) else None
