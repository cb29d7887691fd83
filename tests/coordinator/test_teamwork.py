"""Team knowledge on a real coordinator: work sessions, memory, the context document, messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leasefs import Conflict, NotFound
from leasefs.wire import Handoff, MemoryCreate, VersionCreate
from tests.conftest import AgentFactory


async def test_work_session_lifecycle_with_overlap_park_resume_and_handoff(
    make_agent: AgentFactory,
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    first = await alice.start_work("parser rewrite", paths=["src/parser/**"], plan="split lexer")
    assert first.work.status == "active" and first.overlapping == []
    second = await bob.start_work("fix tokenizer", paths=["src/parser/tokens.py"])
    assert [w.id for w in second.overlapping] == [first.work.id]
    unrelated = await bob.start_work("docs", paths=["docs/"])
    assert unrelated.overlapping == []

    with pytest.raises(Conflict) as refused:
        await bob.cancel_work(first.work.id)
    assert refused.value.code == "not_owner"
    parked = await alice.park_work(first.work.id, progress="lexer split done", notes="see tests")
    assert parked.status == "parked" and parked.progress == "lexer split done"
    resumed = await bob.resume_work(first.work.id)
    assert resumed.status == "active" and resumed.owner.name == "bob"
    done = await bob.finish_work(
        first.work.id,
        Handoff(summary="parser split", next_steps=["benchmark"], decisions=["keep LL(1)"]),
    )
    assert done.status == "finished" and done.handoff is not None
    assert done.handoff.next_steps == ["benchmark"]
    with pytest.raises(Conflict) as again:
        await bob.finish_work(first.work.id, Handoff(summary="twice"))
    assert again.value.code == "wrong_status"
    with pytest.raises(NotFound):
        await alice.work(999999)
    active = await alice.list_work(["active"])
    assert {w.title for w in active} == {"fix tokenizer", "docs"}


async def test_memory_search_paths_staleness_and_forgetting(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    about_db = await alice.remember(
        MemoryCreate(
            text="The migrations must stay idempotent", paths=["db/schema.sql"], tags=["db"]
        )
    )
    await alice.remember(MemoryCreate(text="Use trio, never asyncio, in the mount", tags=["style"]))
    found = await bob.recall("idempotent migrations")
    assert [m.id for m in found] == [about_db.id]
    assert found[0].author.name == "alice" and not found[0].stale
    assert [m.id for m in await bob.recall(paths=["db/**"])] == [about_db.id]
    assert await bob.recall('"; DROP TABLE memories; --') == []  # no query syntax reaches SQLite
    token = (await alice.acquire(["db/schema.sql"])).leases[0].token
    for i in range(5):
        blob = await alice.upload_blob(f"v{i}".encode())
        await alice.create_version(VersionCreate(path="db/schema.sql", hash=blob.hash, token=token))
    [stale] = await bob.recall("idempotent")
    assert stale.stale and stale.changes_since == 5
    await bob.forget(about_db.id)
    assert await bob.recall("idempotent") == []
    with pytest.raises(NotFound):
        await bob.forget(about_db.id)


async def test_expired_memories_are_not_recalled(make_agent: AgentFactory) -> None:
    alice = await make_agent("alice")
    await alice.remember(MemoryCreate(text="fleeting note", ttl_days=0.00001))
    import trio

    await trio.sleep(1.2)
    assert await alice.recall("fleeting") == []


async def test_context_document_compare_and_set(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    empty = await alice.context()
    assert empty.version == 0 and empty.text == ""
    v1 = await alice.update_context("# Project\nUse trio.\n", expected_version=0)
    assert v1.version == 1 and v1.updated_by is not None and v1.updated_by.name == "alice"
    with pytest.raises(Conflict) as lost_update:
        await bob.update_context("# Bob's version\n", expected_version=0)
    assert lost_update.value.code == "context_conflict"
    assert lost_update.value.details["current_version"] == 1
    assert (await bob.context()).text == "# Project\nUse trio.\n"
    v2 = await bob.update_context(v1.text + "Bob's rule.\n", expected_version=1)
    assert v2.version == 2


async def test_ask_reply_inbox_and_threads(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    thread = await alice.ask(
        "agent:bob", "schema", "May I change db/schema.sql?", ["db/schema.sql"]
    )
    assert thread.to.startswith("agent:") and thread.messages[0].read  # one's own message is read
    [unread] = await bob.inbox()
    assert unread.id == thread.id and unread.messages[0].body == "May I change db/schema.sql?"
    assert await bob.inbox() == [], "the inbox shows a message once"
    answered = await bob.reply(thread.id, "Yes, go ahead", close=True)
    assert answered.closed and [m.sender.name for m in answered.messages] == ["alice", "bob"]
    [news] = await alice.inbox()
    assert news.messages[-1].body == "Yes, go ahead"
    with pytest.raises(Conflict):
        await alice.reply(thread.id, "thanks")
    team = await bob.ask("team", "release", "Who is on the release?")
    assert [t.id for t in await alice.inbox()] == [team.id]
    with pytest.raises(NotFound):
        await alice.ask("agent:nobody", "x", "y")
    with pytest.raises(ValidationError):  # the client checks the address before sending
        await alice.ask("everyone", "x", "y")


async def test_briefing_gathers_the_team_state(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.update_context("# Rules\n", expected_version=0)
    work = await alice.start_work("api", paths=["api/*.py"])
    await alice.acquire(["api/routes.py"])
    await alice.remember(MemoryCreate(text="routes are versioned", paths=["api/routes.py"]))
    parked = await bob.start_work("ui", paths=["ui/"])
    await bob.park_work(parked.work.id, progress="half way")
    done = await bob.start_work("ci", paths=[".ci/run"])
    await bob.finish_work(done.work.id, Handoff(summary="ci green", next_steps=["add lint job"]))
    await bob.ask("agent:alice", "api", "Ping me when routes land")
    brief = await alice.briefing()
    assert brief.you.name == "alice" and brief.context.text == "# Rules\n"
    assert [w.id for w in brief.active_work] == [work.work.id]
    assert [w.title for w in brief.parked_work] == ["ui"]
    assert brief.follow_ups == ["add lint job"]
    assert [s.path for s in brief.leases] == ["api/routes.py"]
    assert [m.text for m in brief.memories] == ["routes are versioned"]
    assert [t.topic for t in brief.unread] == ["api"]
