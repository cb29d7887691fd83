"""Leases taken by hand: now or not at all, or waiting first come, first served. Either way
the answer carries each file's latest content, to edit on top of it."""

from typing import Annotated

from pydantic import Field

from leasefs.wire import LeaseGrant

from .._bridge import Bridge
from .._results import Acquired
from . import PathList

MAX_INLINE_BYTES = 256 * 1024
"""Larger contents are left out of the answer (the agent reads the file itself)."""


async def lease_acquire(bridge: Bridge, paths: PathList) -> Acquired:
    """Take leases on all the paths now, or none if any is held by someone else."""
    branch, scope = await bridge.lease_place()
    grant = await bridge.client.acquire(
        paths, work=_work_label(bridge), branch=branch, lease_scope=scope
    )
    return await _acquired(bridge, grant, f"{len(grant.leases)} lease(s) held")


async def lease_wait(
    bridge: Bridge,
    paths: PathList,
    timeout_s: Annotated[float, Field(ge=0, le=600)] = 60.0,
) -> Acquired:
    """Wait (first come, first served) until all the paths are free, then lease them; returns
    each path's latest content. Woken by the release itself."""
    branch, scope = await bridge.lease_place()
    grant = await bridge.client.acquire(
        paths, wait_s=timeout_s, work=_work_label(bridge), branch=branch, lease_scope=scope
    )
    return await _acquired(bridge, grant, f"{len(grant.leases)} lease(s) held after waiting")


def _work_label(bridge: Bridge) -> str | None:
    return f"work {bridge.work_id}" if bridge.work_id else None


async def _acquired(bridge: Bridge, grant: LeaseGrant, note: str) -> Acquired:
    """The grant with each path's latest content: text up to the size limit, else None."""
    contents: dict[str, str | None] = {}
    for lease in grant.leases:
        version = grant.versions.get(lease.path)
        if version is None or version.hash is None or (version.size or 0) > MAX_INLINE_BYTES:
            contents[lease.path] = None
            continue
        data = await bridge.client.read_blob(version.hash)
        try:
            contents[lease.path] = data.decode()
        except UnicodeDecodeError:
            contents[lease.path] = None
    return Acquired(leases=grant.leases, contents=contents, note=note)
