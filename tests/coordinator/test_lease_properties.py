"""Lease rules checked as properties: random sequences of calls against a small model.

Three machines, from the inside out:

- `LeaseRulesMachine` drives the pure rules (`decide`, `WaitQueue`) the way the service does,
  without a store or a clock.
- `ServiceMachine` drives `Coordinator` in process, on a real SQLite store and a fake wall
  clock, with real waiting tasks: fair waiting, expiry and hand-over are exact, so the model
  predicts every holder, waiter and fencing token.
- `RealCoordinatorMachine` drives a real coordinator process through `leasefs.Client`, with
  real TTLs, and replays the audit log at the end of every run.

Hypothesis's state machines are synchronous; the two machines that talk to trio code run in a
worker thread (`trio.to_thread`) and call into the test's trio loop with `trio.from_thread`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
import trio
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from coordinator._blobs import BlobFiles
from coordinator._errors import ConflictError, CoordinatorError
from coordinator._leases import GrantRequest, Waiter, WaitQueue, decide
from coordinator._limits import Limits
from coordinator._service import Coordinator
from coordinator.store import AgentRow, LeaseRow, SqliteStore
from leasefs import Client, LeaseHeld, StaleToken
from leasefs.wire import (
    AgentRegistration,
    LeaseGrant,
    LeaseRef,
    LeaseRequest,
    ReleaseRequest,
    RenewRequest,
    VersionCreate,
)
from tests.conftest import AgentFactory
from tests.helpers import CoordinatorProcess
from tests.reliability.replay import full_audit, replay_leases

T = TypeVar("T")

AGENTS = (0, 1, 2)
PATHS = ("a.py", "b.py", "c.py")
path_sets = st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True).map(tuple)
# Waiters only interact when their sets overlap: two paths make that common.
FEW_PATHS = PATHS[:2]
few_path_sets = st.lists(st.sampled_from(FEW_PATHS), min_size=1, max_size=2, unique=True).map(tuple)
# Example databases would land in the repository (.hypothesis/); failures print a blob instead.
# No explain phase: it replays hundreds of variants of a failure, each with real I/O.
_COMMON = settings(
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- the model every machine is compared with ----------------------------------------------


@dataclass
class Held:
    agent: int
    token: int
    expires_at: float
    ttl_s: float


@dataclass(eq=False)
class Pending:
    """A request waiting in line, in the model."""

    agent: int
    paths: tuple[str, ...]
    granted: dict[str, int] | None = None  # path -> token, once the model serves it


@dataclass
class LeaseModel:
    """What the design says the lease table and the line look like: nothing more."""

    holders: dict[str, Held] = field(default_factory=dict)
    line: list[Pending] = field(default_factory=list)
    fencing: int = 0

    def claimed(self) -> set[str]:
        return {p for pending in self.line for p in pending.paths}

    def free_for(self, agent: int, paths: tuple[str, ...]) -> bool:
        return all(p not in self.holders or self.holders[p].agent == agent for p in paths)

    def may_grant_now(self, agent: int, paths: tuple[str, ...]) -> bool:
        """A newcomer gets its paths if nobody else holds them and nobody waits for them."""
        claimed = self.claimed()
        own = {p for p in paths if p in self.holders and self.holders[p].agent == agent}
        return self.free_for(agent, paths) and not (set(paths) & claimed) - own

    def grant(self, agent: int, paths: tuple[str, ...], ttl_s: float, now: float) -> dict[str, int]:
        """Grant all of ``paths``: own leases keep their token, new ones share a fresh one."""
        assert self.free_for(agent, paths)
        token: int | None = None
        tokens = {}
        for path in paths:
            held = self.holders.get(path)
            if held is None:
                if token is None:
                    self.fencing += 1
                    token = self.fencing
                held = Held(agent, token, now + ttl_s, ttl_s)
            else:
                held = Held(agent, held.token, now + ttl_s, ttl_s)
            self.holders[path] = held
            tokens[path] = held.token
        return tokens

    def serve(self, ttl_s: float, now: float) -> list[Pending]:
        """Hand free paths to waiters first come, first served; a waiter never overtakes one
        ahead of it on a shared path."""
        served = []
        claimed: set[str] = set()
        for pending in list(self.line):
            if not set(pending.paths) & claimed and self.free_for(pending.agent, pending.paths):
                pending.granted = self.grant(pending.agent, pending.paths, ttl_s, now)
                self.line.remove(pending)
                served.append(pending)
            else:
                claimed |= set(pending.paths)
        return served

    def expire(self, now: float) -> list[str]:
        gone = [p for p, held in self.holders.items() if held.expires_at <= now]
        for path in gone:
            del self.holders[path]
        return gone

    def stuck(self) -> list[Pending]:
        """Waiters whose paths are free with nobody ahead: a correct server has none."""
        claimed: set[str] = set()
        stuck = []
        for pending in self.line:
            if not set(pending.paths) & claimed and self.free_for(pending.agent, pending.paths):
                stuck.append(pending)
            claimed |= set(pending.paths)
        return stuck


# -- 1. the pure rules -----------------------------------------------------------------------


def _row(ws: int, path: str, agent: int, token: int, now: float, ttl: float) -> LeaseRow:
    return LeaseRow(ws, path, agent, token, now, now + ttl, ttl, None)


class LeaseRulesMachine(RuleBasedStateMachine):
    """`decide` and `WaitQueue` composed exactly as `Coordinator` composes them.

    The queue is compared with a plain list of the same waiters in arrival order; the lease
    table is a dict. Two workspaces show that lines never mix.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue = WaitQueue()
        self.arrivals: list[Waiter] = []
        self.leases: dict[tuple[int, str], LeaseRow] = {}
        self.now = 0.0
        self.fencing = {1: 0, 2: 0}
        self.last_token: dict[tuple[int, str], int] = {}

    def _decide(self, ws: int, agent: int, paths: tuple[str, ...]) -> tuple[bool, set[str]]:
        """Run `decide` on the rows of ``paths``, check its split, drop expired rows."""
        rows = [self.leases[(ws, p)] for p in paths if (ws, p) in self.leases]
        decision = decide(rows, agent, self.now)
        split = decision.expired + decision.own + decision.blockers
        assert sorted(split, key=lambda r: r.path) == sorted(rows, key=lambda r: r.path)
        assert all(r.expires_at <= self.now for r in decision.expired)
        assert all(r.expires_at > self.now and r.agent_id == agent for r in decision.own)
        assert all(r.expires_at > self.now and r.agent_id != agent for r in decision.blockers)
        assert decision.grantable == (not decision.blockers)
        for row in decision.expired:
            del self.leases[(ws, row.path)]
        return decision.grantable, {r.path for r in decision.own}

    def _grant(self, ws: int, agent: int, paths: tuple[str, ...], ttl: float) -> None:
        token = None
        for path in paths:
            current = self.leases.get((ws, path))
            if current is not None:
                assert current.agent_id == agent and current.expires_at > self.now, (
                    f"{path} granted to agent {agent} over a live lease of agent {current.agent_id}"
                )
                self.leases[(ws, path)] = _row(ws, path, agent, current.token, self.now, ttl)
                continue
            if token is None:
                self.fencing[ws] += 1
                token = self.fencing[ws]
            assert token > self.last_token.get((ws, path), 0)
            self.last_token[(ws, path)] = token
            self.leases[(ws, path)] = _row(ws, path, agent, token, self.now, ttl)

    def _serve(self, ws: int) -> None:
        """`Coordinator._serve_waiters`, checking `candidates` against the arrival list."""
        expected = [w for w in self.arrivals if w.request.workspace_id == ws]
        claimed: set[str] = set()
        seen = []
        for waiter, ahead in self.queue.candidates(ws):
            seen.append(waiter)
            assert ahead == bool(waiter.paths & claimed), "wrong 'ahead' flag"
            if not ahead and waiter.result is None:
                grantable, _ = self._decide(ws, waiter.request.agent_id, waiter.request.paths)
                if grantable:
                    self._grant(ws, waiter.request.agent_id, waiter.request.paths, 30)
                    waiter.result = "granted"
                    self.queue.remove(waiter)
                    self.arrivals.remove(waiter)
                    waiter.done.set()
            if waiter.result is None:
                claimed |= waiter.paths
        assert seen == expected, "candidates must yield every waiter once, in arrival order"

    @rule(
        ws=st.sampled_from([1, 2]),
        agent=st.sampled_from(AGENTS),
        paths=path_sets,
        ttl=st.sampled_from([1.0, 5.0, 30.0]),
        wait=st.booleans(),
    )
    def acquire(self, ws: int, agent: int, paths: tuple[str, ...], ttl: float, wait: bool) -> None:
        claimed = self.queue.waited_paths(ws)
        grantable, own = self._decide(ws, agent, paths)
        queued = [p for p in paths if p in claimed and p not in own]
        if grantable and not queued:
            self._grant(ws, agent, paths, ttl)
        elif wait:
            request = GrantRequest(ws, agent, paths, ttl, None, "main")
            waiter = self.queue.add(request)
            assert waiter.result is None and not waiter.done.is_set()
            self.arrivals.append(waiter)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.leases:
            return
        key = data.draw(st.sampled_from(sorted(self.leases)))
        del self.leases[key]
        self._serve(key[0])

    @rule(dt=st.sampled_from([0.5, 2.0, 10.0]))
    def tick(self, dt: float) -> None:
        """The reaper: expire what ran out, then serve the workspaces that changed."""
        self.now += dt
        expired = {ws for (ws, _), row in self.leases.items() if row.expires_at <= self.now}
        self.leases = {k: r for k, r in self.leases.items() if r.expires_at > self.now}
        for ws in sorted(expired):
            self._serve(ws)

    @rule(data=st.data())
    def give_up(self, data: st.DataObject) -> None:
        """A waiter leaves the line (timeout or cancellation); the next ones may go."""
        if not self.arrivals:
            return
        waiter = data.draw(st.sampled_from(self.arrivals))
        self.queue.remove(waiter)
        self.queue.remove(waiter)  # removing twice is harmless
        self.arrivals.remove(waiter)
        self._serve(waiter.request.workspace_id)

    @rule(agent=st.sampled_from(AGENTS))
    def agent_leaves(self, agent: int) -> None:
        gone = self.queue.remove_agent(agent)
        assert set(gone) == {w for w in self.arrivals if w.request.agent_id == agent}
        self.arrivals = [w for w in self.arrivals if w.request.agent_id != agent]
        for ws in (1, 2):
            self._serve(ws)

    @invariant()
    def queue_matches_arrivals(self) -> None:
        for ws in (1, 2):
            line = [w for w in self.arrivals if w.request.workspace_id == ws]
            assert self.queue.waited_paths(ws) == {p for w in line for p in w.paths}
            for size in (1, 2):
                for wanted in itertools.combinations(PATHS, size):
                    expected = [w for w in line if w.paths & set(wanted)]
                    assert self.queue.waiting_on(ws, wanted) == expected

    @invariant()
    def no_waiter_is_stuck(self) -> None:
        """Liveness of the rules: no waiter whose paths are free has nobody ahead of it."""
        for ws in (1, 2):
            claimed: set[str] = set()
            for waiter in (w for w in self.arrivals if w.request.workspace_id == ws):
                free = all(
                    (ws, p) not in self.leases
                    or self.leases[(ws, p)].agent_id == waiter.request.agent_id
                    or self.leases[(ws, p)].expires_at <= self.now
                    for p in waiter.paths
                )
                assert not (free and not waiter.paths & claimed), f"stuck waiter {waiter}"
                claimed |= waiter.paths


def test_lease_rules_against_a_model() -> None:
    run_state_machine_as_test(
        LeaseRulesMachine, settings=settings(_COMMON, max_examples=300, stateful_step_count=40)
    )


# -- plumbing for the machines that run trio code from hypothesis's thread -------------------


def on_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run an async function in the test's trio loop, from hypothesis's worker thread."""
    return trio.from_thread.run(fn, *args)


async def within(seconds: float, until: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``until`` every few milliseconds, failing after ``seconds``."""
    with trio.fail_after(seconds):
        while not await until():
            await trio.sleep(0.005)


async def run_machine(machine: type[RuleBasedStateMachine], machine_settings: settings) -> None:
    """Run a state machine in a worker thread so its rules can call into this trio loop."""
    await trio.to_thread.run_sync(
        partial(run_state_machine_as_test, machine, settings=machine_settings)
    )


# -- 2. the service in process, with a fake clock --------------------------------------------


@dataclass(eq=False)
class Slot:
    """One waiting acquire running as a task: its cancel scope and what it got."""

    agent: int
    paths: tuple[str, ...]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    finished: trio.Event = field(default_factory=trio.Event)
    grant: LeaseGrant | None = None
    error: Exception | None = None


async def _wait_in_line(c: Coordinator, agent: AgentRow, request: LeaseRequest, slot: Slot) -> None:
    try:
        with slot.scope:
            slot.grant = await c.acquire(agent, request)
    except CoordinatorError as exc:
        slot.error = exc
    finally:
        slot.finished.set()


async def _finished(slot: Slot) -> bool:
    return slot.finished.is_set()


_BEYOND_ANY_RUN_S = 1e9


class InProcessCoordinator(RuleBasedStateMachine):
    """A `Coordinator` in process for a machine's run: a real SQLite store of its own, a fake
    wall clock (``now``), three agents in workspace ``WORKSPACE``, and the waiting acquires
    it started (``slots``, cancelled at the end). Rules and model are the subclass's."""

    nursery: ClassVar[trio.Nursery]
    data_root: ClassVar[Path]
    _runs: ClassVar[Iterator[int]] = itertools.count()
    TTL = 30.0
    WORKSPACE = "props"

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000.0
        data = self.data_root / f"run-{next(self._runs)}"
        self.store = SqliteStore(data / "db.sqlite3")
        self.c: Coordinator = trio.from_thread.run_sync(
            lambda: Coordinator(
                self.store,
                BlobFiles(data / "blobs"),
                limits=Limits(break_timeout_s=_BEYOND_ANY_RUN_S),
                clock=lambda: self.now,
            )
        )
        self.slots: dict[Any, Slot] = {}  # the model's pending request -> its task
        self.agents = on_trio(self._join)

    async def _join(self) -> list[AgentRow]:
        await self.c.create_workspace(self.WORKSPACE)
        rows = []
        for i in AGENTS:
            registration = AgentRegistration(workspace=self.WORKSPACE, name=f"a{i}")
            registered = await self.c.register(registration)
            rows.append(await self.c.authenticate(registered.token))
        return rows

    def teardown(self) -> None:
        async def stop() -> None:
            for slot in self.slots.values():
                slot.scope.cancel()
            with trio.fail_after(2):
                for slot in self.slots.values():
                    await slot.finished.wait()

        try:
            on_trio(stop)
        finally:
            self.store.close()

    def _id(self, agent: int) -> int:
        return self.agents[agent].id

    async def _tasks_got_their_grants(self, served: Sequence[Any]) -> None:
        """The waiting tasks of ``served`` (pending requests with ``granted``, path ->
        token) returned exactly those grants, at once."""
        with trio.fail_after(2):
            for pending in served:
                slot = self.slots.pop(pending)
                await slot.finished.wait()
                assert slot.error is None, f"waiter {pending} failed: {slot.error!r}"
                assert slot.grant is not None
                tokens = {lease.path: lease.token for lease in slot.grant.leases}
                assert tokens == pending.granted, f"waiter {pending} got {tokens}"


class ServiceMachine(InProcessCoordinator):
    """`Coordinator` itself, with an ideal reaper: the clock moves only in `tick`, which
    expires at once. Waiting acquires are real tasks (wait_s far beyond the test).

    The recall's break timeout (a recalled lease kept too long is no longer renewed) is not
    in the model: it has its own tests (`test_break_timeout.py`), and is set beyond reach
    here. (At its default of 30 s, three ticks of 10 s after a recall made a renewal drop a
    lease the model still counts as held.)"""

    def __init__(self) -> None:
        super().__init__()
        self.model = LeaseModel()

    async def _settle(self, served: list[Pending]) -> None:
        """Check the waiters the model says were served hold their leases, then that their
        tasks returned those grants. The server grants inside the call that freed the paths,
        so a missing grant fails here at once, not after a timeout."""
        statuses = {s.path: s for s in await self.c.path_status(self.agents[0], list(FEW_PATHS))}
        for pending in served:
            assert pending.granted is not None
            for path, token in pending.granted.items():
                lease = statuses[path].lease
                got = None if lease is None else (lease.holder.id, lease.token)
                assert got == (self._id(pending.agent), token), (
                    f"the model serves {pending}; the server has {path} held by {got}"
                )
        await self._tasks_got_their_grants(served)

    @rule(agent=st.sampled_from(AGENTS), paths=few_path_sets, ttl=st.sampled_from([1.0, 5.0, 30.0]))
    def acquire(self, agent: int, paths: tuple[str, ...], ttl: float) -> None:
        request = LeaseRequest(paths=list(paths), ttl_s=ttl)
        try:
            grant = on_trio(self.c.acquire, self.agents[agent], request)
        except ConflictError as exc:
            assert exc.code == "lease_held"
            assert not self.model.may_grant_now(agent, paths), f"refused: {exc.message}"
            return
        assert self.model.may_grant_now(agent, paths), "granted over a holder or a waiter"
        expected = self.model.grant(agent, paths, ttl, self.now)
        assert {lease.path: lease.token for lease in grant.leases} == expected

    @precondition(lambda self: len(self.model.line) < 4)
    @rule(agent=st.sampled_from(AGENTS), paths=few_path_sets)
    def wait(self, agent: int, paths: tuple[str, ...]) -> None:
        pending = Pending(agent, paths)
        slot = self.slots[pending] = Slot(agent, paths)
        request = LeaseRequest(paths=list(paths), ttl_s=self.TTL, wait_s=600)
        trio.from_thread.run_sync(
            self.nursery.start_soon, _wait_in_line, self.c, self.agents[agent], request, slot
        )
        if self.model.may_grant_now(agent, paths):
            pending.granted = self.model.grant(agent, paths, self.TTL, self.now)
            on_trio(within, 5, partial(_finished, slot))  # the task has not run yet
            on_trio(self._settle, [pending])
            return
        self.model.line.append(pending)

        # The same agent may wait in several requests (a mount does): count them.
        mine = sum(1 for p in self.model.line if p.agent == agent and paths[0] in p.paths)

        async def queued() -> bool:
            assert not slot.finished.is_set(), f"{pending} should wait, got {slot.grant}"
            [status] = await self.c.path_status(self.agents[0], [paths[0]])
            return [w.id for w in status.waiters].count(self._id(agent)) == mine

        on_trio(within, 2, queued)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.model.holders:
            return
        path = data.draw(st.sampled_from(sorted(self.model.holders)))
        held = self.model.holders.pop(path)
        body = ReleaseRequest(leases=[LeaseRef(path=path, token=held.token)])
        result = on_trio(self.c.release, self.agents[held.agent], body)
        assert result.released == [path]
        on_trio(self._settle, self.model.serve(self.TTL, self.now))

    @rule(data=st.data())
    def release_stale(self, data: st.DataObject) -> None:
        """A release naming a token that is not the current one is refused whole."""
        if not self.model.holders:
            return
        path = data.draw(st.sampled_from(sorted(self.model.holders)))
        held = self.model.holders[path]
        body = ReleaseRequest(leases=[LeaseRef(path=path, token=held.token + 1000)])
        with pytest.raises(ConflictError) as refused:
            on_trio(self.c.release, self.agents[held.agent], body)
        assert refused.value.code == "stale_token"

    @rule(agent=st.sampled_from(AGENTS))
    def renew(self, agent: int) -> None:
        result = on_trio(self.c.renew, self.agents[agent], RenewRequest())
        mine = {p: h for p, h in self.model.holders.items() if h.agent == agent}
        assert {lease.path: lease.token for lease in result.leases} == {
            p: h.token for p, h in mine.items()
        }
        for held in mine.values():
            held.expires_at = self.now + held.ttl_s

    @rule(dt=st.sampled_from([0.5, 2.0, 10.0, 40.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        on_trio(self.c.expire_due)
        if self.model.expire(self.now):
            on_trio(self._settle, self.model.serve(self.TTL, self.now))

    @invariant()
    def holders_and_line_match_the_model(self) -> None:
        statuses = on_trio(self.c.path_status, self.agents[0], list(FEW_PATHS))
        for status in statuses:
            held = self.model.holders.get(status.path)
            got = None if status.lease is None else (status.lease.holder.id, status.lease.token)
            assert got == (None if held is None else (self._id(held.agent), held.token)), status
            line = [self._id(p.agent) for p in self.model.line if status.path in p.paths]
            assert [w.id for w in status.waiters] == line, status
        assert not self.model.stuck()


async def run_service_machine(
    machine: type[ServiceMachine], machine_settings: settings, data_root: Path
) -> None:
    """Run a `ServiceMachine` with a nursery for its waiting tasks, all within two minutes."""
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            ServiceMachine.nursery = nursery
            ServiceMachine.data_root = data_root
            await run_machine(machine, machine_settings)
            nursery.cancel_scope.cancel()


async def test_service_against_a_model(tmp_path: Path) -> None:
    await run_service_machine(
        ServiceMachine, settings(_COMMON, max_examples=75, stateful_step_count=30), tmp_path
    )


class GivingUpServiceMachine(ServiceMachine):
    """`ServiceMachine` whose waiters may also leave the line (a timeout or a hang-up).

    Each run starts with one path held, another agent waiting for both paths, and a third
    request waiting, so that the lines this is about (a waiter behind one that leaves, on a
    path nobody holds) form in many runs.
    """

    @initialize(
        agent=st.sampled_from(AGENTS),
        path=st.sampled_from(FEW_PATHS),
        second=st.tuples(st.sampled_from(AGENTS), few_path_sets),
    )
    def a_line_forms(self, agent: int, path: str, second: tuple[int, tuple[str, ...]]) -> None:
        self.acquire(agent, (path,), 30.0)
        self.wait((agent + 1) % len(AGENTS), FEW_PATHS)
        self.wait(*second)

    @rule(data=st.data())
    def give_up(self, data: st.DataObject) -> None:
        if not self.model.line:
            return
        pending = data.draw(st.sampled_from(self.model.line))
        slot = self.slots.pop(pending)

        async def leave() -> None:
            slot.scope.cancel()
            with trio.fail_after(2):
                await slot.finished.wait()

        on_trio(leave)
        assert slot.grant is None and slot.error is None
        self.model.line.remove(pending)
        on_trio(self._settle, self.model.serve(self.TTL, self.now))


class LaggingReaperServiceMachine(ServiceMachine):
    """`ServiceMachine` where a newcomer's acquire lands after a TTL ran out but before the
    reaper woke (the reaper sleeps until the next expiry; the newcomer can come first)."""

    @rule(
        dt=st.sampled_from([2.0, 10.0, 40.0]),
        agent=st.sampled_from(AGENTS),
        paths=few_path_sets,
    )
    def newcomer_before_the_reaper(self, dt: float, agent: int, paths: tuple[str, ...]) -> None:
        self.now += dt
        request = LeaseRequest(paths=list(paths), ttl_s=self.TTL)
        try:
            grant: LeaseGrant | None = on_trio(self.c.acquire, self.agents[agent], request)
        except ConflictError:
            grant = None
        on_trio(self.c.expire_due)
        # By the design an expired lease is free and goes to the line first, as if the reaper
        # had been on time; the newcomer then gets what is left.
        served = self.model.serve(self.TTL, self.now) if self.model.expire(self.now) else []
        if self.model.may_grant_now(agent, paths):
            assert grant is not None, "refused though its paths were free"
            expected = self.model.grant(agent, paths, self.TTL, self.now)
            assert {lease.path: lease.token for lease in grant.leases} == expected
        else:
            assert grant is None, "granted over a holder or an earlier waiter"
        on_trio(self._settle, served)


async def test_service_with_waiters_giving_up(tmp_path: Path) -> None:
    await run_service_machine(
        GivingUpServiceMachine,
        settings(_COMMON, max_examples=100, stateful_step_count=30),
        tmp_path,
    )


async def test_service_with_a_lagging_reaper(tmp_path: Path) -> None:
    await run_service_machine(
        LaggingReaperServiceMachine,
        settings(_COMMON, max_examples=100, stateful_step_count=30),
        tmp_path,
    )


# -- the two bugs the machines found (now fixed), each in its shortest form -------------------


async def test_a_waiter_behind_one_that_gave_up_is_served_at_once(
    make_agent: AgentFactory,
) -> None:
    """Bob waits for {a, b} (b held), Carol for {a} behind him; when Bob gives up, a is free
    and nobody is ahead of Carol: she must get it then, not when her own wait runs out."""
    alice, bob, carol = await make_agent("alice"), await make_agent("bob"), await make_agent()
    await alice.acquire(["b"])
    served_after: list[float] = []

    async def bob_gives_up() -> None:
        with pytest.raises(LeaseHeld):
            await bob.acquire(["a", "b"], wait_s=0.5)

    async def carol_waits(started: float) -> None:
        try:
            await carol.acquire(["a"], wait_s=4)
        except LeaseHeld:
            return
        served_after.append(trio.current_time() - started)

    async def line_on_a() -> int:
        return len((await alice.holders(["a"]))[0].waiters)

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            started = trio.current_time()
            nursery.start_soon(bob_gives_up)
            while await line_on_a() < 1:
                await trio.sleep(0.01)
            nursery.start_soon(carol_waits, started)
            while await line_on_a() < 2:
                await trio.sleep(0.01)
    assert served_after, "carol waited 4 s for a path nobody held"
    assert served_after[0] < 2.0


async def test_a_newcomer_finding_an_expired_lease_leaves_it_to_the_waiter(
    tmp_path: Path,
) -> None:
    """Alice's lease has run out but the reaper has not woken yet; Carol asks for the path
    and is refused, Bob being in line: Bob must get it then (or when the reaper wakes)."""
    now = [1000.0]
    store = SqliteStore(tmp_path / "db.sqlite3")
    try:
        c = Coordinator(store, BlobFiles(tmp_path / "blobs"), clock=lambda: now[0])
        await c.create_workspace("w")
        alice, bob, carol = [
            await c.authenticate(
                (await c.register(AgentRegistration(workspace="w", name=name))).token
            )
            for name in ("alice", "bob", "carol")
        ]
        await c.acquire(alice, LeaseRequest(paths=["p"], ttl_s=1))
        slot = Slot(bob.id, ("p",))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_wait_in_line, c, bob, LeaseRequest(paths=["p"], wait_s=600), slot)
            with trio.fail_after(5):
                while not (await c.path_status(alice, ["p"]))[0].waiters:
                    await trio.sleep(0.005)
            now[0] += 2  # alice's lease has run out; the reaper has not woken yet
            with pytest.raises(ConflictError):
                await c.acquire(carol, LeaseRequest(paths=["p"]))
            await c.expire_due()  # the reaper wakes
            with trio.move_on_after(1):
                await slot.finished.wait()
            slot.scope.cancel()
        [status] = await c.path_status(alice, ["p"])
        assert slot.grant is not None, f"bob still waits for a free path: {status}"
    finally:
        store.close()


# -- 3. a real coordinator, through the client -----------------------------------------------


class RealCoordinatorMachine(RuleBasedStateMachine):
    """A real coordinator process through `leasefs.Client`: fail-fast acquires, releases
    (current and stale tokens), renewals, expiry by TTL, versions under the fencing token.

    Every run is a fresh workspace of three agents, so the model predicts fencing tokens
    exactly. Leases live 60 s unless `expire` shortens an agent's leases to 0.5 s and waits
    them out (once per run: real time is the cost).
    """

    url: ClassVar[str]
    _runs: ClassVar[Iterator[int]] = itertools.count()
    TTL = 60.0
    SHORT_TTL = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.model = LeaseModel()
        self.stale: list[tuple[int, str, int]] = []  # (agent, path, token) no longer current
        self.versions: dict[str, list[int]] = {}  # path -> version ids, oldest first
        self.expiries = 0
        self.clients: list[Client] = []
        on_trio(self._join)
        self.ids = [client.agent.id for client in self.clients if client.agent is not None]

    async def _join(self) -> None:
        workspace = f"props-{next(self._runs)}-{time.monotonic_ns()}"
        for i in AGENTS:
            client = Client(self.url, timeout=30)
            self.clients.append(client)
            if i == 0:
                await client.create_workspace(workspace)
            await client.register(workspace, f"agent-{i}", host="hypothesis", tool="pytest")

    def teardown(self) -> None:
        async def finish() -> None:
            try:
                if len(self.ids) == len(AGENTS):
                    await self._replay_matches_the_model()
            finally:
                for client in self.clients:
                    await client.aclose()

        on_trio(finish)

    async def _replay_matches_the_model(self) -> None:
        replay = replay_leases(await full_audit(self.clients[0]))
        assert replay.holders == {
            p: (self.ids[h.agent], h.token) for p, h in self.model.holders.items()
        }
        issued = {t for tokens in replay.tokens_by_path.values() for t in tokens}
        assert issued == set(range(1, self.model.fencing + 1))
        for path, ids in self.versions.items():
            history = await self.clients[0].history(path, limit=1000)
            assert [v.id for v in reversed(history)] == ids

    async def _audit_tail(self) -> int:
        entries = await self.clients[0].audit(limit=100000)
        return entries[-1].id if entries else 0

    def _held_by(self, agent: int) -> list[str]:
        return sorted(p for p, h in self.model.holders.items() if h.agent == agent)

    def _refused_changes_nothing(self, call: Callable[[], Awaitable[Any]]) -> BaseException:
        """Run a call that must be refused; the lease table and the audit log stay as they
        were. Returns the refusal."""

        async def run() -> BaseException:
            before = (await self.clients[0].holders(), await self._audit_tail())
            try:
                await call()
            except (LeaseHeld, StaleToken) as exc:
                refusal: BaseException = exc
            else:
                raise AssertionError("the call should have been refused")
            after = (await self.clients[0].holders(), await self._audit_tail())
            assert after == before, "a refused call changed the lease table or the audit log"
            return refusal

        return on_trio(run)

    @rule(agent=st.sampled_from(AGENTS), paths=path_sets)
    def acquire(self, agent: int, paths: tuple[str, ...]) -> None:
        client = self.clients[agent]
        if not self.model.may_grant_now(agent, paths):
            refusal = self._refused_changes_nothing(
                partial(client.acquire, list(paths), ttl_s=self.TTL)
            )
            assert isinstance(refusal, LeaseHeld)
            others = {
                p for p in paths if p in self.model.holders and self.model.holders[p].agent != agent
            }
            assert {lease.path for lease in refusal.holders} == others
            return
        grant = on_trio(partial(client.acquire, list(paths), ttl_s=self.TTL))
        expected = self.model.grant(agent, paths, self.TTL, 0.0)
        assert {lease.path: lease.token for lease in grant.leases} == expected

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.model.holders:
            return
        path = data.draw(st.sampled_from(sorted(self.model.holders)))
        held = self.model.holders.pop(path)
        result = on_trio(self.clients[held.agent].release, [LeaseRef(path=path, token=held.token)])
        assert result.released == [path]
        self.stale.append((held.agent, path, held.token))

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def release_stale(self, data: st.DataObject) -> None:
        """A stale token is refused, and refuses the whole request: the agent's current
        lease named with it stays held."""
        agent, path, token = data.draw(st.sampled_from(self.stale))
        refs = [LeaseRef(path=path, token=token)]
        refs += [LeaseRef(path=p, token=self.model.holders[p].token) for p in self._held_by(agent)]
        refusal = self._refused_changes_nothing(partial(self.clients[agent].release, refs))
        assert isinstance(refusal, StaleToken)

    @rule(agent=st.sampled_from(AGENTS))
    def renew(self, agent: int) -> None:
        result = on_trio(self.clients[agent].renew)
        assert {lease.path: lease.token for lease in result.leases} == {
            p: self.model.holders[p].token for p in self._held_by(agent)
        }

    @precondition(lambda self: self.expiries < 1)
    @rule(agent=st.sampled_from(AGENTS))
    def expire(self, agent: int) -> None:
        """The agent stops renewing (it died): its leases run out and are free again."""
        mine = self._held_by(agent)
        if not mine:
            return
        self.expiries += 1
        client = self.clients[agent]

        async def run_out() -> None:
            renewed = await client.renew(ttl_s=self.SHORT_TTL)
            assert sorted(lease.path for lease in renewed.leases) == mine
            await trio.sleep(self.SHORT_TTL)

            async def gone() -> bool:
                return all(s.lease is None for s in await client.holders(mine))

            await within(5, gone)

        on_trio(run_out)
        for path in mine:
            held = self.model.holders.pop(path)
            self.stale.append((agent, path, held.token))

    @rule(data=st.data())
    def write_version(self, data: st.DataObject) -> None:
        if not self.model.holders:
            return
        path = data.draw(st.sampled_from(sorted(self.model.holders)))
        held = self.model.holders[path]
        client = self.clients[held.agent]
        content = f"{path} v{len(self.versions.get(path, []))} {time.monotonic_ns()}\n".encode()

        async def write() -> int:
            blob = await client.upload_blob(content)
            version = await client.create_version(
                VersionCreate(path=path, hash=blob.hash, token=held.token)
            )
            assert version.token == held.token and version.author.id == self.ids[held.agent]
            return version.id

        self.versions.setdefault(path, []).append(on_trio(write))

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def write_with_a_stale_token(self, data: st.DataObject) -> None:
        agent, path, token = data.draw(st.sampled_from(self.stale))
        client = self.clients[agent]
        blob = on_trio(client.upload_blob, b"written too late\n")
        version = VersionCreate(path=path, hash=blob.hash, token=token)
        refusal = self._refused_changes_nothing(partial(client.create_version, version))
        assert isinstance(refusal, StaleToken)

    @invariant()
    def holders_match_the_model(self) -> None:
        statuses = on_trio(self.clients[0].holders)
        got = {s.path: (s.lease.holder.id, s.lease.token) for s in statuses if s.lease}
        assert got == {p: (self.ids[h.agent], h.token) for p, h in self.model.holders.items()}


async def test_real_coordinator_against_a_model(coordinator: CoordinatorProcess) -> None:
    RealCoordinatorMachine.url = coordinator.url
    with trio.fail_after(150):
        await run_machine(
            RealCoordinatorMachine, settings(_COMMON, max_examples=20, stateful_step_count=25)
        )
