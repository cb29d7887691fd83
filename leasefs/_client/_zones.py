"""Protected zones: paths that are blocked, or that need a confirmation to change."""

from __future__ import annotations

from ..wire import Zone, ZoneAllowance, ZoneCreate
from ._transport import Transport


class ZoneCalls(Transport):
    """The calls about protected zones and the allowances that let an agent through."""

    async def zones(self) -> list[Zone]:
        return await self._call_list(Zone, "GET", "/zones")

    async def add_zone(self, glob: str, level: str, reason: str) -> Zone:
        body = ZoneCreate(glob=glob, level=level, reason=reason)  # type: ignore[arg-type]
        return await self._call(Zone, "POST", "/zones", body=body)

    async def remove_zone(self, zone_id: int) -> None:
        await self._request("DELETE", f"/zones/{zone_id}")

    async def allow_zone(self, path: str, agent: str) -> None:
        """Let agents named ``agent`` change ``path`` (a path or glob) in confirm zones."""
        await self._request("POST", "/zones/allowances", body=ZoneAllowance(path=path, agent=agent))
