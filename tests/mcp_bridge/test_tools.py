"""Every leasefs MCP tool through the SDK's real client over stdio, two agents at once."""

from __future__ import annotations

import mcp.types as types
import trio

from leasefs import Client
from tests.helpers import CoordinatorProcess
from tests.mcp_bridge.conftest import Connect, structured

EXPECTED_TOOLS = {
    "briefing", "check", "start", "finish", "park", "resume", "cancel", "inspect",
    "lease_acquire", "lease_wait", "remember", "forget", "recall", "context",
    "context_update", "ask", "inbox", "thread", "reply", "switch_workspace",
}  # fmt: skip


async def test_tools_are_listed_with_typed_parameters(connect: Connect) -> None:
    async with connect("alice") as alice:
        tools = {t.name: t for t in (await alice.list_tools()).tools}
        assert {name.removeprefix("leasefs_") for name in tools} >= EXPECTED_TOOLS
        start = tools["leasefs_start"].input_schema
        assert start["properties"]["paths"]["type"] == "array" and "title" in start["required"]


async def test_work_session_park_by_one_and_resume_by_the_other(connect: Connect) -> None:
    async with connect("alice") as alice, connect("bob") as bob:
        started = structured(await alice.call_tool(
            "leasefs_start", {"title": "parser", "paths": ["src/parser.py"], "lease": True}))  # fmt: skip
        assert [lease["path"] for lease in started["leases"]] == ["src/parser.py"]
        overlapping = structured(await bob.call_tool(
            "leasefs_start", {"title": "tokens", "paths": ["src/*.py"]}))  # fmt: skip
        assert [w["title"] for w in overlapping["overlapping"]] == ["parser"]
        refused = await bob.call_tool("leasefs_lease_acquire", {"paths": ["src/parser.py"]})
        assert refused.is_error and "alice" in refused.content[0].text
        parked = structured(await alice.call_tool(
            "leasefs_park", {"progress": "lexer done", "notes": "tests pass"}))  # fmt: skip
        assert parked["work"]["status"] == "parked" and parked["released"] == ["src/parser.py"]
        resumed = structured(
            await bob.call_tool("leasefs_resume", {"work_id": started["work"]["id"]})
        )
        assert resumed["owner"]["name"] == "bob" and resumed["progress"] == "lexer done"
        finished = structured(await bob.call_tool(
            "leasefs_finish", {"summary": "parser done", "next_steps": ["bench"], "work_id": resumed["id"]}))  # fmt: skip
        assert finished["work"]["handoff"]["next_steps"] == ["bench"]
        brief = structured(await alice.call_tool("leasefs_briefing", {}))
        assert brief["follow_ups"] == ["bench"]
        assert [w["title"] for w in brief["active_work"]] == ["tokens"]


async def test_lease_wait_is_woken_by_the_release_and_returns_content(connect: Connect) -> None:
    async with connect("alice") as alice, connect("bob") as bob:
        structured(await alice.call_tool(
            "leasefs_start", {"title": "notes", "paths": ["notes.md"], "lease": True}))  # fmt: skip
        results = []

        async def bob_waits() -> None:
            results.append(
                await bob.call_tool("leasefs_lease_wait", {"paths": ["notes.md"], "timeout_s": 30})
            )

        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bob_waits)
                await trio.sleep(1.0)
                assert not results, "bob must wait while alice holds the file"
                finished = structured(await alice.call_tool("leasefs_finish", {"summary": "done"}))
                assert finished["released"] == ["notes.md"]
        got = structured(results[0])
        assert [lease["path"] for lease in got["leases"]] == ["notes.md"]
        assert got["contents"] == {"notes.md": None}  # no version of it yet


async def test_memory_and_context_with_compare_and_set(connect: Connect) -> None:
    async with connect("alice") as alice, connect("bob") as bob:
        memory = structured(await alice.call_tool(
            "leasefs_remember", {"text": "The cache is keyed by tenant", "paths": ["cache.py"], "tags": ["cache"]}))  # fmt: skip
        found = structured(await bob.call_tool("leasefs_recall", {"query": "tenant"}))
        assert [m["id"] for m in found["memories"]] == [memory["id"]]
        structured(await bob.call_tool("leasefs_forget", {"memory_id": memory["id"]}))
        assert (
            structured(await bob.call_tool("leasefs_recall", {"query": "tenant"}))["memories"] == []
        )
        doc = structured(await alice.call_tool("leasefs_context", {}))
        v1 = structured(await alice.call_tool(
            "leasefs_context_update", {"text": "# Rules", "expected_version": doc["version"]}))  # fmt: skip
        stale = await bob.call_tool(
            "leasefs_context_update", {"text": "# Mine", "expected_version": 0}
        )
        assert stale.is_error and "version 1" in stale.content[0].text
        assert (
            structured(await bob.call_tool("leasefs_context", {}))["text"] == "# Rules"
            and v1["version"] == 1
        )


async def test_ask_and_reply_with_an_inbox_notification(connect: Connect) -> None:
    async with connect("alice") as alice, connect("bob") as bob:
        async with bob.listen(resource_subscriptions=["leasefs://inbox"]) as subscription:
            asked = structured(await alice.call_tool(
                "leasefs_ask", {"to": "agent:bob", "topic": "schema", "question": "May I change it?"}))  # fmt: skip
            with trio.fail_after(15):
                async for event in subscription:
                    assert event.uri == "leasefs://inbox"
                    break
        [thread] = structured(await bob.call_tool("leasefs_inbox", {}))["threads"]
        assert thread["id"] == asked["id"] and thread["messages"][0]["body"] == "May I change it?"
        structured(
            await bob.call_tool(
                "leasefs_reply", {"thread_id": thread["id"], "body": "yes", "close": True}
            )
        )
        whole = structured(await alice.call_tool("leasefs_thread", {"thread_id": asked["id"]}))
        assert [m["body"] for m in whole["messages"]] == ["May I change it?", "yes"] and whole[
            "closed"
        ]


async def test_bad_arguments_are_clear_tool_errors_not_crashes(connect: Connect) -> None:
    async with connect("alice") as alice:
        cases = [
            ("leasefs_lease_acquire", {"paths": ["../etc/passwd"]}, "'..'"),
            ("leasefs_ask", {"to": "nobody", "topic": "t", "question": "q"}, "to"),
            ("leasefs_ask", {"to": "agent:ghost", "topic": "t", "question": "q"}, "no agent"),
            ("leasefs_resume", {"work_id": 424242}, "no work session"),
            ("leasefs_finish", {"summary": "nothing started"}, "no work session"),
            ("leasefs_thread", {"thread_id": 99999}, "no thread"),
            ("leasefs_start", {}, "title"),
            ("leasefs_forget", {"memory_id": "not a number"}, "memory_id"),
        ]
        for tool, arguments, words in cases:
            result = await alice.call_tool(tool, arguments)
            assert result.is_error, (tool, arguments)
            assert words in result.content[0].text, (tool, result.content[0].text)
        assert structured(await alice.call_tool("leasefs_briefing", {}))["you"]["name"] == "alice"


async def test_switch_workspace(connect: Connect) -> None:
    async with connect("alice") as alice:
        switched = structured(
            await alice.call_tool("leasefs_switch_workspace", {"name": "other-repo"})
        )
        assert switched["workspace"] == "other-repo"
        assert (
            structured(await alice.call_tool("leasefs_briefing", {}))["workspace"] == "other-repo"
        )


async def test_confirm_zone_asks_the_person_through_the_client(
    connect: Connect, coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    asked: list[str] = []

    async def person_says_yes(
        context: object, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"allow": True})

    async with Client(coordinator.url) as admin:
        await admin.ensure_workspace(workspace_name)
        await admin.register(workspace_name, "admin")
        await admin.add_zone("db/*.sql", "confirm", "schema changes need a DBA")
        async with (
            connect("bot", elicitation_callback=person_says_yes) as bot,
            connect("cli") as plain,
        ):
            refused = await bot.call_tool("leasefs_lease_acquire", {"paths": ["db/schema.sql"]})
            assert refused.is_error and "needs confirmation" in refused.content[0].text
            confirmed = structured(
                await bot.call_tool("leasefs_confirm_zone", {"path": "db/schema.sql"})
            )
            assert confirmed["allowed"] and "schema changes need a DBA" in asked[0]
            structured(await bot.call_tool("leasefs_lease_acquire", {"paths": ["db/schema.sql"]}))
            cannot_ask = await plain.call_tool("leasefs_confirm_zone", {"path": "db/other.sql"})
            assert (
                cannot_ask.is_error
                and "leasefs zone allow db/other.sql" in cannot_ask.content[0].text
            )
            nothing = await plain.call_tool("leasefs_confirm_zone", {"path": "src/free.py"})
            assert nothing.is_error and "nothing to confirm" in nothing.content[0].text


async def test_check_inspect_and_cancel(connect: Connect) -> None:
    async with connect("alice") as alice, connect("bob") as bob:
        started = structured(await alice.call_tool(
            "leasefs_start", {"title": "api", "paths": ["api/routes.py"], "lease": True}))  # fmt: skip
        structured(await alice.call_tool(
            "leasefs_remember", {"text": "routes are versioned", "paths": ["api/routes.py"]}))  # fmt: skip
        report = structured(
            await bob.call_tool("leasefs_check", {"paths": ["api/routes.py", "free.py"]})
        )
        held, free = report["paths"]
        assert held["lease"]["holder"]["name"] == "alice" and held["lease"]["work"] == "api"
        assert [w["title"] for w in held["overlapping_work"]] == ["api"]
        assert [m["text"] for m in held["memories"]] == ["routes are versioned"]
        assert free["lease"] is None and free["history"] == []
        inspected = structured(
            await bob.call_tool("leasefs_inspect", {"work_id": started["work"]["id"]})
        )
        assert inspected["work"]["title"] == "api"
        assert [s["path"] for s in inspected["leases"]] == ["api/routes.py"]
        refused = await bob.call_tool("leasefs_cancel", {"work_id": started["work"]["id"]})
        assert refused.is_error and "only its owner" in refused.content[0].text
        cancelled = structured(
            await alice.call_tool("leasefs_cancel", {"work_id": started["work"]["id"]})
        )
        assert cancelled["status"] == "cancelled"
        bad = await bob.call_tool("leasefs_check", {"paths": ["/etc/passwd"]})
        assert bad.is_error and "leading '/'" in bad.content[0].text
