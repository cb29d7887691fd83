"""The mount's leases against the coordinator: taken on the first change to a path, renewed
while held, given back with a snapshot once the path is quiet.

The rules (jeopardy, idle grace, recall, lost leases) are `_lease_machine.MountLeases`, which
does no I/O; this runs it: it sends the acquires and the renewals, sleeps until the next lease
is due, and hands due leases to `_snapshots.Releaser`. A lease already held costs no round trip,
nor does one adopted under a folder lease (taken with the folder's mkdir); one renewal call
keeps all of them alive (every TTL/3).
"""

from __future__ import annotations

import errno
import logging
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, replace

import trio

from .._client import Client, CoordinatorUnavailable, LeasefsError, StaleToken, Unauthorized
from ..wire import (
    DEFAULT_BRANCH,
    IDLE_GRACE_S,
    LEASE_TTL_S,
    WAIT_S,
    Lease,
    LeaseRef,
    LeaseScope,
    Version,
    folders_above,
    is_folder,
)
from . import _backing
from ._applier import Applier
from ._checkout import merge_base_time
from ._errnos import LeaseRefused, refusal
from ._lease_machine import LeaseTiming, MountLease, MountLeases
from ._snapshots import Outcome, Releaser

log = logging.getLogger("leasefs.mount")

OpenForWriting = Callable[[], Awaitable[Set[str]]]
"""The paths something holds open for writing right now (asked only when a lease is quiet
enough to go back otherwise)."""

_APPLY_WAIT_S = 2.0
"""How long a granted request waits for an incoming version being fetched on its path; one
already being moved in through the mount gives way to it at once (`Applier.give_way`)."""
_LOCK_POLL_S = 0.005  # how often a grant looks again at a path the applier is busy with
_NOTICES_KEPT = 20

_SCAN_SHARE = 5
"""Open writers are looked at no more often than every this many times one look took: a
machine with very many processes must not spend its time looking."""


class _MovingIn(Exception):
    """The grant's path has a version being moved in that may wait behind the request."""


@dataclass(frozen=True)
class KeeperOptions:
    ttl_s: float = LEASE_TTL_S
    idle_grace_s: float = IDLE_GRACE_S
    wait_s: float = WAIT_S
    branch: str = DEFAULT_BRANCH
    lease_scope: LeaseScope = "workspace"  # whom our leases exclude: see `wire.LeaseScope`
    work: str | None = None

    @property
    def timing(self) -> LeaseTiming:
        return LeaseTiming(ttl_s=self.ttl_s, idle_grace_s=self.idle_grace_s)


@dataclass(frozen=True)
class KeeperStatistics:
    reachable: bool  # the coordinator answered the last request sent to it
    pending_snapshots: int  # leases being given back now


class LeaseKeeper:
    def __init__(
        self,
        client: Client,
        root_fd: int,
        applier: Applier,
        options: KeeperOptions,
        open_for_writing: OpenForWriting,
        leases: MountLeases | None = None,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``leases``: the rules' state, when the applier must see it too (which paths are
        being acquired); a fresh one otherwise. ``before_release``: awaited before leases go
        back (the tree settles: a git checkout under way ends, a branch switch is seen)."""
        self._client = client
        self._root_fd = root_fd
        self._applier = applier
        self.options = options
        self.open_for_writing = open_for_writing
        self._before_release = before_release
        self.notices: deque[str] = deque(maxlen=_NOTICES_KEPT)  # files other branches changed
        self.leases = leases if leases is not None else MountLeases(options.timing)
        self._releaser = Releaser(
            client, root_fd, applier, branch=options.branch, unreachable=self._unreachable
        )
        self._acquired: dict[str, trio.Event] = {}  # path -> set when its acquire ends
        self._released: dict[str, trio.Event] = {}  # path -> set when its release ends
        self._wake_releaser = trio.Event()
        self._reachable = True
        self._pending_snapshots = 0
        self._background: trio.Nursery | None = None  # once `run` is running

    def statistics(self) -> KeeperStatistics:
        return KeeperStatistics(
            reachable=self._reachable, pending_snapshots=self._pending_snapshots
        )

    def _unreachable(self) -> None:
        self._reachable = False

    # -- what the filesystem asks ------------------------------------------------------------

    def held(self) -> list[MountLease]:
        return self.leases.leases()

    async def ensure(self, paths: Sequence[str], new_folders: Sequence[str] = ()) -> None:
        """Hold leases on all ``paths``, or raise `LeaseRefused` saying why not.

        ``new_folders``: folders being made by this change (keys ending in '/'), to lease
        whole if they are free, so the files then made in them need no round trip each.
        """
        while True:
            now = trio.current_time()
            missing = [p for p in dict.fromkeys(paths) if not self.leases.may_write(p, now)]
            if not missing:
                break
            if under := [p for p in missing if self.leases.covering_folder(p, now)]:
                await self._adopt(under)
                continue  # the folder may have changed meanwhile: look again
            busy = [e for p in missing if (e := self._busy_event(p)) is not None]
            if busy:
                await busy[0].wait()  # someone is acquiring or releasing it: look again after
                continue
            await self._acquire(missing, new_folders)
        self.leases.used(paths, trio.current_time())

    async def _adopt(self, paths: list[str]) -> None:
        """Take the leases of ``paths`` under the folder leases covering them (no round trip;
        a file that exists already is hashed first, as any lease's base)."""
        for path in paths:
            base_hash = await self._local_hash(path)
            if self.leases.adopt(path, base_hash, trio.current_time()):
                self._wake_releaser.set()

    def switch_branch(self, branch: str) -> None:
        """The tree's checked-out branch changed: leases are asked for, and versions
        recorded, on ``branch`` from now on."""
        self.options = replace(self.options, branch=branch)
        self._releaser.switch_branch(branch)

    def recall(self, path: str, token: int) -> None:
        """Someone waits for ``path``: give it back once it is quiet and not open for writing
        (a folder lease: narrow it at once to the files under it still held)."""
        if self.leases.recalled(path, token, trio.current_time()):
            if is_folder(path):
                self._narrow_soon(path, token)
            else:
                self._wake_releaser.set()

    def writer_closed(self, path: str) -> None:
        """A write handle on ``path`` was closed: the idle grace starts now."""
        if self.leases.writer_closed(path, trio.current_time()):
            self._wake_releaser.set()

    def _busy_event(self, path: str) -> trio.Event | None:
        """Set when ``path``, or a folder lease above it, is no longer being acquired,
        released or narrowed."""
        for events in (self._acquired, self._released):
            if (event := events.get(path)) is not None:
                return event
        if not self._released:
            return None
        for key in folders_above(path):
            if (event := self._released.get(key)) is not None:
                return event
        return None

    # -- narrowing a folder lease ------------------------------------------------------------

    def _narrow_soon(self, key: str, token: int) -> None:
        if self._background is not None:
            self._background.start_soon(self._narrow, key, token)

    async def _narrow(self, key: str, token: int) -> None:
        """Swap folder lease ``key`` for leases on the files under it still held, so a waiter
        for another file goes now; retried while the coordinator cannot be reached (its
        break timeout bounds the waiter's wait)."""
        while self.leases.start_narrowing(key, token):
            done = self._released[key] = trio.Event()
            try:
                for child in self.leases.children(key):  # let releases under way finish
                    if (event := self._released.get(child.path)) is not None:
                        await event.wait()
                keep = self.leases.to_keep(key)
                try:
                    result = await self._client.narrow(LeaseRef(path=key, token=token), keep)
                except StaleToken:
                    log.error("folder lease %s was lost before it could be narrowed", key)
                    self.leases.narrowed(key, [])
                    return
                except LeasefsError as exc:
                    if isinstance(exc, CoordinatorUnavailable):
                        self._unreachable()
                    log.warning("could not narrow folder lease %s yet (will retry): %s", key, exc)
                    self.leases.narrow_failed(key)
                else:
                    self._reachable = True
                    for path in self.leases.narrowed(key, result.leases):
                        log.error("lease on %s was lost while its folder was narrowed", path)
                    log.info("narrowed folder lease %s to %d file(s)", key, len(keep))
                    self._wake_releaser.set()
                    return
            finally:
                self._released.pop(key, None)
                done.set()
            await trio.sleep(self.leases.timing.idle_poll_s)

    # -- acquiring ---------------------------------------------------------------------------

    async def _acquire(self, paths: list[str], folders: Sequence[str] = ()) -> None:
        done = trio.Event()
        for path in paths:
            self._acquired[path] = done
        self.leases.acquire_started(paths)
        granted = False
        try:
            sent_at = trio.current_time()
            try:
                grant = await self._client.acquire(
                    paths,
                    ttl_s=self.options.ttl_s,
                    wait_s=self.options.wait_s,
                    work=self.options.work,
                    branch=self.options.branch,
                    lease_scope=self.options.lease_scope,
                    folders=folders,
                )
            except LeasefsError as exc:
                if isinstance(exc, CoordinatorUnavailable):
                    self._unreachable()
                raise refusal(exc) from exc
            self._reachable = True
            self.leases.answered(sent_at)
            self._notice_elsewhere(grant.elsewhere)
            try:
                for lease in grant.leases:
                    await self._take(lease, grant.versions.get(lease.path))
            except _MovingIn as exc:
                await self._give_back_unrecorded(grant.leases)
                raise LeaseRefused(str(exc), errno=errno.EBUSY) from exc
            except (LeasefsError, OSError) as exc:
                await self._give_back_unrecorded(grant.leases)
                raise LeaseRefused(
                    f"granted, but the latest content could not be brought in: {exc}",
                    errno=errno.ENOLCK if isinstance(exc, CoordinatorUnavailable) else errno.EIO,
                ) from exc
            granted = True
        finally:
            self.leases.acquire_ended(paths)
            for path in paths:
                self._acquired.pop(path, None)
            done.set()
            if self._background is not None:
                # After the request is answered: catching up moves files in through the
                # mount, which the kernel holds back while the request holds their locks.
                self._background.start_soon(self._settle_deferred, paths, granted)
            else:
                with trio.CancelScope(shield=True):
                    await self._settle_deferred(paths, granted)

    def _notice_elsewhere(self, elsewhere: Mapping[str, list[Version]]) -> None:
        """Files just granted that another branch changed since it and this one met: say so
        (log, `leasefs status`), in the background (git is asked when they met)."""
        if elsewhere and self._background is not None:
            self._background.start_soon(self._record_notices, dict(elsewhere))

    async def _record_notices(self, elsewhere: Mapping[str, list[Version]]) -> None:
        branches = {v.branch for versions in elsewhere.values() for v in versions}
        met_at = {
            branch: await trio.to_thread.run_sync(merge_base_time, self._root_fd, branch)
            for branch in branches
        }
        for path, versions in elsewhere.items():
            for version in versions:
                met = met_at[version.branch]
                if met is not None and version.created_at <= met:
                    continue  # in both branches' history already
                text = (
                    f"{path} was changed on {version.branch} by {version.author.name} "
                    f"(version {version.id})"
                )
                log.warning("%s: changing it on %s too is a merge conflict to come", text,
                            self.options.branch)  # fmt: skip
                self.notices.append(text)

    async def _settle_deferred(self, paths: list[str], granted: bool) -> None:
        try:
            await self._applier.settle_deferred(paths, granted=granted)
        except (LeasefsError, OSError) as exc:
            log.warning("could not catch up with %s: %s", ", ".join(paths), exc)

    async def _local_hash(self, path: str) -> str | None:
        """The file's content before the lease's first change; for a path with no file yet
        (every file created under a new lease) without a trip to a worker thread."""
        try:
            os.stat(path, dir_fd=self._root_fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        local = await trio.to_thread.run_sync(_backing.read_state, self._root_fd, path)
        return local.hash if local else None

    async def _take(self, lease: Lease, version: Version | None) -> None:
        """Record a granted lease, first bringing in the version the grant carries."""
        if self.leases.is_current(lease.path, lease.token):
            self.leases.confirmed(lease)  # confirmed again: same lease, same base
            return
        if is_folder(lease.path):  # granted only with nothing under it: nothing to bring in
            self.leases.granted(lease, None, trio.current_time())
            if (held := self.leases.get(lease.path)) is not None and held.recalled:
                self._narrow_soon(lease.path, lease.token)  # the recall came first
            return
        lock = await self._lock_or_give_way(lease.path)
        try:
            if version is not None:
                # A waiter continues on top of the holder's content, never beside it.
                await self._applier.apply_for_waiter(version)
            base_hash = await self._local_hash(lease.path)
        finally:
            if lock is not None:
                lock.release()
        if self.leases.granted(lease, base_hash, trio.current_time()):
            self._wake_releaser.set()

    async def _lock_or_give_way(self, path: str) -> trio.Lock | None:
        """The applier's lock on ``path``, or None where the applier gave way: it was moving
        a version onto the path through the mount, which the kernel holds back behind the
        request being granted, so that move is cancelled and this grant applies in place."""
        lock = self._applier.lock_for(path)
        deadline = trio.current_time() + _APPLY_WAIT_S
        while True:
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:
                pass
            else:
                return lock
            if self._applier.give_way(path):
                return None
            if trio.current_time() >= deadline:
                raise _MovingIn(f"a newer version of {path} is being moved in; try again")
            await trio.sleep(_LOCK_POLL_S)

    async def _give_back_unrecorded(self, leases: list[Lease]) -> None:
        """Return granted leases whose content could not be brought in: writing on top of
        the old content would bury the newer version. Unreachable, they run out by TTL."""
        unrecorded = [
            lease for lease in leases if not self.leases.is_current(lease.path, lease.token)
        ]
        if not unrecorded:
            return
        with trio.CancelScope(shield=True):
            try:
                await self._client.release(unrecorded)
            except LeasefsError as exc:
                log.warning(
                    "could not give back %s (it runs out after its TTL): %s",
                    ", ".join(lease.path for lease in unrecorded),
                    exc,
                )

    # -- background work --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._renew_forever)
            nursery.start_soon(self._release_idle_forever)
            self._background = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._background = None

    async def _renew_forever(self) -> None:
        while True:
            await trio.sleep(self.leases.timing.renew_every_s)
            if not self.leases:
                continue
            sent_at = trio.current_time()
            try:
                result = await self._client.renew()
            except CoordinatorUnavailable as exc:
                self._unreachable()
                log.warning("renewal failed, coordinator unreachable: %s", exc)
                continue
            except Unauthorized as exc:
                lost = self.leases.retire()
                log.error(
                    "the coordinator no longer takes this agent (%s): %d lease(s) dropped, and "
                    "every change in scope now fails with ENOLCK; mount again once re-admitted",
                    exc,
                    len(lost),
                )
                continue
            except LeasefsError as exc:
                log.error("renewal refused: %s", exc)
                continue
            self._reachable = True
            live = [(lease.path, lease.token) for lease in result.leases]
            for path in self.leases.renewed(sent_at, live):
                log.error("lease on %s was lost (expired on the coordinator)", path)

    async def _release_idle_forever(self) -> None:
        last_look = -math.inf
        while True:
            writing: Set[str] = frozenset()
            looked_for = 0.0
            if quiet := self.leases.quiet(trio.current_time()):
                allowed = self.leases.next_look(quiet, last_look, trio.current_time())
                if trio.current_time() < allowed:
                    self._wake_releaser = trio.Event()  # a recall may shorten the gap
                    with trio.move_on_at(allowed):
                        await self._wake_releaser.wait()
                    continue
                started = last_look = trio.current_time()
                writing = await self.open_for_writing()
                looked_for = trio.current_time() - started
            now = trio.current_time()
            due = self.leases.due(now, writing)
            if due:
                await self.release(due)
                continue
            wake_at = max(self.leases.sleeping(now, writing), now + _SCAN_SHARE * looked_for)
            self._wake_releaser = trio.Event()
            with trio.move_on_at(wake_at):
                await self._wake_releaser.wait()
            self.leases.awake()

    async def release(self, paths: Sequence[str] | None = None) -> list[str]:
        """Snapshot and release ``paths`` (all held ones if None) now; returns those released.

        A path whose release could not reach the coordinator stays held and is tried again
        after the idle grace; one whose lease was lost meanwhile is dropped (its file stays).
        """
        if self._before_release is not None:
            await self._before_release()
        chosen = self.leases.releasing(paths)
        for lease in chosen:
            self._released[lease.path] = trio.Event()
        outcomes = dict.fromkeys((lease.path for lease in chosen), Outcome.RETRY)
        self._pending_snapshots += len(chosen)
        try:
            outcomes.update(await self._releaser.give_back(chosen))
        finally:
            self._pending_snapshots -= len(chosen)
            now = trio.current_time()
            for lease in chosen:
                if outcomes[lease.path] is Outcome.RETRY:
                    if self.leases.release_failed(lease, now):
                        self._wake_releaser.set()
                else:
                    self.leases.released(lease)
                self._released.pop(lease.path).set()
        return [lease.path for lease in chosen if outcomes[lease.path] is Outcome.DONE]
