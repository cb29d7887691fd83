"""Structured answers of the MCP tools that are not already one wire model."""

from __future__ import annotations

from pydantic import BaseModel, Field

from leasefs.wire import Briefing, Lease, Memory, PathStatus, Thread, Version, Work


class Started(BaseModel):
    """A work session begun, the leases taken for it, and what it runs into."""

    work: Work
    leases: list[Lease]
    overlapping: list[Work]
    note: str


class PathReport(BaseModel):
    path: str
    lease: Lease | None
    waiters: list[str]
    latest_version: Version | None
    history: list[Version]
    overlapping_work: list[Work]
    memories: list[Memory]
    # Another branch changed it since it and this tree's branch met (said when this mount
    # was granted it): "api.txt was changed on main by alice (version 12)".
    other_branches: list[str] = []


class MountBriefing(Briefing):
    """The team's briefing, and what this session's mount knows besides: the files it was
    granted that another branch changed since the two met."""

    other_branches: list[str] = Field(default_factory=list)


class CheckReport(BaseModel):
    paths: list[PathReport]


class Acquired(BaseModel):
    """Leases held now, with the latest content of each path (text files, up to a size)."""

    leases: list[Lease]
    contents: dict[str, str | None]
    note: str


class Released(BaseModel):
    work: Work | None
    released: list[str]
    note: str


class Memories(BaseModel):
    memories: list[Memory]


class Threads(BaseModel):
    threads: list[Thread]


class Inspection(BaseModel):
    work: Work
    leases: list[PathStatus]
    threads: list[Thread]


class Forgotten(BaseModel):
    memory_id: int


class Switched(BaseModel):
    workspace: str
    agent: str
    agent_id: int


class ZoneQuestion(BaseModel):
    """What a person is asked before an agent may change a file in a confirm zone."""

    allow: bool


class ZoneConfirmed(BaseModel):
    path: str
    allowed: bool
    note: str
