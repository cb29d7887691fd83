"""An agent of one workspace can read or change nothing of another.

Alice's team fills its workspace with every kind of state the coordinator keeps; Mallory,
registered in a workspace of her own on the same coordinator, then tries every call with
what she could learn or guess of it (paths, content hashes, row ids, agent names, tokens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from leasefs import Client, LeasefsError, NotFound, StaleToken
from leasefs.wire import Handoff, LeaseRef, MemoryCreate, VersionCreate
from tests.conftest import AgentFactory

SECRET = b"alice's secret design\n"
SECRET_HASH = hashlib.sha256(SECRET).hexdigest()


async def test_nothing_crosses_from_one_workspace_to_another(
    make_agent: AgentFactory, workspace_name: str
) -> None:
    alice = await make_agent("alice")
    carol = await make_agent("carol")
    mallory = await make_agent("mallory", workspace=workspace_name + "-other")

    # Alice's workspace, with one of everything.
    grant = await alice.acquire(["design.md", "src/app.py"])
    await alice.upload_blob(SECRET)
    token = grant.leases[0].token
    version = await alice.create_version(
        VersionCreate(path="design.md", hash=SECRET_HASH, base_hash=None, token=token)
    )
    memory = await alice.remember(MemoryCreate(text="the secret is in design.md"))
    context = await alice.context()
    await alice.update_context("alice's plans", context.version)
    work = await alice.start_work("secret work", paths=["design.md"])
    thread = await carol.ask("agent:alice", "secret", "where is the design?")
    zone = await alice.add_zone("src/**", "block", "frozen")
    head = await alice.events_head()
    assert head > 0

    # Mallory sees none of it.
    assert not await mallory.has_blob(SECRET_HASH)
    with pytest.raises(NotFound):
        await mallory.read_blob(SECRET_HASH)
    assert await mallory.latest_version("design.md") is None
    assert await mallory.history("design.md") == []
    assert await mallory.recall("secret") == []
    assert await mallory.recall() == []
    assert (await mallory.context()).text != "alice's plans"
    assert await mallory.list_work() == []
    assert await mallory.inbox() == []
    assert await mallory.zones() == []
    assert [s.lease for s in await mallory.holders(["design.md"])] == [None]
    assert await mallory.holders() == []
    assert {(e.agent_name, e.path) for e in await mallory.audit(limit=1000)} == {
        (None, None),  # the workspace's creation
        ("mallory", None),  # her joining
    }
    briefing = await mallory.briefing()
    assert briefing.leases == [] and briefing.active_work == [] and briefing.memories == []
    assert briefing.unread == [] and briefing.conflicts == [] and briefing.hot_files == []

    # Nor can she change any of it, by id, name or token.
    refusals: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("work", lambda: mallory.work(work.work.id)),
        ("finish", lambda: mallory.finish_work(work.work.id, Handoff(summary="mine now"))),
        ("park", lambda: mallory.park_work(work.work.id, "mine")),
        ("resume", lambda: mallory.resume_work(work.work.id)),
        ("cancel", lambda: mallory.cancel_work(work.work.id)),
        ("forget", lambda: mallory.forget(memory.id)),
        ("thread", lambda: mallory.thread(thread.id)),
        ("reply", lambda: mallory.reply(thread.id, "hi", close=True)),
        ("ask alice", lambda: mallory.ask("agent:alice", "hi", "let me in")),
        ("ask alice's work", lambda: mallory.ask(f"work:{work.work.id}", "hi", "let me in")),
        ("remove zone", lambda: mallory.remove_zone(zone.id)),
        ("release", lambda: mallory.release([LeaseRef(path="design.md", token=token)])),
        (
            "version",
            lambda: mallory.create_version(
                VersionCreate(
                    path="design.md", hash=SECRET_HASH, base_hash=version.hash, token=token
                )
            ),
        ),
        (
            "versions",
            lambda: mallory.create_versions(
                [VersionCreate(path="design.md", hash=SECRET_HASH, token=token)]
            ),
        ),
    ]
    for what, call in refusals:
        with pytest.raises(LeasefsError) as refused:
            await call()
        assert isinstance(refused.value, NotFound | StaleToken) or getattr(
            refused.value, "status", 0
        ) in (403, 404, 409, 422), (what, refused.value)

    # Her own leases on the same paths are hers alone and block nobody in alice's workspace.
    mine = await mallory.acquire(["design.md"], ttl_s=30)
    assert mine.leases[0].path == "design.md"
    assert mine.versions == {"design.md": None}  # no version of alice's leaks
    await alice.acquire(["design.md"])  # still alice's own, renewed

    # And alice's state is untouched.
    assert (await alice.latest_version("design.md")) == version
    assert [m.id for m in await alice.recall("secret")] == [memory.id]
    assert (await alice.work(work.work.id)).status == "active"
    assert [t.id for t in await alice.inbox()] == [thread.id]
    assert [z.id for z in await alice.zones()] == [zone.id]
    assert (await alice.context()).text == "alice's plans"


async def test_a_token_is_stored_only_as_its_hash(
    make_agent: AgentFactory, coordinator: Any
) -> None:
    import sqlite3

    agent: Client = await make_agent("hashed")
    assert agent.token
    database = coordinator.data_dir / "coordinator.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        dump = "\n".join(db.iterdump())
    assert agent.token not in dump
    assert hashlib.sha256(agent.token.encode()).hexdigest() in dump
