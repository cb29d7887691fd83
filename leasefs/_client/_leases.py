"""Leases: taking, renewing and giving back the exclusive right to change paths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..wire import (
    DEFAULT_BRANCH,
    LEASE_TTL_S,
    Lease,
    LeaseGrant,
    LeaseRef,
    LeaseRequest,
    LeaseScope,
    NarrowRequest,
    NarrowResult,
    PathStatus,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
)
from ._transport import Transport

_WAIT_MARGIN_S = 10.0  # a queued acquire's request may take its wait plus this long


class LeaseCalls(Transport):
    """The calls about leases, first come first served on the coordinator."""

    async def acquire(
        self,
        paths: Sequence[str],
        *,
        ttl_s: float = LEASE_TTL_S,
        wait_s: float = 0.0,
        work: str | None = None,
        branch: str = DEFAULT_BRANCH,
        lease_scope: LeaseScope = "workspace",
        folders: Sequence[str] = (),
    ) -> LeaseGrant:
        """Take exclusive leases on all ``paths`` or none; raises `LeaseHeld` if contended.

        With ``wait_s`` the coordinator queues the request (first come, first served) and
        answers as soon as every path is free, or with `LeaseHeld` after ``wait_s``.
        ``folders`` (keys ending in '/') are leased too where they are free, never waited for.
        With ``lease_scope="branch"`` the leases exclude only agents asking on ``branch``.
        """
        request = LeaseRequest(
            paths=list(paths),
            ttl_s=ttl_s,
            wait_s=wait_s,
            work=work,
            branch=branch,
            lease_scope=lease_scope,
            folders=list(folders),
        )
        return await self._call(
            LeaseGrant,
            "POST",
            "/leases/acquire",
            body=request,
            request_timeout=max(self._timeout, wait_s + _WAIT_MARGIN_S),
        )

    async def renew(self, ttl_s: float | None = None) -> RenewResult:
        """Renew every live lease this agent holds; the ones missing from the answer are lost."""
        return await self._call(
            RenewResult, "POST", "/leases/renew", body=RenewRequest(ttl_s=ttl_s)
        )

    async def release(self, leases: Iterable[Lease | LeaseRef]) -> ReleaseResult:
        refs = [LeaseRef(path=lease.path, token=lease.token) for lease in leases]
        return await self._call(
            ReleaseResult, "POST", "/leases/release", body=ReleaseRequest(leases=refs)
        )

    async def narrow(self, folder: Lease | LeaseRef, keep: Sequence[str]) -> NarrowResult:
        """Replace the folder lease ``folder`` by leases on exactly ``keep`` (files under it)."""
        request = NarrowRequest(
            folder=LeaseRef(path=folder.path, token=folder.token), keep=list(keep)
        )
        return await self._call(NarrowResult, "POST", "/leases/narrow", body=request)

    async def holders(self, paths: Sequence[str] | None = None) -> list[PathStatus]:
        """Who holds and who waits for ``paths`` (every leased or awaited path if None)."""
        params = [("path", p) for p in paths] if paths else None
        return await self._call_list(PathStatus, "GET", "/leases", params=params)
