"""The rules of the mount's leases, with no I/O: when a write may go ahead, when a lease goes
back, what a renewal or a recall changes.

Every method is one event (a grant, a renewal's answer, a recall, a change made, a write
handle closed, a release that failed) or one question, and takes the time as ``now`` (trio's
clock, which tests replace with `trio.testing.MockClock`). What the keeper must do next comes
back as the answer: whether to wake the releaser, which leases are due to go back, which were
lost.

A lease lives from the first change to its path until the path has been quiet for long
enough; no close of a file need ever be seen (the kernel tells of none when files are opened
without handles). *Open for writing* is a set of paths the keeper finds out when it matters
(from the handle table, or from which processes hold the file open for writing).

- **Jeopardy** (as Chubby's clients do): each acquire's or renewal's *send* time plus the TTL,
  less a margin, is the deadline. Past it no change is admitted, because the coordinator may
  already have given the path to someone else (fail closed).
- **Idle grace**: a lease goes back once its path saw no change for the grace and nothing
  holds it open for writing.
- **Recall**: another agent waits; the lease goes back once the path was quiet for the short
  `recall_quiet_s` and nothing holds it open for writing. A recall that arrives before its grant is recorded is kept until the grant is.
- **Open writers** are looked at again every `writer_poll_s` while they keep a recalled
  lease (their close may go unseen), every `idle_poll_s` while they keep an idle one; and
  looked for at most every `idle_look_gap_s` for idle leases (`next_look`), so a burst of
  leases going quiet one after another is looked at, and given back, together.
- **Lost**: a renewal answer without a lease (it expired, or the coordinator's break timeout
  stopped renewing a recalled lease whose holder never went quiet) drops it; the next change
  must acquire it again, and waits its turn behind whoever was waiting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum

from ..wire import IDLE_GRACE_S, LEASE_TTL_S, Lease


class Phase(StrEnum):
    HELD = "held"
    RELEASING = "releasing"


@dataclass
class MountLease:
    """One lease this mount holds, as the mount sees it."""

    path: str
    token: int
    base_hash: str | None  # the local content when the lease was taken; None: no file
    acquired_at: float  # wall clock, from the coordinator
    expires_at: float  # wall clock, from the coordinator
    last_used: float  # trio clock: the last change admitted to the path
    phase: Phase = Phase.HELD
    recalled: bool = False  # another agent waits: no idle grace


@dataclass(frozen=True)
class LeaseTiming:
    ttl_s: float = LEASE_TTL_S
    idle_grace_s: float = IDLE_GRACE_S
    # A save's writes come microseconds apart; a writer that keeps the file open is seen
    # open for writing. So this need only be short: a writer that appends every few
    # milliseconds, opening and closing the file each time, must not starve a waiter.
    recall_quiet_s: float = 0.01
    writer_poll_s: float = 0.05  # a recalled lease kept by an open writer: look again after
    idle_poll_s: float = 1.0  # an idle lease kept by an open writer: look again after
    # Looking for open writers reads all of /proc: while leases keep going quiet one after
    # another (a burst of new files), they are looked at together, at most this often.
    idle_look_gap_s: float = 0.5

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    @property
    def margin_s(self) -> float:
        """How long before a lease can run out writes stop: at least a second, but never
        the whole TTL (a lease would then be in jeopardy as soon as granted)."""
        return min(max(1.0, self.ttl_s / 6), self.ttl_s / 2)


class MountLeases:
    """The mount's leases and the rules that decide them."""

    def __init__(self, timing: LeaseTiming) -> None:
        self.timing = timing
        self._held: dict[str, MountLease] = {}
        self._acquiring: set[str] = set()
        self._deadline = -math.inf  # trio clock; writes refused past it
        self._release_at = -math.inf  # trio clock; when the sleeping releaser wakes by itself
        self._lost: set[str] = set()  # leases that ran out under this mount
        self._early_recalls: dict[str, int] = {}  # path -> token recalled before recorded

    # -- questions ---------------------------------------------------------------------------

    def leases(self) -> list[MountLease]:
        return sorted(self._held.values(), key=lambda lease: lease.path)

    def get(self, path: str) -> MountLease | None:
        return self._held.get(path)

    def __bool__(self) -> bool:
        return bool(self._held)

    def in_jeopardy(self, now: float) -> bool:
        return now >= self._deadline

    def may_write(self, path: str, now: float) -> bool:
        """True if ``path`` is held and its lease cannot have run out on the coordinator."""
        lease = self._held.get(path)
        return lease is not None and lease.phase is Phase.HELD and not self.in_jeopardy(now)

    def was_lost(self, path: str) -> bool:
        """``path``'s lease ran out under this mount and was not taken again since."""
        return path in self._lost

    def is_acquiring(self, path: str) -> bool:
        return path in self._acquiring

    def is_current(self, path: str, token: int) -> bool:
        """``path`` is held under exactly this grant (a re-acquire confirmed it)."""
        lease = self._held.get(path)
        return lease is not None and lease.token == token

    # -- acquiring ---------------------------------------------------------------------------

    def acquire_started(self, paths: Iterable[str]) -> None:
        self._acquiring.update(paths)

    def acquire_ended(self, paths: Iterable[str]) -> None:
        self._acquiring.difference_update(paths)

    def answered(self, sent_at: float) -> None:
        """The coordinator answered a grant or renewal sent at ``sent_at``: every lease it
        named lives until at least then plus the TTL, so writes may go on until the margin."""
        self._deadline = max(self._deadline, sent_at + self.timing.ttl_s - self.timing.margin_s)

    def granted(self, lease: Lease, base_hash: str | None, now: float) -> bool:
        """A new grant is recorded; True if the releaser must wake for it (a recall came
        first, or its grace ends before the releaser would wake)."""
        self._lost.discard(lease.path)
        held = MountLease(
            path=lease.path,
            token=lease.token,
            base_hash=base_hash,
            acquired_at=lease.acquired_at,
            expires_at=lease.expires_at,
            last_used=now,
            recalled=self._early_recalls.pop(lease.path, None) == lease.token,
        )
        self._held[lease.path] = held
        return self._wakes(held, now)

    def confirmed(self, lease: Lease) -> None:
        """An acquire of a path already held under the same token: only the expiry moves."""
        self._held[lease.path].expires_at = lease.expires_at

    def used(self, paths: Iterable[str], now: float) -> None:
        """A change to ``paths`` was admitted: each one's quiet period starts again."""
        for path in paths:
            self._held[path].last_used = now

    # -- what others tell us -----------------------------------------------------------------

    def renewed(self, sent_at: float, live: Iterable[tuple[str, int]]) -> list[str]:
        """A renewal sent at ``sent_at`` answered with the ``(path, token)`` pairs still held.
        Every held lease it does not name is lost; returns those paths."""
        self.answered(sent_at)
        alive = set(live)
        lost = [
            path
            for path, lease in self._held.items()
            if lease.phase is Phase.HELD and (path, lease.token) not in alive
        ]
        for path in lost:
            del self._held[path]
            self._lost.add(path)
        return lost

    def recalled(self, path: str, token: int, now: float) -> bool:
        """Someone waits for ``path`` under grant ``token``; True if the releaser must wake."""
        lease = self._held.get(path)
        if lease is not None and lease.token == token and lease.phase is Phase.HELD:
            lease.recalled = True
            return True
        if lease is None or token > lease.token:
            # The event stream can bring the recall before the grant's answer is recorded;
            # dropped, it would leave the waiter waiting for as long as we keep writing.
            self._early_recalls[path] = token
        return False

    def writer_closed(self, path: str, now: float) -> bool:
        """A write handle on ``path`` closed (seen only with file handles): its grace starts
        now. True if the releaser must wake for it."""
        lease = self._held.get(path)
        if lease is None:
            return False
        lease.last_used = now
        return self._wakes(lease, now)

    def _wakes(self, lease: MountLease, now: float) -> bool:
        """Must the sleeping releaser wake for ``lease``?

        A grace that starts now ends after every one already running, so a close or a grant
        needs no wake while the releaser sleeps towards an earlier one. Waking it for each made
        every new file cost a pass over all held leases: quadratic in a big write.
        """
        return lease.recalled or self._quiet_until(lease) < self._release_at

    def _quiet_until(self, lease: MountLease) -> float:
        """When ``lease`` will have been quiet for long enough to go back."""
        wait = self.timing.recall_quiet_s if lease.recalled else self.timing.idle_grace_s
        return lease.last_used + wait

    # -- releasing ---------------------------------------------------------------------------

    def quiet(self, now: float) -> list[str]:
        """Leases quiet for long enough to go back, if nothing holds them open for writing:
        the ones to find out about before asking `due`."""
        return [
            lease.path
            for lease in self.leases()
            if lease.phase is Phase.HELD and now >= self._quiet_until(lease)
        ]

    def next_look(self, quiet: Sequence[str], last_look: float) -> float:
        """When open writers may be looked for again, the last look being at `last_look`:
        soon for a recalled lease (someone waits), after a gap for idle ones (gathered)."""
        recalled = any((held := self._held.get(p)) is not None and held.recalled for p in quiet)
        gap = self.timing.writer_poll_s if recalled else self.timing.idle_look_gap_s
        return last_look + gap

    def due(self, now: float, writing: Set[str]) -> list[str]:
        """Leases to give back now: quiet for long enough, and not open for writing."""
        return [path for path in self.quiet(now) if path not in writing]

    def sleeping(self, now: float, writing: Set[str]) -> float:
        """The releaser found nothing due and sleeps: until when (``math.inf``: until woken).

        Until the first quiet period to end; and while open writers keep leases that are
        quiet otherwise, no longer than until it is time to look at those writers again.
        """
        wake = math.inf
        for lease in self._held.values():
            if lease.phase is not Phase.HELD:
                continue
            at = self._quiet_until(lease)
            if at <= now and lease.path in writing:
                poll = self.timing.writer_poll_s if lease.recalled else self.timing.idle_poll_s
                at = now + poll
            wake = min(wake, at)
        self._release_at = wake
        return wake

    def awake(self) -> None:
        """The releaser woke: it looks at every lease again before it sleeps, so nothing needs
        to wake it meanwhile."""
        self._release_at = -math.inf

    def releasing(self, paths: Sequence[str] | None) -> list[MountLease]:
        """Start giving back ``paths`` (every held lease if None); the leases now releasing."""
        chosen = [
            lease
            for lease in self.leases()
            if lease.phase is Phase.HELD and (paths is None or lease.path in paths)
        ]
        for lease in chosen:
            lease.phase = Phase.RELEASING
        return chosen

    def release_failed(self, lease: MountLease, now: float) -> bool:
        """Could not give ``lease`` back yet: held again, tried after the grace (not in a
        tight loop, even if recalled). True if the releaser must wake for it."""
        lease.phase = Phase.HELD
        lease.last_used = now
        lease.recalled = False
        return self._wakes(lease, now)

    def released(self, lease: MountLease) -> None:
        """``lease`` went back (or was lost while it was being given back)."""
        if self._held.get(lease.path) is lease:
            del self._held[lease.path]
