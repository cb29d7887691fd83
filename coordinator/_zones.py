"""Protected zones: globs whose files need care (warn), a human's yes (confirm), or stay shut (block).

Enforced where leases are granted, so every writer meets them: a mount's implicit lease, an
MCP agent's explicit one. `block` refuses, `confirm` refuses until someone allows the agent
(`leasefs zone allow`), `warn` grants and writes the fact into the audit log and the briefing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leasefs.wire import ErrorCode, EventType, Zone, ZoneAllowance, ZoneCreate, specs_overlap

from ._admission import require_role
from ._component import StoreComponent
from ._errors import Forbidden, NotFoundError
from ._records import record
from .store import AgentRow, Tx, ZoneRow


def zone_model(row: ZoneRow) -> Zone:
    return Zone.model_validate(
        {"id": row.id, "glob": row.glob, "level": row.level, "reason": row.reason,
         "created_at": row.created_at}
    )  # fmt: skip


def _covers(spec: str, path: str) -> bool:
    return specs_overlap(path, spec)


@dataclass(frozen=True)
class ZoneVerdict:
    blocked: list[tuple[str, ZoneRow]]
    unconfirmed: list[tuple[str, ZoneRow]]
    warned: list[tuple[str, ZoneRow]]


def judge(zones: Sequence[ZoneRow], allowances: Sequence[str], paths: Sequence[str]) -> ZoneVerdict:
    """Which of ``paths`` each zone level stops or flags, for an agent with ``allowances``."""
    blocked, unconfirmed, warned = [], [], []
    for path in paths:
        for zone in zones:
            if not _covers(zone.glob, path):
                continue
            if zone.level == "block":
                blocked.append((path, zone))
            elif zone.level == "confirm":
                if not any(_covers(allowed, path) for allowed in allowances):
                    unconfirmed.append((path, zone))
            else:
                warned.append((path, zone))
    return ZoneVerdict(blocked=blocked, unconfirmed=unconfirmed, warned=warned)


class Zones(StoreComponent):
    async def add(self, agent: AgentRow, request: ZoneCreate) -> Zone:
        require_role(agent, "admin", "adding a zone")

        def add(tx: Tx) -> Zone:
            now = self._clock()
            row = tx.insert_zone(
                agent.workspace_id, request.glob, request.level, request.reason, agent.id, now
            )
            record(tx, agent.workspace_id, now, agent.id, EventType.ZONES_CHANGED, None,
                   {"zone_id": row.id, "glob": row.glob, "level": row.level, "reason": row.reason})  # fmt: skip
            return zone_model(row)

        zone = await self._store.run(add)
        self._signals.notify([agent.workspace_id])
        return zone

    async def all(self, agent: AgentRow) -> list[Zone]:
        return await self._store.read(
            lambda tx: [zone_model(z) for z in tx.zones_of(agent.workspace_id)]
        )

    async def remove(self, agent: AgentRow, zone_id: int) -> None:
        require_role(agent, "admin", "removing a zone")

        def remove(tx: Tx) -> None:
            now = self._clock()
            if not tx.remove_zone(agent.workspace_id, zone_id, now):
                raise NotFoundError(f"there is no zone {zone_id}", code=ErrorCode.UNKNOWN_ZONE)
            record(tx, agent.workspace_id, now, agent.id, EventType.ZONES_CHANGED, None,
                   {"zone_id": zone_id, "removed": True})  # fmt: skip

        await self._store.run(remove)
        self._signals.notify([agent.workspace_id])

    async def allow(self, agent: AgentRow, allowance: ZoneAllowance) -> None:
        require_role(agent, "admin", "allowing an agent into a zone")

        def allow(tx: Tx) -> None:
            now = self._clock()
            tx.insert_allowance(agent.workspace_id, allowance.path, allowance.agent, agent.id, now)
            record(tx, agent.workspace_id, now, agent.id, "zone.allowed", allowance.path,
                   {"agent": allowance.agent}, publish=False)  # fmt: skip

        await self._store.run(allow)

    def admit_tx(self, tx: Tx, agent: AgentRow, paths: Sequence[str]) -> list[tuple[str, ZoneRow]]:
        """Refuse paths in block zones and unconfirmed confirm zones; return the warned ones.

        Runs inside the lease grant's own transaction (one worker-thread trip, not two).
        """
        zones = tx.zones_of(agent.workspace_id)
        if not zones:
            return []
        verdict = judge(zones, tx.allowances_of(agent.workspace_id, agent.name), paths)
        if verdict.blocked:
            path, zone = verdict.blocked[0]
            raise Forbidden(
                f"{path} is in a blocked zone ({zone.glob}): {zone.reason}",
                code=ErrorCode.ZONE_BLOCKED,
                details={"path": path, "zone_id": zone.id, "reason": zone.reason},
            )
        if verdict.unconfirmed:
            path, zone = verdict.unconfirmed[0]
            raise Forbidden(
                f"{path} is in a zone that needs confirmation ({zone.glob}): {zone.reason}. "
                f"A person can allow it: leasefs zone allow {path} --for {agent.name!r}",
                code=ErrorCode.ZONE_CONFIRMATION_REQUIRED,
                details={"path": path, "zone_id": zone.id, "reason": zone.reason},
            )
        return verdict.warned

    def unzoned_tx(self, tx: Tx, agent: AgentRow, folders: Sequence[str]) -> list[str]:
        """The folders no zone reaches into: a folder lease lets its holder create files
        under it without asking, so none is granted where a zone could name one of them."""
        zones = tx.zones_of(agent.workspace_id)
        return [f for f in folders if not any(_covers(z.glob, f + "**") for z in zones)]
