"""Protected zones where leases are granted: block refuses, confirm waits for a yes, warn records."""

from __future__ import annotations

import pytest

from leasefs import Forbidden, NotFound
from tests.conftest import AgentFactory


async def test_block_confirm_and_warn_zones(make_agent: AgentFactory) -> None:
    admin, bot = await make_agent("admin"), await make_agent("bot")
    blocked = await admin.add_zone("secrets/**", "block", "credentials live here")
    await admin.add_zone("migrations/*.sql", "confirm", "schema changes need a DBA")
    await admin.add_zone("docs/", "warn", "docs are reviewed weekly")
    with pytest.raises(Forbidden) as refused:
        await bot.acquire(["secrets/key.pem"])
    assert refused.value.code == "zone_blocked" and "credentials" in str(refused.value)
    with pytest.raises(Forbidden) as unconfirmed:
        await bot.acquire(["src/a.py", "migrations/001.sql"])  # all or nothing: src/a.py not held
    assert unconfirmed.value.code == "zone_confirmation_required"
    assert "leasefs zone allow migrations/001.sql --for 'bot'" in str(unconfirmed.value)
    assert (await admin.holders(["src/a.py"]))[0].lease is None
    await admin.allow_zone("migrations/001.sql", "bot")
    granted = await bot.acquire(["migrations/001.sql"])
    assert granted.leases[0].path == "migrations/001.sql"
    with pytest.raises(Forbidden):
        await bot.acquire(["migrations/002.sql"])  # the yes was for one file only
    await bot.acquire(["docs/guide.md"])
    warned = [e for e in await admin.audit(path="docs/guide.md") if e.action == "zone.warned"]
    assert len(warned) == 1 and warned[0].agent_name == "bot"
    assert [z.glob for z in await bot.zones()] == ["secrets/**", "migrations/*.sql", "docs/"]
    await admin.remove_zone(blocked.id)
    await bot.acquire(["secrets/key.pem"])
    with pytest.raises(NotFound):
        await admin.remove_zone(blocked.id)
