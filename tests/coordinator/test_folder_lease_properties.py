"""Folder leases checked as properties: random sequences of grants (with folders), waits,
versions, narrowings, releases, renewals and expiries against `Coordinator` in process, on a
real SQLite store and a fake clock, compared with a model that says exactly who holds what.

The safety property is the model's own invariant, checked against the server after every
step: no two agents ever hold overlapping keys (a file and a folder over it, or two nested
folders), and a version is recorded only by the one agent whose lease covers its path. The
liveness property: nobody waits for a path that is free with nobody ahead of them.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from coordinator._errors import ConflictError
from leasefs.wire import (
    LeaseRef,
    LeaseRequest,
    NarrowRequest,
    ReleaseRequest,
    RenewRequest,
    VersionCreate,
    covers,
    overlaps,
)
from tests.coordinator.test_lease_properties import (
    _COMMON,
    AGENTS,
    InProcessCoordinator,
    Slot,
    _finished,
    _wait_in_line,
    on_trio,
    run_machine,
    within,
)

FILES = ("n", "n/a.py", "n/b.py", "n/m/c.py", "top.py")
FOLDERS = ("n/", "n/m/")
KEYS = FILES + FOLDERS
file_sets = st.lists(st.sampled_from(FILES), min_size=1, max_size=2, unique=True).map(tuple)
folder_sets = st.lists(st.sampled_from(FOLDERS), max_size=1).map(tuple)


@dataclass
class Held:
    agent: int
    token: int
    expires_at: float
    ttl_s: float


@dataclass(eq=False)
class Pending:
    agent: int
    paths: tuple[str, ...]
    granted: dict[str, int] | None = None


@dataclass
class FolderModel:
    """The lease table by key, the line, and which paths ever had a version."""

    holders: dict[str, Held] = field(default_factory=dict)
    line: list[Pending] = field(default_factory=list)
    versioned: set[str] = field(default_factory=set)
    fencing: int = 0

    def covering(self, path: str) -> tuple[str, Held] | None:
        keys = [k for k in self.holders if covers(k, path)]
        if not keys:
            return None
        key = max(keys, key=lambda k: (k == path, len(k)))
        return key, self.holders[key]

    def free_for(self, agent: int, paths: tuple[str, ...]) -> bool:
        return all(
            held.agent == agent
            for path in paths
            for key, held in self.holders.items()
            if overlaps(key, path)
        )

    def may_grant_now(self, agent: int, paths: tuple[str, ...]) -> bool:
        claimed = {p for pending in self.line for p in pending.paths}
        own = {p for p in paths if p in self.holders and self.holders[p].agent == agent}
        return self.free_for(agent, paths) and not (set(paths) & claimed) - own

    def folder_free(self, folder: str) -> bool:
        claimed = {p for pending in self.line for p in pending.paths}
        return (
            not any(overlaps(key, folder) for key in self.holders)
            and not any(covers(folder, p) for p in claimed)
            and not any(covers(folder, p) for p in self.versioned)
        )

    def grant(
        self, agent: int, paths: tuple[str, ...], folders: tuple[str, ...], ttl: float, now: float
    ) -> dict[str, int]:
        free = [f for f in folders if self.folder_free(f)]
        token: int | None = None
        tokens = {}
        for key in (*paths, *free):
            held = self.holders.get(key)
            if held is None:
                if token is None:
                    self.fencing += 1
                    token = self.fencing
                held = Held(agent, token, now + ttl, ttl)
            else:
                held = Held(agent, held.token, now + ttl, ttl)
            self.holders[key] = held
            tokens[key] = held.token
        return tokens

    def serve(self, ttl: float, now: float) -> list[Pending]:
        served = []
        claimed: set[str] = set()
        for pending in list(self.line):
            if not set(pending.paths) & claimed and self.free_for(pending.agent, pending.paths):
                self.line.remove(pending)
                pending.granted = self.grant(pending.agent, pending.paths, (), ttl, now)
                served.append(pending)
            else:
                claimed |= set(pending.paths)
        return served

    def stuck(self) -> list[Pending]:
        claimed: set[str] = set()
        stuck = []
        for pending in self.line:
            if not set(pending.paths) & claimed and self.free_for(pending.agent, pending.paths):
                stuck.append(pending)
            claimed |= set(pending.paths)
        return stuck


class FolderServiceMachine(InProcessCoordinator):
    """`Coordinator` with folder leases in the requests, against `FolderModel`."""

    WORKSPACE = "folders"

    def __init__(self) -> None:
        super().__init__()
        self.model = FolderModel()
        self.digest = on_trio(self._empty_blob)

    async def _empty_blob(self) -> str:
        async def chunks() -> AsyncIterator[bytes]:
            yield b""

        digest = hashlib.sha256(b"").hexdigest()
        await self.c.snapshots.put_blob(self.agents[0], digest, chunks())
        return digest

    async def _settle(self, served: list[Pending]) -> None:
        await self._tasks_got_their_grants(served)

    @initialize(line=st.booleans())
    def maybe_a_line_under_a_free_folder(self, line: bool) -> None:
        """In half the runs, someone waits for a file under "n/" that nobody holds (behind
        a lease elsewhere): the folder is not free for anyone then."""
        if line:
            self.acquire(0, ("top.py",), ())
            self.wait(1, ("top.py", "n/a.py"))
            self.acquire(2, ("n",), ("n/",))

    @rule(agent=st.sampled_from(AGENTS), paths=file_sets, folders=folder_sets)
    def acquire(self, agent: int, paths: tuple[str, ...], folders: tuple[str, ...]) -> None:
        request = LeaseRequest(paths=list(paths), folders=list(folders), ttl_s=self.TTL)
        try:
            grant = on_trio(self.c.acquire, self.agents[agent], request)
        except ConflictError as exc:
            assert exc.code == "lease_held"
            assert not self.model.may_grant_now(agent, paths), f"refused: {exc.message}"
            return
        assert self.model.may_grant_now(agent, paths), "granted over a holder or a waiter"
        expected = self.model.grant(agent, paths, folders, self.TTL, self.now)
        assert {lease.path: lease.token for lease in grant.leases} == expected

    @precondition(lambda self: len(self.model.line) < 3)
    @rule(agent=st.sampled_from(AGENTS), paths=file_sets)
    def wait(self, agent: int, paths: tuple[str, ...]) -> None:
        pending = Pending(agent, paths)
        slot = self.slots[pending] = Slot(agent, paths)
        request = LeaseRequest(paths=list(paths), ttl_s=self.TTL, wait_s=600)
        trio.from_thread.run_sync(
            self.nursery.start_soon, _wait_in_line, self.c, self.agents[agent], request, slot
        )
        if self.model.may_grant_now(agent, paths):
            pending.granted = self.model.grant(agent, paths, (), self.TTL, self.now)
            on_trio(within, 5, lambda: _finished(slot))
            on_trio(self._settle, [pending])
            return
        self.model.line.append(pending)
        mine = sum(1 for p in self.model.line if p.agent == agent and paths[0] in p.paths)

        async def queued() -> bool:
            [status] = await self.c.path_status(self.agents[0], [paths[0]])
            return [w.id for w in status.waiters].count(self._id(agent)) == mine

        on_trio(within, 2, queued)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.model.holders:
            return
        key = data.draw(st.sampled_from(sorted(self.model.holders)))
        held = self.model.holders.pop(key)
        body = ReleaseRequest(leases=[LeaseRef(path=key, token=held.token)])
        result = on_trio(self.c.release, self.agents[held.agent], body)
        assert result.released == [key]
        on_trio(self._settle, self.model.serve(self.TTL, self.now))

    @rule(agent=st.sampled_from(AGENTS), path=st.sampled_from(FILES), forged=st.booleans())
    def record(self, agent: int, path: str, forged: bool) -> None:
        """A version under the agent's covering lease (its own or a folder's), or forged."""
        cover = self.model.covering(path)
        token = cover[1].token if cover is not None else 1
        if forged:
            token += 1000
        version = VersionCreate(path=path, hash=self.digest, token=token)
        allowed = cover is not None and cover[1].agent == agent and not forged
        try:
            on_trio(self.c.snapshots.create_version, self.agents[agent], version)
        except ConflictError as exc:
            assert exc.code == "stale_token"
            assert not allowed, f"version of {path} refused to its holder: {exc.message}"
            return
        assert allowed, f"version of {path} by agent {agent} recorded; covering: {cover}"
        self.model.versioned.add(path)

    @rule(data=st.data())
    def narrow(self, data: st.DataObject) -> None:
        folders = sorted(k for k in self.model.holders if k in FOLDERS)
        if not folders:
            return
        key = data.draw(st.sampled_from(folders))
        held = self.model.holders[key]
        under = [p for p in FILES if covers(key, p)]
        keep = data.draw(st.lists(st.sampled_from(under), unique=True)) if under else []
        body = NarrowRequest(folder=LeaseRef(path=key, token=held.token), keep=keep)
        result = on_trio(self.c.narrow, self.agents[held.agent], body)
        del self.model.holders[key]
        expected = {}
        for path in keep:
            kept = self.model.holders.get(path)
            if kept is None:
                kept = self.model.holders[path] = Held(
                    held.agent, held.token, held.expires_at, held.ttl_s
                )
            expected[path] = kept.token
        assert {lease.path: lease.token for lease in result.leases} == expected
        on_trio(self._settle, self.model.serve(self.TTL, self.now))

    @rule(data=st.data())
    def narrow_what_is_not_held(self, data: st.DataObject) -> None:
        """Narrowing a folder one does not hold changes nothing."""
        key = data.draw(st.sampled_from(FOLDERS))
        agent = data.draw(st.sampled_from(AGENTS))
        held = self.model.holders.get(key)
        if held is not None and held.agent == agent:
            return
        body = NarrowRequest(folder=LeaseRef(path=key, token=held.token if held else 1), keep=[])
        try:
            on_trio(self.c.narrow, self.agents[agent], body)
        except ConflictError as exc:
            assert exc.code == "stale_token"
        else:
            # Only a retry of a narrowing already done succeeds, and keeps nothing new.
            assert held is None

    @rule(agent=st.sampled_from(AGENTS))
    def renew(self, agent: int) -> None:
        result = on_trio(self.c.renew, self.agents[agent], RenewRequest())
        mine = {k: h for k, h in self.model.holders.items() if h.agent == agent}
        assert {lease.path: lease.token for lease in result.leases} == {
            k: h.token for k, h in mine.items()
        }
        for held in mine.values():
            held.expires_at = self.now + held.ttl_s

    @rule(dt=st.sampled_from([2.0, 40.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        on_trio(self.c.expire_due)
        gone = [k for k, h in self.model.holders.items() if h.expires_at <= self.now]
        for key in gone:
            del self.model.holders[key]
        if gone:
            on_trio(self._settle, self.model.serve(self.TTL, self.now))

    @invariant()
    def the_server_says_what_the_model_says(self) -> None:
        statuses = on_trio(self.c.path_status, self.agents[0], list(KEYS))
        for status in statuses:
            cover = self.model.covering(status.path)
            want = None if cover is None else (self._id(cover[1].agent), cover[1].token, cover[0])
            lease = status.lease
            got = None if lease is None else (lease.holder.id, lease.token, lease.path)
            assert got == want, status
            line = [self._id(p.agent) for p in self.model.line if status.path in p.paths]
            assert [w.id for w in status.waiters] == line, status
        keys = list(self.model.holders.items())
        for (a, ha), (b, hb) in itertools.combinations(keys, 2):
            assert ha.agent == hb.agent or not overlaps(a, b), f"{a} and {b} both held"
        assert not self.model.stuck()


async def test_folder_leases_against_a_model(tmp_path: Path) -> None:
    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            FolderServiceMachine.nursery = nursery
            FolderServiceMachine.data_root = tmp_path
            await run_machine(
                FolderServiceMachine, settings(_COMMON, max_examples=80, stateful_step_count=30)
            )
            nursery.cancel_scope.cancel()
