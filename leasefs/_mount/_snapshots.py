"""Giving leases back: each changed file becomes a version, then every lease goes back.

Snapshots are taken a few at a time; small contents travel inline in batches of versions
(`POST /v1/versions/batch`), large ones are uploaded as blobs first; then the leases are
released in one request. Where one item of a batch is refused, the rest go one by one, so one
lost lease costs only its own snapshot. Each path ends `DONE` (released), `LOST` (its lease was
lost first; the local file stays) or `RETRY` (the coordinator could not be reached or refused:
keep the lease and try again after the idle grace).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

import trio

from .._client import (
    Client,
    CoordinatorUnavailable,
    LeasefsError,
    PayloadTooLarge,
    StaleToken,
)
from ..wire import MAX_BATCH_VERSIONS, SMALL_BLOB_BYTES, LeaseRef, VersionCreate, is_folder
from . import _backing
from ._applier import Applier
from ._lease_machine import MountLease

log = logging.getLogger("leasefs.mount")

_PARALLEL_SNAPSHOTS = 4
_RELEASE_BATCH = 500  # the coordinator takes up to 1,000 per request
_INLINE_BYTES = 512 << 10
"""Contents sent inline per request: base64 makes them a third larger, and the coordinator
takes JSON bodies of up to 1 MiB by default."""


class Outcome(StrEnum):
    DONE = "done"
    LOST = "lost"
    RETRY = "retry"


class Releaser:
    """Snapshots and releases leases against the coordinator."""

    def __init__(
        self,
        client: Client,
        root_fd: int,
        applier: Applier,
        *,
        branch: str,
        unreachable: Callable[[], None],
    ) -> None:
        self._client = client
        self._root_fd = root_fd
        self._applier = applier
        self._branch = branch
        self._unreachable = unreachable

    def switch_branch(self, branch: str) -> None:
        """The tree's checked-out branch changed: versions are recorded on ``branch`` now."""
        self._branch = branch

    async def give_back(self, leases: list[MountLease]) -> dict[str, Outcome]:
        """Snapshot every lease whose file changed, record them, release them."""
        outcomes = dict.fromkeys((lease.path for lease in leases), Outcome.RETRY)
        limiter = trio.CapacityLimiter(_PARALLEL_SNAPSHOTS)
        taken: list[_Snapshot] = []

        async def snapshot(lease: MountLease) -> None:
            async with limiter:
                outcomes[lease.path], new = await self._take_snapshot(lease)
                if new is not None:
                    taken.append(new)

        async with trio.open_nursery() as nursery:
            for lease in leases:
                nursery.start_soon(snapshot, lease)
        for batch in _batches(taken):
            outcomes.update(await self._record(batch))
        ready = [lease for lease in leases if outcomes[lease.path] is Outcome.DONE]
        outcomes.update(await self._release(ready))
        return outcomes

    async def _release(self, leases: list[MountLease]) -> dict[str, Outcome]:
        """Release in one request; if one lease is stale, one by one (the rest still go back)."""
        if not leases:
            return {}
        if len(leases) > _RELEASE_BATCH:
            results: dict[str, Outcome] = {}
            for start in range(0, len(leases), _RELEASE_BATCH):
                results.update(await self._release(leases[start : start + _RELEASE_BATCH]))
            return results
        refs = [LeaseRef(path=lease.path, token=lease.token) for lease in leases]
        try:
            await self._client.release(refs)
            return dict.fromkeys((r.path for r in refs), Outcome.DONE)
        except StaleToken:
            if len(refs) == 1:
                log.error("lease on %s was lost before it was given back", refs[0].path)
                return {refs[0].path: Outcome.LOST}
        except CoordinatorUnavailable as exc:
            self._unreachable()
            log.warning("could not release %d lease(s) yet (will retry): %s", len(refs), exc)
            return dict.fromkeys((r.path for r in refs), Outcome.RETRY)
        except LeasefsError as exc:
            log.error("could not release %d lease(s) (will retry): %s", len(refs), exc)
            return dict.fromkeys((r.path for r in refs), Outcome.RETRY)
        one_by_one: dict[str, Outcome] = {}
        for lease in leases:
            one_by_one.update(await self._release([lease]))
        return one_by_one

    async def _take_snapshot(self, lease: MountLease) -> tuple[Outcome, _Snapshot | None]:
        """The lease's content as a version to record, if it changed since the lease was
        taken; a large content is uploaded here, a small one goes inline with the version."""
        if is_folder(lease.path):
            return Outcome.DONE, None  # a folder lease has no content: its files have theirs
        try:
            if await trio.to_thread.run_sync(_backing.is_special_file, self._root_fd, lease.path):
                # A FIFO, socket or device has no content to share: it stays local, and the
                # lease goes back without a version.
                log.info("%s is a special file: released without a snapshot", lease.path)
                return Outcome.DONE, None
            local = await trio.to_thread.run_sync(
                partial(_backing.read_state, keep_up_to=SMALL_BLOB_BYTES),
                self._root_fd,
                lease.path,
            )
            local_hash = local.hash if local else None
            if local_hash == lease.base_hash:
                return Outcome.DONE, None
            if local is not None and local.content is None:
                await self._upload(lease.path)
            version = VersionCreate(
                path=lease.path,
                hash=local_hash,
                deleted=local is None,
                base_hash=lease.base_hash,
                token=lease.token,
                branch=self._branch,
                mode=local.mode if local else None,
            )
            return Outcome.RETRY, _Snapshot(version, local.content if local else None)
        except CoordinatorUnavailable as exc:
            self._unreachable()
            log.warning("could not snapshot %s yet (will retry): %s", lease.path, exc)
        except PayloadTooLarge as exc:
            return _too_large(lease.path, exc), None
        except LeasefsError as exc:
            log.error("could not snapshot %s (will retry): %s", lease.path, exc)
        return Outcome.RETRY, None

    async def _record(self, snapshots: list[_Snapshot]) -> dict[str, Outcome]:
        """Record versions in one request; if one is refused, one by one (the rest still are).

        DONE means ready to release; LOST, the lease was lost first (the local file stays).
        """
        paths = [s.version.path for s in snapshots]
        contents = {
            s.version.hash: s.content
            for s in snapshots
            if s.version.hash is not None and s.content is not None
        }
        try:
            created = await self._client.create_versions([s.version for s in snapshots], contents)
        except StaleToken:
            if len(snapshots) == 1:
                log.error(
                    "lease on %s was lost before its snapshot was recorded; the local file is kept",
                    paths[0],
                )
                return {paths[0]: Outcome.LOST}
        except PayloadTooLarge as exc:
            if len(snapshots) == 1:
                return {paths[0]: _too_large(paths[0], exc)}
        except CoordinatorUnavailable as exc:
            self._unreachable()
            log.warning("could not record %d snapshot(s) yet (will retry): %s", len(paths), exc)
            return dict.fromkeys(paths, Outcome.RETRY)
        except LeasefsError as exc:
            log.error("could not record %d snapshot(s) (will retry): %s", len(paths), exc)
            return dict.fromkeys(paths, Outcome.RETRY)
        else:
            for version in created:
                self._applier.saw(version)
            return dict.fromkeys(paths, Outcome.DONE)
        one_by_one: dict[str, Outcome] = {}
        for snapshot in snapshots:
            one_by_one.update(await self._record([snapshot]))
        return one_by_one

    async def _upload(self, path: str) -> None:
        fd = await trio.to_thread.run_sync(_backing.open_for_reading, self._root_fd, path)
        try:
            await self._client.upload_blob_fd(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class _Snapshot:
    """A changed file's version, ready to record; its content inline when small."""

    version: VersionCreate
    content: bytes | None


def _batches(snapshots: list[_Snapshot]) -> Iterator[list[_Snapshot]]:
    """Requests of at most `MAX_BATCH_VERSIONS` versions and `_INLINE_BYTES` of content."""
    batch: list[_Snapshot] = []
    inline = 0
    for snapshot in snapshots:
        size = len(snapshot.content or b"")
        if batch and (len(batch) == MAX_BATCH_VERSIONS or inline + size > _INLINE_BYTES):
            yield batch
            batch, inline = [], 0
        batch.append(snapshot)
        inline += size
    if batch:
        yield batch


def _too_large(path: str, exc: PayloadTooLarge) -> Outcome:
    """Retrying cannot help and would hold the lease forever: release without a version."""
    log.error(
        "%s was released without a snapshot, so the team does not get it (the local file is "
        "kept): %s",
        path,
        exc,
    )
    return Outcome.DONE
