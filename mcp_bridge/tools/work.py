"""Work sessions: declare what you do, finish it with a hand-off or park it for another agent
to resume. Ending a session releases its leases (the mount's with real snapshots)."""

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from leasefs import LeaseHeld, run_checks
from leasefs.wire import Handoff, Lease, Work

from .._bridge import Bridge
from .._results import Inspection, Released, Started


def current_work(bridge: Bridge, work_id: int | None) -> int:
    """The session named, else the one this bridge started or resumed last."""
    chosen = work_id or bridge.work_id
    if chosen is None:
        raise ToolError("no work session: start one with leasefs_start, or pass work_id")
    return chosen


async def start(
    bridge: Bridge,
    title: Annotated[str, Field(description="What you are about to do, in a line.")],
    paths: Annotated[list[str], Field(description="Files or globs you expect to touch.")] = [],  # noqa: B006 - pydantic copies defaults
    plan: Annotated[str, Field(description="How you mean to do it.")] = "",
    lease: Annotated[
        bool, Field(description="Take the leases on the listed files now (all or none).")
    ] = False,
) -> Started:
    """Declare a work session; optionally lease its files ahead of editing. Reports other
    agents' active work on the same paths."""
    leases: list[Lease] = []
    if lease:
        literal = [p for p in paths if not set("*?[") & set(p)]
        if literal:
            branch, scope = await bridge.lease_place()
            try:
                granted = await bridge.client.acquire(
                    literal, work=title, branch=branch, lease_scope=scope
                )
                leases = granted.leases
            except LeaseHeld as exc:
                raise ToolError(f"not started: {exc}") from exc
    started = await bridge.client.start_work(title, paths, plan)
    bridge.work_id = started.work.id
    note = f"work {started.work.id} started"
    if started.overlapping:
        others = ", ".join(f"{w.owner.name}: {w.title!r}" for w in started.overlapping)
        note += f"; it overlaps active work of {others} — coordinate with leasefs_ask"
    return Started(work=started.work, leases=leases, overlapping=started.overlapping, note=note)


async def finish(
    bridge: Bridge,
    summary: Annotated[str, Field(description="What was done.")],
    next_steps: list[str] = [],  # noqa: B006
    decisions: list[str] = [],  # noqa: B006
    learnings: list[str] = [],  # noqa: B006
    failed_approaches: list[str] = [],  # noqa: B006
    run_checks_first: Annotated[
        bool, Field(description="Run the build/test commands of leasefs.toml first.")
    ] = False,
    work_id: int | None = None,
) -> Released:
    """End the work session with a hand-off and release its leases (the mount uploads the
    files' real content; nothing passes through you)."""
    chosen = current_work(bridge, work_id)
    checks = []
    if run_checks_first and bridge.identity.repo is not None:
        checks = await run_checks(bridge.identity.repo)
    handoff = Handoff(
        summary=summary, next_steps=next_steps, decisions=decisions, learnings=learnings,
        failed_approaches=failed_approaches, checks=checks,
    )  # fmt: skip
    work = await bridge.client.finish_work(chosen, handoff)
    released = await bridge.release_all()
    bridge.work_id = None
    failed = [c.name for c in checks if not c.passed]
    note = f"work {chosen} finished; {len(released)} lease(s) released"
    if checks:
        note += f"; checks failed: {', '.join(failed)}" if failed else "; checks passed"
    return Released(work=work, released=released, note=note)


async def park(
    bridge: Bridge,
    progress: Annotated[str, Field(description="Where the work stands.")],
    notes: Annotated[str, Field(description="What the next agent should know.")] = "",
    work_id: int | None = None,
) -> Released:
    """Pause the work session, release its leases, and leave it for any agent to resume."""
    chosen = current_work(bridge, work_id)
    work = await bridge.client.park_work(chosen, progress, notes)
    released = await bridge.release_all()
    bridge.work_id = None
    return Released(work=work, released=released, note=f"work {chosen} parked")


async def resume(bridge: Bridge, work_id: int) -> Work:
    """Take over a parked work session: you become its owner."""
    work = await bridge.client.resume_work(work_id)
    bridge.work_id = work.id
    return work


async def cancel(bridge: Bridge, work_id: int) -> Work:
    """Cancel a work session (its owner only)."""
    work = await bridge.client.cancel_work(work_id)
    if bridge.work_id == work_id:
        bridge.work_id = None
    return work


async def inspect(bridge: Bridge, work_id: int) -> Inspection:
    """A work session with its owner's leases and the threads about it."""
    work = await bridge.client.work(work_id)
    leases = [
        s for s in await bridge.client.holders() if s.lease and s.lease.holder.id == work.owner.id
    ]
    threads = [t for t in (await bridge.client.briefing()).unread if t.to == f"work:{work_id}"]
    return Inspection(work=work, leases=leases, threads=threads)
