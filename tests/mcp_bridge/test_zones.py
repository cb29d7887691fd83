"""The protected-zone tool's question and decision called directly with bridges against a
real coordinator (what the person answers is given as the SDK's elicitation outcomes)."""

from __future__ import annotations

import re

import pytest
from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, DeclinedElicitation
from mcp.server.mcpserver import Elicit
from mcp.server.mcpserver.exceptions import ToolError

from leasefs import Client, LeasefsError
from mcp_bridge._results import ZoneQuestion
from mcp_bridge.tools import leases, zones
from tests.helpers import CoordinatorProcess
from tests.mcp_bridge.conftest import BridgeFactory

YES = AcceptedElicitation(data=ZoneQuestion(allow=True))


@pytest.fixture
async def schema_zone(coordinator: CoordinatorProcess, workspace_name: str) -> None:
    """Files under db/ need a person's confirmation. (Take it as a parameter: named only in
    ``usefixtures``, this async fixture was not run under pytest-trio.)"""
    async with Client(coordinator.url) as admin:
        await admin.ensure_workspace(workspace_name)
        await admin.register(workspace_name, "admin")
        await admin.add_zone("db/*.sql", "confirm", "schema changes need a DBA")


async def test_the_person_is_asked_with_the_zones_reasons_and_a_yes_lets_the_agent_lease(
    make_bridge: BridgeFactory, schema_zone: None
) -> None:
    bot = await make_bridge("bot")
    with pytest.raises(LeasefsError, match="needs confirmation"):
        await leases.lease_acquire(bot, ["db/schema.sql"])
    asked = await zones.question(bot, "db/schema.sql", client_can_ask=True)
    assert isinstance(asked, Elicit) and asked.schema is ZoneQuestion
    assert asked.message == (
        "Agent bot asks to change db/schema.sql, in a protected zone "
        "(db/*.sql: schema changes need a DBA). Allow it?"
    )
    confirmed = await zones.settle(bot, "db/schema.sql", YES, client_can_ask=True)
    assert confirmed.allowed and confirmed.note == "bot may now change db/schema.sql"
    assert [
        lease.path for lease in (await leases.lease_acquire(bot, ["db/schema.sql"])).leases
    ] == ["db/schema.sql"]


async def test_a_no_or_no_person_to_ask_allows_nothing(
    make_bridge: BridgeFactory, schema_zone: None
) -> None:
    bot = await make_bridge("bot")
    declined = await zones.settle(bot, "db/a.sql", DeclinedElicitation(), client_can_ask=True)
    assert not declined.allowed and declined.note == "the person said no (decline)"
    assert isinstance(
        await zones.question(bot, "db/a.sql", client_can_ask=False), CancelledElicitation
    )
    with pytest.raises(ToolError, match=re.escape("run: leasefs zone allow db/a.sql --for 'bot'")):
        await zones.settle(bot, "db/a.sql", CancelledElicitation(), client_can_ask=False)
    with pytest.raises(LeasefsError, match="needs confirmation"):
        await leases.lease_acquire(bot, ["db/a.sql"])


async def test_a_path_outside_every_confirm_zone_has_nothing_to_confirm(
    make_bridge: BridgeFactory, schema_zone: None
) -> None:
    bot = await make_bridge("bot")
    assert await zones.zones_to_confirm(bot, "src/free.py") == []
    assert isinstance(
        await zones.question(bot, "src/free.py", client_can_ask=True), CancelledElicitation
    )
    with pytest.raises(ToolError, match="nothing to confirm"):
        await zones.settle(bot, "src/free.py", YES, client_can_ask=True)
