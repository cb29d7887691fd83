"""Replaying a workspace's audit log: the record every reliability test judges the server by.

The audit log is written in the same transaction as each change, so a replay in id order
must never show a path granted while held, a release or expiry of a lease nobody held, or a
fencing token that does not grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leasefs import Client
from leasefs.wire import AuditEntry

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
            assert state.holders.get(entry.path) == (entry.agent_id, token), (
                f"version of {entry.path} with token {token} by agent {entry.agent_id} at "
                f"audit entry {entry.id}, but the holder was {state.holders.get(entry.path)}"
            )
            state.versions += 1
            continue
        if entry.action not in LEASE_ACTIONS:
            continue
        assert entry.path is not None and entry.agent_id is not None, entry
        token = int(entry.detail["token"])
        if entry.action == "lease.granted":
            held = state.holders.get(entry.path)
            assert held is None, (
                f"{entry.path} granted to agent {entry.agent_id} at audit entry {entry.id} "
                f"while agent {held[0]} held it with token {held[1]}"
            )
            previous = state.tokens_by_path.setdefault(entry.path, [])
            assert not previous or token > previous[-1], (
                f"fencing token of {entry.path} went from {previous[-1]} to {token} "
                f"at audit entry {entry.id}"
            )
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
