"""Snapshots: content-addressed blobs and the versions of paths that point at them.

A version is recorded only under the path's current lease (its own, or a folder lease above
it): its fencing token must be the one the lease holds now, so a writer whose lease expired can never record over its successor.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from leasefs.wire import BlobInfo, ErrorCode, EventType, Version, VersionBatch, VersionCreate

from ._admission import require_role
from ._blobs import BlobFiles
from ._errors import ConflictError, NotFoundError, Unprocessable
from ._lease_rows import held_by
from ._records import record, version_model
from ._signals import EventSignals
from .store import AgentRow, Store, Tx


class Snapshots:
    def __init__(
        self,
        store: Store,
        blobs: BlobFiles,
        signals: EventSignals,
        *,
        max_blob_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._signals = signals
        self.max_blob_bytes = max_blob_bytes
        self._clock = clock

    async def blob_size(self, agent: AgentRow, digest: str) -> int | None:
        size = await self._store.read(lambda tx: tx.blob_size(agent.workspace_id, digest))
        if size is not None and not self._blobs.exists(digest):
            return None
        return size

    async def put_blob(
        self, agent: AgentRow, digest: str, chunks: AsyncIterator[bytes]
    ) -> BlobInfo:
        require_role(agent, "member", "uploading content")
        size = await self._blobs.write(digest, chunks, self.max_blob_bytes)

        def store_row(tx: Tx) -> None:
            self._store_blob_row(tx, agent, digest, size, self._clock())

        await self._store.run(store_row)
        return BlobInfo(hash=digest, size=size)

    @staticmethod
    def _store_blob_row(tx: Tx, agent: AgentRow, digest: str, size: int, now: float) -> None:
        """Let ``agent``'s workspace read blob ``digest`` (stored once for all workspaces)."""
        if tx.blob_size(agent.workspace_id, digest) is None:
            tx.insert_blob(agent.workspace_id, digest, size, now)
            record(
                tx,
                agent.workspace_id,
                now,
                agent.id,
                "blob.stored",
                None,
                {"hash": digest, "size": size},
                publish=False,
            )

    def blob_chunks(self, digest: str) -> AsyncIterator[bytes]:
        return self._blobs.read(digest)

    async def create_version(self, agent: AgentRow, request: VersionCreate) -> Version:
        require_role(agent, "member", "recording a version")

        def create(tx: Tx) -> Version:
            return _record_version(tx, agent, request, self._clock())

        version = await self._store.run(create)
        self._signals.notify([agent.workspace_id])
        return version

    async def create_versions(self, agent: AgentRow, batch: VersionBatch) -> list[Version]:
        """Record every version of ``batch`` and its inline contents in one transaction, or
        nothing: a mount's release of many small files costs one request instead of an
        upload and a version each.

        The contents' files are written first; refused, they stay unreferenced by this
        workspace until the same content is uploaded again (blobs are stored once).
        """
        require_role(agent, "member", "recording versions")
        sizes = await self._blobs.write_small(batch.contents, self.max_blob_bytes)

        def create(tx: Tx) -> list[Version]:
            now = self._clock()
            for digest, size in sizes.items():
                self._store_blob_row(tx, agent, digest, size, now)
            return [_record_version(tx, agent, request, now) for request in batch.versions]

        versions = await self._store.run(create)
        self._signals.notify([agent.workspace_id])
        return versions

    async def latest_version(self, agent: AgentRow, path: str, branch: str) -> Version:
        def latest(tx: Tx) -> Version | None:
            found = tx.latest_versions(agent.workspace_id, [path], branch)
            if path not in found:
                return None
            return version_model(found[path], tx.agents_by_ids([found[path].agent_id]))

        version = await self._store.read(latest)
        if version is None:
            raise NotFoundError(
                f"{path} has no version on branch {branch!r}", code=ErrorCode.NO_VERSION
            )
        return version

    async def history(self, agent: AgentRow, path: str, branch: str, limit: int) -> list[Version]:
        def history(tx: Tx) -> list[Version]:
            rows = tx.version_history(agent.workspace_id, path, branch, limit)
            agents = tx.agents_by_ids(r.agent_id for r in rows)
            return [version_model(r, agents) for r in rows]

        return await self._store.read(history)


def _record_version(tx: Tx, agent: AgentRow, request: VersionCreate, now: float) -> Version:
    """Append ``request`` as the path's newest version, if it holds the path's current lease."""
    ws = agent.workspace_id
    if held_by(tx, ws, agent.id, request.path, request.token, now) is None:
        raise ConflictError(
            f"a version of {request.path} needs its current lease, and fencing token "
            f"{request.token} is not it (the lease expired or passed to another agent); "
            "nothing was recorded",
            code=ErrorCode.STALE_TOKEN,
            details={"path": request.path, "token": request.token},
        )
    size = None
    if request.hash is not None:
        size = tx.blob_size(ws, request.hash)
        if size is None:
            raise Unprocessable(
                f"no blob {request.hash} was uploaded to this workspace; upload it first",
                code=ErrorCode.UNKNOWN_BLOB,
            )
    row = tx.insert_version(
        workspace_id=ws,
        path=request.path,
        branch=request.branch,
        hash=request.hash,
        base_hash=request.base_hash,
        size=size,
        mode=request.mode,
        token=request.token,
        agent_id=agent.id,
        now=now,
    )
    version = version_model(row, {agent.id: agent})
    record(tx, ws, now, agent.id, EventType.VERSION_CREATED, request.path, version.model_dump())
    return version
