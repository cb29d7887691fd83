"""The rules of leasing, with no I/O: who may be granted what, and who waits in which order.

`decide` looks at the current rows of the requested paths and says whether an agent may
have them all now. `WaitQueue` keeps the waiters of every workspace first-come first-served:
a newcomer never overtakes an earlier waiter on any path they share, and a waiter for
several paths is granted all of them at once or none (so two agents asking for {a, b} and
{b, a} cannot deadlock: neither ever holds half).

A lease is on a file path (``src/app.py``) or on a *folder* (``src/new/``, ending in '/'):
everything strictly under it, for a burst of new files that would otherwise cost a round trip
each. A folder is granted only beside a request's paths and only when it is free (nobody holds
or waits for anything under it, nothing was ever recorded under it), never waited for; under
it the holder's mount takes the files' leases itself, with the folder's fencing token, and
when someone else wants one of them the holder *narrows* the folder into leases on exactly
the files it still holds (`coordinator._leasing`). Two lease keys conflict when one covers
the other (`leasefs.wire.overlaps`) and their scopes meet (`scopes_meet`).

A lease has a *scope*: "" excludes every agent of the workspace (the default), a branch name
only the agents asking on that branch (``lease_scope = "branch"``). A branch-scoped lease
still meets a workspace-scoped one, so a mount that keeps the default is never surprised.

This is the one module holding the server's lease rules, and the one its hypothesis tests
check against a model. The services only apply them: `_grants` inside a store transaction,
`_leasing` under its lock, with the time limits of `Limits` (TTL, recall break timeout,
leases per agent).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import trio

from .store import LeaseRow

WHOLE_WORKSPACE = ""
"""The scope of a lease that excludes every agent of the workspace, whatever its branch."""


def scopes_meet(a: str, b: str) -> bool:
    """Whether leases in scopes ``a`` and ``b`` on one file exclude each other."""
    return WHOLE_WORKSPACE in (a, b) or a == b


def scope_of(lease_scope: str, branch: str) -> str:
    """The scope a request's ``lease_scope`` setting asks for on ``branch``."""
    return branch if lease_scope == "branch" else WHOLE_WORKSPACE


@dataclass(frozen=True)
class Decision:
    """Whether a request can be granted now, and what stands in the way."""

    expired: list[LeaseRow]
    own: list[LeaseRow]
    blockers: list[LeaseRow]

    @property
    def grantable(self) -> bool:
        return not self.blockers


def decide(rows: Iterable[LeaseRow], agent_id: int, now: float) -> Decision:
    """Split the current leases on the requested paths into expired, our own, and others'."""
    expired, own, blockers = [], [], []
    for row in rows:
        if row.expires_at <= now:
            expired.append(row)
        elif row.agent_id == agent_id:
            own.append(row)
        else:
            blockers.append(row)
    return Decision(expired=expired, own=own, blockers=blockers)


@dataclass(frozen=True)
class GrantRequest:
    workspace_id: int
    agent_id: int
    paths: tuple[str, ...]
    ttl_s: float
    work: str | None
    branch: str
    scope: str = WHOLE_WORKSPACE  # whom the leases exclude: see `scopes_meet`
    folders: tuple[str, ...] = ()  # granted too if free now; never waited for
    warned: tuple[tuple[str, int, str], ...] = ()  # (path, zone id, reason) of warn zones


_sequence = itertools.count(1)


@dataclass(eq=False)
class Waiter:
    """One queued request; `done` is set once `result` holds its grant."""

    request: GrantRequest
    seq: int = field(default_factory=lambda: next(_sequence))
    done: trio.Event = field(default_factory=trio.Event)
    result: object | None = None

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self.request.paths)


class WaitQueue:
    """Waiters per workspace, in arrival order."""

    def __init__(self) -> None:
        self._by_workspace: dict[int, list[Waiter]] = {}

    def add(self, request: GrantRequest) -> Waiter:
        waiter = Waiter(request)
        self._by_workspace.setdefault(request.workspace_id, []).append(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        queue = self._by_workspace.get(waiter.request.workspace_id, [])
        if waiter in queue:
            queue.remove(waiter)
        if not queue:
            self._by_workspace.pop(waiter.request.workspace_id, None)

    def remove_agent(self, agent_id: int) -> list[Waiter]:
        gone = [w for q in self._by_workspace.values() for w in q if w.request.agent_id == agent_id]
        for waiter in gone:
            self.remove(waiter)
        return gone

    def waiting_on(
        self, workspace_id: int, paths: Iterable[str], scope: str = WHOLE_WORKSPACE
    ) -> list[Waiter]:
        """Queued waiters that want any of ``paths`` in a scope meeting ``scope``, first in
        line first (the default scope meets them all)."""
        wanted = set(paths)
        return [
            w
            for w in self._by_workspace.get(workspace_id, [])
            if w.paths & wanted and scopes_meet(w.request.scope, scope)
        ]

    def waited_paths(self, workspace_id: int, scope: str = WHOLE_WORKSPACE) -> set[str]:
        """The paths waiters in a scope meeting ``scope`` are in line for."""
        return {
            p
            for w in self._by_workspace.get(workspace_id, [])
            if scopes_meet(w.request.scope, scope)
            for p in w.paths
        }

    def candidates(self, workspace_id: int) -> Iterator[tuple[Waiter, bool]]:
        """Each waiter in order with whether an earlier waiter still claims one of its paths.

        A waiter yielded with ``False`` may be granted if its paths are free; the caller sets
        its ``result`` when it does. One left without a result keeps claiming its paths, so the
        waiters behind it on those paths stay behind it.
        """
        claimed: dict[str, set[str]] = {}  # path -> scopes of the waiters still claiming it
        for waiter in list(self._by_workspace.get(workspace_id, [])):
            scope = waiter.request.scope
            ahead = any(
                scopes_meet(scope, other) for p in waiter.paths for other in claimed.get(p, ())
            )
            yield waiter, ahead
            if waiter.result is None:
                for p in waiter.paths:
                    claimed.setdefault(p, set()).add(scope)
