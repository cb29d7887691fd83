"""The mount's leases: taken on the first change to a path, kept while in use, given back with
a snapshot when idle.

A lease already held costs no round trip. One renewal call keeps all of them alive (every
TTL/3). Each renewal's *send* time plus the TTL, less a margin, is the jeopardy deadline: past
it the keeper refuses writes, because the coordinator may already have given the path to
someone else (fail closed, as Chubby's clients do). A path with no open writer for the idle
grace is snapshotted (uploaded if its content changed) and released.
"""

from __future__ import annotations

import errno
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

import trio

from .._client import (
    Client,
    CoordinatorUnavailable,
    Forbidden,
    LeasefsError,
    LeaseHeld,
    PayloadTooLarge,
    RateLimited,
    StaleToken,
    TooManyLeases,
)
from ..wire import (
    DEFAULT_BRANCH,
    IDLE_GRACE_S,
    LEASE_TTL_S,
    MAX_BATCH_VERSIONS,
    SMALL_BLOB_BYTES,
    WAIT_S,
    Lease,
    LeaseRef,
    Version,
    VersionCreate,
)
from . import _backing
from ._applier import Applier

log = logging.getLogger("leasefs.mount")

_PARALLEL_SNAPSHOTS = 4
_RELEASE_BATCH = 500
_INLINE_BYTES = 512 << 10
"""Contents sent inline per request: base64 makes them a third larger, and the coordinator
takes JSON bodies of up to 1 MiB by default."""


class LeaseRefused(Exception):
    """A change cannot proceed; ``errno`` is what the system call fails with."""

    def __init__(self, message: str, *, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class State(StrEnum):
    HELD = "held"
    RELEASING = "releasing"


@dataclass
class HeldLease:
    path: str
    token: int
    base_hash: str | None  # the local content when the lease was taken; None: no file
    acquired_at: float
    expires_at: float
    last_used: float = 0.0  # trio clock
    state: State = State.HELD
    recalled: bool = False  # another agent waits: no idle grace
    released: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True)
class KeeperOptions:
    ttl_s: float = LEASE_TTL_S
    idle_grace_s: float = IDLE_GRACE_S
    wait_s: float = WAIT_S
    branch: str = DEFAULT_BRANCH
    work: str | None = None

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    @property
    def margin_s(self) -> float:
        """How long before a lease can run out writes stop: at least a second, but never
        the whole TTL (a lease would then be in jeopardy as soon as granted)."""
        return min(max(1.0, self.ttl_s / 6), self.ttl_s / 2)


class LeaseKeeper:
    def __init__(
        self,
        client: Client,
        root_fd: int,
        applier: Applier,
        options: KeeperOptions,
        open_writers: Callable[[str], int],
    ) -> None:
        self._client = client
        self._root_fd = root_fd
        self._applier = applier
        applier.waiting_for_lease = self.is_acquiring
        self.options = options
        self._open_writers = open_writers
        self._held: dict[str, HeldLease] = {}
        self._acquiring: dict[str, trio.Event] = {}
        self._deadline = -math.inf  # trio clock; writes refused past it
        self._wake_releaser = trio.Event()
        self._release_at = -math.inf  # trio clock; when the releaser wakes by itself if asleep
        self.reachable = True
        self.pending_snapshots = 0
        self._lost: set[str] = set()  # leases that ran out under an open writer
        self._early_recalls: dict[str, int] = {}  # path -> token recalled before recorded

    # -- what the filesystem asks ------------------------------------------------------------

    def held(self) -> list[HeldLease]:
        return sorted(self._held.values(), key=lambda h: h.path)

    def in_jeopardy(self) -> bool:
        return trio.current_time() >= self._deadline

    def may_write(self, path: str) -> bool:
        """True if ``path`` is held and the lease cannot have run out on the coordinator."""
        lease = self._held.get(path)
        return lease is not None and lease.state is State.HELD and not self.in_jeopardy()

    def needs_confirmation(self, path: str) -> bool:
        """A write to ``path`` must first (re)confirm its lease: in jeopardy, or lost."""
        if path in self._lost:
            return True
        lease = self._held.get(path)
        return lease is not None and not self.may_write(path)

    async def ensure(self, paths: Sequence[str]) -> None:
        """Hold leases on all ``paths``, or raise `LeaseRefused` saying why not."""
        while True:
            missing = [p for p in dict.fromkeys(paths) if not self._usable(p)]
            if not missing:
                break
            busy = [self._busy_event(p) for p in missing]
            if waits := [e for e in busy if e is not None]:
                await waits[0].wait()  # someone is acquiring or releasing it: look again after
                continue
            await self._acquire(missing)
        now = trio.current_time()
        for path in paths:
            self._held[path].last_used = now

    def recall(self, path: str, token: int) -> None:
        """Someone waits for ``path``: give it back as soon as no write handle is open."""
        lease = self._held.get(path)
        if lease is not None and lease.token == token and lease.state is State.HELD:
            lease.recalled = True
            self._nudge_releaser(lease)
        elif lease is None or token > lease.token:
            # The event stream can bring the recall before the grant's answer is recorded;
            # dropped, it would leave the waiter waiting for as long as we keep writing.
            self._early_recalls[path] = token

    def writer_closed(self, path: str) -> None:
        """A write handle on ``path`` was closed: the idle grace starts now."""
        lease = self._held.get(path)
        if lease is not None:
            lease.last_used = trio.current_time()
            self._nudge_releaser(lease)

    def _nudge_releaser(self, lease: HeldLease) -> None:
        """Wake the releaser if ``lease`` may go back before it would wake by itself.

        An idle grace that starts now ends after every one already running, so a close or a
        grant needs no wake while the releaser sleeps towards an earlier one. Waking it for
        each made every new file cost a pass over all held leases: quadratic in a big write.
        """
        if lease.recalled or trio.current_time() + self.options.idle_grace_s < self._release_at:
            self._wake_releaser.set()

    def _usable(self, path: str) -> bool:
        """Held and safe to write; a lease in jeopardy is confirmed again by a new acquire."""
        return self.may_write(path)

    def _busy_event(self, path: str) -> trio.Event | None:
        if path in self._acquiring:
            return self._acquiring[path]
        lease = self._held.get(path)
        if lease is not None and lease.state is State.RELEASING:
            return lease.released
        return None

    def is_acquiring(self, path: str) -> bool:
        return path in self._acquiring

    async def _acquire(self, paths: list[str]) -> None:
        done = trio.Event()
        for path in paths:
            self._acquiring[path] = done
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
                )
            except LeaseHeld as exc:
                raise LeaseRefused(str(exc), errno=errno.EBUSY) from exc
            except Forbidden as exc:
                raise LeaseRefused(str(exc), errno=errno.EACCES) from exc
            except TooManyLeases as exc:
                raise LeaseRefused(str(exc), errno=errno.EDQUOT) from exc
            except RateLimited as exc:
                raise LeaseRefused(str(exc), errno=errno.EAGAIN) from exc
            except CoordinatorUnavailable as exc:
                self.reachable = False
                raise LeaseRefused(
                    f"cannot reach the coordinator, so no new lease: {exc}", errno=errno.ENOLCK
                ) from exc
            except LeasefsError as exc:
                raise LeaseRefused(f"lease refused: {exc}", errno=errno.EIO) from exc
            self.reachable = True
            self._extend_deadline(sent_at)
            try:
                for lease in grant.leases:
                    await self._take(lease, grant.versions.get(lease.path))
            except (LeasefsError, OSError) as exc:
                await self._give_back_unrecorded(grant.leases)
                raise LeaseRefused(
                    f"granted, but the latest content could not be brought in: {exc}",
                    errno=errno.ENOLCK if isinstance(exc, CoordinatorUnavailable) else errno.EIO,
                ) from exc
            for lease in grant.leases:
                if (held := self._held.get(lease.path)) is not None:
                    self._nudge_releaser(held)
            granted = True
        finally:
            for path in paths:
                self._acquiring.pop(path, None)
            done.set()
            with trio.CancelScope(shield=True):
                try:
                    await self._applier.settle_deferred(paths, granted=granted)
                except (LeasefsError, OSError) as exc:
                    log.warning("could not catch up with %s: %s", ", ".join(paths), exc)

    async def _local_state(self, path: str) -> _backing.FileState | None:
        """What the file holds before the lease's first change; for a path with no file yet
        (every file created under a new lease) without a trip to a worker thread."""
        try:
            os.stat(path, dir_fd=self._root_fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return await trio.to_thread.run_sync(_backing.read_state, self._root_fd, path)

    async def _take(self, lease: Lease, version: Version | None) -> None:
        """Record a granted lease, first bringing in the version the grant carries."""
        kept = self._held.get(lease.path)
        if kept is not None and kept.token == lease.token:
            kept.expires_at = lease.expires_at  # confirmed again: same lease, same base
            return
        async with self._applier.lock_for(lease.path):
            if version is not None:
                # A waiter continues on top of the holder's content, never beside it.
                await self._applier.apply_for_waiter(version)
            local = await self._local_state(lease.path)
        self._lost.discard(lease.path)
        self._held[lease.path] = HeldLease(
            path=lease.path,
            token=lease.token,
            base_hash=local.hash if local else None,
            acquired_at=lease.acquired_at,
            expires_at=lease.expires_at,
            last_used=trio.current_time(),
            recalled=self._early_recalls.pop(lease.path, None) == lease.token,
        )

    async def _give_back_unrecorded(self, leases: list[Lease]) -> None:
        """Return granted leases whose content could not be brought in: writing on top of
        the old content would bury the newer version. Unreachable, they run out by TTL."""
        unrecorded = [
            lease
            for lease in leases
            if (held := self._held.get(lease.path)) is None or held.token != lease.token
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

    def _extend_deadline(self, sent_at: float) -> None:
        self._deadline = max(self._deadline, sent_at + self.options.ttl_s - self.options.margin_s)

    # -- background work --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._renew_forever)
            nursery.start_soon(self._release_idle_forever)
            task_status.started()

    async def _renew_forever(self) -> None:
        while True:
            await trio.sleep(self.options.renew_every_s)
            if not self._held:
                continue
            sent_at = trio.current_time()
            try:
                result = await self._client.renew()
            except CoordinatorUnavailable as exc:
                self.reachable = False
                log.warning("renewal failed, coordinator unreachable: %s", exc)
                continue
            except LeasefsError as exc:
                log.error("renewal refused: %s", exc)
                continue
            self.reachable = True
            self._extend_deadline(sent_at)
            self._forget_lost(result.leases)

    def _forget_lost(self, renewed: list[Lease]) -> None:
        live = {(lease.path, lease.token) for lease in renewed}
        for path, held in list(self._held.items()):
            if held.state is State.HELD and (path, held.token) not in live:
                log.error("lease on %s was lost (expired on the coordinator)", path)
                self._held.pop(path)
                self._lost.add(path)
                held.released.set()

    async def _release_idle_forever(self) -> None:
        while True:
            now = trio.current_time()
            idle = [
                h
                for h in self._held.values()
                if h.state is State.HELD
                and self._open_writers(h.path) == 0
                and (h.recalled or now - h.last_used >= self.options.idle_grace_s)
            ]
            if idle:
                await self.release([h.path for h in idle])
                continue
            waiting = [
                h.last_used + self.options.idle_grace_s
                for h in self._held.values()
                if h.state is State.HELD and self._open_writers(h.path) == 0
            ]
            self._release_at = min(waiting, default=math.inf)
            self._wake_releaser = trio.Event()
            with trio.move_on_at(self._release_at):
                await self._wake_releaser.wait()
            # Awake: no nudge needed, it looks at every lease again before it sleeps.
            self._release_at = -math.inf

    async def release(self, paths: Sequence[str] | None = None) -> list[str]:
        """Snapshot and release ``paths`` (all held ones if None) now; returns those released.

        Snapshots are taken a few at a time, then every lease goes back in one request. A path
        whose release could not reach the coordinator stays held and is tried again after the
        idle grace; one whose lease was lost meanwhile is dropped (its file stays).
        """
        chosen = [
            h for h in self.held() if h.state is State.HELD and (paths is None or h.path in paths)
        ]
        for lease in chosen:
            lease.state = State.RELEASING
        outcomes = dict.fromkeys((lease.path for lease in chosen), _Release.RETRY)
        self.pending_snapshots += len(chosen)
        try:
            limiter = trio.CapacityLimiter(_PARALLEL_SNAPSHOTS)
            taken: list[_Snapshot] = []

            async def snapshot(lease: HeldLease) -> None:
                async with limiter:
                    outcomes[lease.path], new = await self._take_snapshot(lease)
                    if new is not None:
                        taken.append(new)

            async with trio.open_nursery() as nursery:
                for lease in chosen:
                    nursery.start_soon(snapshot, lease)
            for batch in _batches(taken):
                outcomes.update(await self._record(batch))
            ready = [lease for lease in chosen if outcomes[lease.path] is _Release.DONE]
            outcomes.update(await self._give_back(ready))
        finally:
            self.pending_snapshots -= len(chosen)
            for lease in chosen:
                if outcomes[lease.path] is _Release.RETRY:
                    lease.state = State.HELD
                    lease.last_used = trio.current_time()
                    lease.recalled = False  # retry after the grace, not in a tight loop
                    self._nudge_releaser(lease)
                elif self._held.get(lease.path) is lease:
                    del self._held[lease.path]
                old_event, lease.released = lease.released, trio.Event()
                old_event.set()
        return [lease.path for lease in chosen if outcomes[lease.path] is _Release.DONE]

    async def _give_back(self, leases: list[HeldLease]) -> dict[str, _Release]:
        """Release in one request; if one lease is stale, one by one (the rest still go back)."""
        if not leases:
            return {}
        if len(leases) > _RELEASE_BATCH:  # the coordinator takes up to 1,000 per request
            results: dict[str, _Release] = {}
            for start in range(0, len(leases), _RELEASE_BATCH):
                results.update(await self._give_back(leases[start : start + _RELEASE_BATCH]))
            return results
        refs = [LeaseRef(path=lease.path, token=lease.token) for lease in leases]
        try:
            await self._client.release(refs)
            return dict.fromkeys((r.path for r in refs), _Release.DONE)
        except StaleToken:
            if len(refs) == 1:
                log.error("lease on %s was lost before it was given back", refs[0].path)
                return {refs[0].path: _Release.LOST}
        except CoordinatorUnavailable as exc:
            self.reachable = False
            log.warning("could not release %d lease(s) yet (will retry): %s", len(refs), exc)
            return dict.fromkeys((r.path for r in refs), _Release.RETRY)
        except LeasefsError as exc:
            log.error("could not release %d lease(s) (will retry): %s", len(refs), exc)
            return dict.fromkeys((r.path for r in refs), _Release.RETRY)
        one_by_one: dict[str, _Release] = {}
        for lease in leases:
            one_by_one.update(await self._give_back([lease]))
        return one_by_one

    async def _take_snapshot(self, lease: HeldLease) -> tuple[_Release, _Snapshot | None]:
        """The lease's content as a version to record, if it changed since the lease was
        taken; a large content is uploaded here, a small one goes inline with the version."""
        try:
            local = await trio.to_thread.run_sync(
                partial(_backing.read_state, keep_up_to=SMALL_BLOB_BYTES),
                self._root_fd,
                lease.path,
            )
            local_hash = local.hash if local else None
            if local_hash == lease.base_hash:
                return _Release.DONE, None
            if local is not None and local.content is None:
                await self._upload(lease.path)
            version = VersionCreate(
                path=lease.path,
                hash=local_hash,
                deleted=local is None,
                base_hash=lease.base_hash,
                token=lease.token,
                branch=self.options.branch,
                mode=local.mode if local else None,
            )
            return _Release.RETRY, _Snapshot(version, local.content if local else None)
        except CoordinatorUnavailable as exc:
            self.reachable = False
            log.warning("could not snapshot %s yet (will retry): %s", lease.path, exc)
        except PayloadTooLarge as exc:
            return _too_large(lease.path, exc), None
        except LeasefsError as exc:
            log.error("could not snapshot %s (will retry): %s", lease.path, exc)
        return _Release.RETRY, None

    async def _record(self, snapshots: list[_Snapshot]) -> dict[str, _Release]:
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
                return {paths[0]: _Release.LOST}
        except PayloadTooLarge as exc:
            if len(snapshots) == 1:
                return {paths[0]: _too_large(paths[0], exc)}
        except CoordinatorUnavailable as exc:
            self.reachable = False
            log.warning("could not record %d snapshot(s) yet (will retry): %s", len(paths), exc)
            return dict.fromkeys(paths, _Release.RETRY)
        except LeasefsError as exc:
            log.error("could not record %d snapshot(s) (will retry): %s", len(paths), exc)
            return dict.fromkeys(paths, _Release.RETRY)
        else:
            for version in created:
                self._applier.saw(version)
            return dict.fromkeys(paths, _Release.DONE)
        one_by_one: dict[str, _Release] = {}
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


def _too_large(path: str, exc: PayloadTooLarge) -> _Release:
    """Retrying cannot help and would hold the lease forever: release without a version."""
    log.error(
        "%s was released without a snapshot, so the team does not get it (the local file is "
        "kept): %s",
        path,
        exc,
    )
    return _Release.DONE


class _Release(StrEnum):
    DONE = "done"
    LOST = "lost"
    RETRY = "retry"
