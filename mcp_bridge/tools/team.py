"""The team's state: the briefing to start with, who holds and touches which paths, and
which team (workspace) this session acts for."""

import contextlib

import anyio

from leasefs import ControlError, mount_status
from leasefs.wire import any_overlap

from .._bridge import Bridge
from .._results import CheckReport, MountBriefing, PathReport, Switched
from . import PathList


async def briefing(bridge: Bridge) -> MountBriefing:
    """The team state to start a session with: the context document, active and parked
    work with hand-off notes, who holds which files and who waits, relevant memories,
    follow-ups, open conflicts, unread messages and the files changing most; and files this
    mount was granted that another branch changed since the two met."""
    found = await bridge.client.briefing()
    return MountBriefing(**dict(found), other_branches=await _mount_notices(bridge))


async def _mount_notices(bridge: Bridge) -> list[str]:
    """What the mount around this session noticed of other branches (none outside one)."""
    if (socket := bridge.identity.mount_socket) is None:
        return []
    with contextlib.suppress(ControlError):  # the mount went away: the rest stands
        return (await anyio.to_thread.run_sync(mount_status, socket)).notices
    return []


async def check(bridge: Bridge, paths: PathList) -> CheckReport:
    """For each path: who holds it and who waits, its latest versions, work sessions that
    touch it and memories about it. Changes nothing."""
    statuses = await bridge.client.holders(paths)
    active = await bridge.client.list_work(["active"])
    notices = await _mount_notices(bridge)
    reports = []
    for status in statuses:
        history = await bridge.client.history(status.path, limit=5)
        reports.append(
            PathReport(
                path=status.path,
                lease=status.lease,
                waiters=[w.name for w in status.waiters],
                latest_version=history[0] if history else None,
                history=history,
                overlapping_work=[w for w in active if any_overlap(w.paths, [status.path])],
                memories=await bridge.client.recall(paths=[status.path], limit=5),
                other_branches=[n for n in notices if n.startswith(f"{status.path} was changed")],
            )
        )
    return CheckReport(paths=reports)


async def switch_workspace(bridge: Bridge, name: str) -> Switched:
    """Act for another workspace (another repository) from now on."""
    await bridge.switch_workspace(name)
    return Switched(workspace=name, agent=bridge.identity.agent, agent_id=bridge.agent_id)
