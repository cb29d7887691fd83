"""The messaging tools called directly with bridges against a real coordinator."""

from __future__ import annotations

import pytest

from leasefs import LeasefsError
from mcp_bridge.tools import messages
from tests.mcp_bridge.conftest import BridgeFactory


async def test_a_question_reaches_the_inbox_and_the_answer_closes_the_thread(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    asked = await messages.ask(alice, "agent:bob", "schema", "May I change it?", ["db/a.sql"])
    assert (asked.to, asked.paths, asked.opened_by.name) == (
        f"agent:{bob.agent_id}",
        ["db/a.sql"],
        "alice",
    )
    assert [t.id for t in (await messages.unread(bob)).threads] == [asked.id]
    assert [t.id for t in (await messages.unread(bob)).threads] == [asked.id], "unread: unmarked"
    [thread] = (await messages.inbox(bob)).threads
    assert thread.id == asked.id and thread.messages[0].body == "May I change it?"
    assert (await messages.inbox(bob)).threads == [], "the inbox marks what it shows as read"
    await messages.reply(bob, asked.id, "yes", close=True)
    whole = await messages.thread(alice, asked.id)
    assert [m.body for m in whole.messages] == ["May I change it?", "yes"] and whole.closed


async def test_questions_to_nobody_are_refused(make_bridge: BridgeFactory) -> None:
    alice = await make_bridge("alice")
    with pytest.raises(LeasefsError, match="no agent"):
        await messages.ask(alice, "agent:ghost", "t", "q")
    with pytest.raises(LeasefsError, match="no thread"):
        await messages.thread(alice, 99999)
