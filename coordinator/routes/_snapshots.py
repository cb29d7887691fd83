"""Routes for snapshots: content-addressed blobs (streamed both ways) and file versions.

A blob is named by its SHA-256; one declared too large by its Content-Length is refused
before a byte of it is read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from leasefs.wire import BlobInfo, ErrorCode, Version, VersionBatch, VersionCreate

from .._errors import NotFoundError, TooLarge
from ._deps import AgentDep, CoordinatorDep, checked_digest, checked_path

router = APIRouter()


@router.head("/v1/blobs/{digest}")
async def has_blob(digest: str, agent: AgentDep, c: CoordinatorDep) -> Response:
    size = await c.snapshots.blob_size(agent, checked_digest(digest))
    if size is None:
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(size)})


@router.put("/v1/blobs/{digest}", response_model=BlobInfo, status_code=201)
async def put_blob(digest: str, request: Request, agent: AgentDep, c: CoordinatorDep) -> BlobInfo:
    digest = checked_digest(digest)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > c.limits.max_blob_bytes:
        raise TooLarge(
            f"the blob is {length} bytes; this coordinator accepts at most "
            f"{c.limits.max_blob_bytes} (--max-blob-bytes)",
            details={"max_bytes": c.limits.max_blob_bytes},
        )
    return await c.snapshots.put_blob(agent, digest, request.stream())


@router.get("/v1/blobs/{digest}", response_class=StreamingResponse)
async def get_blob(digest: str, agent: AgentDep, c: CoordinatorDep) -> StreamingResponse:
    digest = checked_digest(digest)
    size = await c.snapshots.blob_size(agent, digest)
    if size is None:
        raise NotFoundError(f"no blob {digest} in this workspace", code=ErrorCode.UNKNOWN_BLOB)
    return StreamingResponse(
        c.snapshots.blob_chunks(digest),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )


@router.post("/v1/versions", response_model=Version, status_code=201)
async def create_version(body: VersionCreate, agent: AgentDep, c: CoordinatorDep) -> Version:
    return await c.snapshots.create_version(agent, body)


@router.post("/v1/versions/batch", response_model=list[Version], status_code=201)
async def create_versions(body: VersionBatch, agent: AgentDep, c: CoordinatorDep) -> list[Version]:
    return await c.snapshots.create_versions(agent, body)


@router.get("/v1/versions/latest", response_model=Version)
async def latest_version(
    agent: AgentDep, c: CoordinatorDep, path: str, branch: str = "main"
) -> Version:
    return await c.snapshots.latest_version(agent, checked_path(path), branch)


@router.get("/v1/versions", response_model=list[Version])
async def history(
    agent: AgentDep,
    c: CoordinatorDep,
    path: str,
    branch: str = "main",
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[Version]:
    return await c.snapshots.history(agent, checked_path(path), branch, limit)
