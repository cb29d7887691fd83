"""Replaying a workspace's audit log: the record every reliability test judges the server by.

The audit log is written in the same transaction as each change, so a replay in id order
must never show a path granted while held (by its own lease or a folder lease over it, or,
for a folder, by any lease under it), a release or expiry of a lease nobody held, or a
fencing token that does not grow (a folder's files narrowed to their own leases keep the
folder's token).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leasefs import Client
from leasefs.wire import AuditEntry, covers, overlaps

LEASE_ACTIONS = ("lease.granted", "lease.released", "lease.expired")
_PAGE = 5000


async def full_audit(client: Client) -> list[AuditEntry]:
    """Every audit entry of the client's workspace, in id order, page by page."""
    entries: list[AuditEntry] = []
    while True:
        page = await client.audit(after_id=entries[-1].id if entries else None, limit=_PAGE)
        entries += page
        if len(page) < _PAGE:
            return entries


@dataclass
class Replay:
    """What the lease entries of an audit log add up to."""

    holders: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (agent, token)
    tokens_by_path: dict[str, list[int]] = field(default_factory=dict)
    grants: int = 0
    ends: int = 0
    versions: int = 0


def _covering(holders: dict[str, tuple[int, int]], path: str) -> tuple[int, int] | None:
    """Who holds ``path``: its own lease, else the innermost folder lease over it."""
    keys = [key for key in holders if covers(key, path)]
    return holders[max(keys, key=lambda k: (k == path, len(k)))] if keys else None


def replay_leases(entries: list[AuditEntry]) -> Replay:
    """Check exclusivity and fencing over the log (grants, ends of leases, and the versions
    written under them); raises AssertionError at the first breach."""
    state = Replay()
    last_id = 0
    last_grant_token = 0
    for entry in entries:
        assert entry.id > last_id, f"audit ids out of order at {entry.id}"
        last_id = entry.id
        if entry.action == "version.created":
            # Fencing: a version is only ever recorded under the path's current lease.
            assert entry.path is not None
            token = int(entry.detail["token"])
            holder = _covering(state.holders, entry.path)
            assert holder == (entry.agent_id, token), (
                f"version of {entry.path} with token {token} by agent {entry.agent_id} at "
                f"audit entry {entry.id}, but the holder was {holder}"
            )
            state.versions += 1
            continue
        if entry.action not in LEASE_ACTIONS:
            continue
        assert entry.path is not None and entry.agent_id is not None, entry
        token = int(entry.detail["token"])
        if entry.action == "lease.granted":
            clash = [
                (key, held)
                for key, held in state.holders.items()
                if key == entry.path or (overlaps(key, entry.path) and held[0] != entry.agent_id)
            ]
            assert not clash, (
                f"{entry.path} granted to agent {entry.agent_id} at audit entry {entry.id} "
                f"while (key, (agent, token)) {clash[0]} held it"
            )
            previous = state.tokens_by_path.setdefault(entry.path, [])
            assert not previous or token > previous[-1], (
                f"fencing token of {entry.path} went from {previous[-1]} to {token} "
                f"at audit entry {entry.id}"
            )
            if str(entry.detail.get("reason", "")).startswith("narrowed from "):
                # Kept from a folder lease: its token, and only while the folder is held.
                folder = str(entry.detail["reason"]).removeprefix("narrowed from ")
                assert state.holders.get(folder) == (entry.agent_id, token), (
                    f"{entry.path} narrowed from {folder} at audit entry {entry.id}, which "
                    f"was held by {state.holders.get(folder)}"
                )
            else:
                assert token >= last_grant_token, f"fencing tokens went backwards at {entry.id}"
                last_grant_token = token
            previous.append(token)
            state.holders[entry.path] = (entry.agent_id, token)
            state.grants += 1
        else:
            assert state.holders.get(entry.path) == (entry.agent_id, token), (
                f"{entry.action} of {entry.path} (agent {entry.agent_id}, token {token}) at "
                f"audit entry {entry.id}, but the holder was {state.holders.get(entry.path)}"
            )
            del state.holders[entry.path]
            state.ends += 1
    return state
