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
  `recall_quiet_s` and nothing holds it open for writing. A recall that arrives before its
  grant is recorded is kept until the grant is.
- **Open writers** are looked at again every `writer_poll_s` while they keep a recalled
  lease (their close may go unseen), every `idle_poll_s` while they keep an idle one; and,
  while more leases are about to go quiet, looked for at most every `idle_look_gap_s` for
  idle ones (`next_look`), so a burst of leases going quiet one after another is looked at,
  and given back, together (a lone quiet lease is looked at at once).
- **Folder leases**: a new folder's whole subtree, granted with its mkdir when nobody holds
  anything under it. A change under it needs no round trip: the file's lease is *adopted*
  (taken here, with the folder's fencing token), and follows the rules above, except that
  the folder goes back only after the last of its files. A recall of the folder *narrows*
  it: the coordinator swaps it for leases on exactly the files still held (the waiter then
  waits only if it wants one of those), and meanwhile none of its files goes back.
- **Lost**: a renewal answer without a lease (it expired, or the coordinator's break timeout
  stopped renewing a recalled lease whose holder never went quiet) drops it; the next change
  must acquire it again, and waits its turn behind whoever was waiting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum

from ..wire import IDLE_GRACE_S, LEASE_TTL_S, Lease, folders_above, is_folder


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
    folder: str | None = None  # adopted under this folder lease (whose token it carries)

    @property
    def is_folder(self) -> bool:
        return is_folder(self.path)


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
        self._children: dict[str, set[str]] = {}  # folder key -> the files adopted under it
        self.retired = False  # the coordinator no longer takes this agent (revoked, or left)

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

    def covering_folder(self, path: str, now: float) -> MountLease | None:
        """The folder lease under which a change to ``path`` may be adopted now, if any."""
        if not self._children or self.in_jeopardy(now):
            return None
        for key in folders_above(path):
            folder = self._held.get(key)
            if folder is not None and folder.phase is Phase.HELD:
                return folder
        return None

    def children(self, key: str) -> list[MountLease]:
        """The files adopted under folder ``key`` and not given back yet."""
        return [self._held[p] for p in sorted(self._children.get(key, ()))]

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
        if self.retired:
            return
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
        if held.is_folder:
            self._children.setdefault(held.path, set())
        return self._wakes(held, now)

    def adopt(self, path: str, base_hash: str | None, now: float) -> bool | None:
        """Take ``path``'s lease under the folder lease covering it, without a round trip.
        None if no folder covers it now (it must be acquired); else whether the releaser must
        wake for it."""
        folder = self.covering_folder(path, now)
        if folder is None:
            return None
        self._lost.discard(path)
        held = MountLease(
            path=path,
            token=folder.token,
            base_hash=base_hash,
            acquired_at=folder.acquired_at,
            expires_at=folder.expires_at,
            last_used=now,
            folder=folder.path,
        )
        self._held[path] = held
        self._children[folder.path].add(path)
        folder.last_used = now
        return self._wakes(held, now)

    def confirmed(self, lease: Lease) -> None:
        """An acquire of a path already held under the same token: only the expiry moves."""
        self._held[lease.path].expires_at = lease.expires_at

    def used(self, paths: Iterable[str], now: float) -> None:
        """A change to ``paths`` was admitted: each one's quiet period starts again."""
        for path in paths:
            lease = self._held[path]
            lease.last_used = now
            if lease.folder is not None and (folder := self._held.get(lease.folder)):
                folder.last_used = now  # a folder goes back no sooner than its files

    # -- what others tell us -----------------------------------------------------------------

    def renewed(self, sent_at: float, live: Iterable[tuple[str, int]]) -> list[str]:
        """A renewal sent at ``sent_at`` answered with the ``(path, token)`` pairs still held.
        Every held lease it does not name is lost; returns those paths."""
        self.answered(sent_at)
        alive = set(live)
        lost = [
            path
            for path, lease in self._held.items()
            if lease.phase is Phase.HELD
            and (path, lease.token) not in alive
            and (lease.folder, lease.token) not in alive
        ]
        for path in lost:
            if path in self._held:  # a folder's files may have gone with it already
                self._drop(self._held[path])
            self._lost.add(path)
        return lost

    def _drop(self, lease: MountLease) -> None:
        del self._held[lease.path]
        if lease.folder is not None and lease.folder in self._children:
            self._children[lease.folder].discard(lease.path)
        for child in self._children.pop(lease.path, ()):  # a folder's files go with it
            if (held := self._held.get(child)) is not None and held.folder == lease.path:
                held.folder = None
                if held.phase is Phase.HELD:
                    del self._held[child]
                    self._lost.add(child)

    def retire(self) -> list[str]:
        """The coordinator refused this agent (revoked, or it left): every lease is lost, and
        no change is admitted again (fail closed). Returns the paths that were held."""
        self.retired = True
        self._deadline = -math.inf
        lost = sorted(self._held)
        self._lost.update(p for p in lost if not is_folder(p))
        self._held.clear()
        self._children.clear()
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

    def rebase(self, path: str, base_hash: str | None) -> None:
        """``path``'s content is what git just checked out, not an edit: it is the lease's
        base from now on (given back without a version unless changed again)."""
        lease = self._held.get(path)
        if lease is not None and not lease.is_folder:
            lease.base_hash = base_hash

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
        the ones to find out about before asking `due`. None of a folder's files while the
        folder is being narrowed (the narrowing names the files still held)."""
        return [
            lease.path
            for lease in self.leases()
            if lease.phase is Phase.HELD
            and now >= self._quiet_until(lease)
            and not self._narrowing(lease)
        ]

    def _narrowing(self, lease: MountLease) -> bool:
        folder = self._held.get(lease.folder) if lease.folder is not None else None
        return folder is not None and folder.phase is Phase.RELEASING

    def next_look(self, quiet: Sequence[str], last_look: float, now: float) -> float:
        """When open writers may be looked for again, the last look being at `last_look`:
        soon for a recalled lease (someone waits); for idle ones after a gap while more
        leases are about to go quiet (a burst: gathered into one look), else now (a lone
        lease waits for nothing)."""
        recalled = any((held := self._held.get(p)) is not None and held.recalled for p in quiet)
        if recalled:
            return last_look + self.timing.writer_poll_s
        gap = self.timing.idle_look_gap_s
        waiting = set(quiet)
        burst = any(
            lease.phase is Phase.HELD
            and lease.path not in waiting
            and self._quiet_until(lease) <= now + gap
            for lease in self._held.values()
        )
        return last_look + gap if burst else min(now, last_look + gap)

    def due(self, now: float, writing: Set[str]) -> list[str]:
        """Leases to give back now: quiet for long enough, and not open for writing; a folder
        only once every file adopted under it goes back too (and after them)."""
        quiet = self.quiet(now)
        files = [path for path in quiet if not is_folder(path) and path not in writing]
        going = set(files)
        folders = [p for p in quiet if is_folder(p) and self._children.get(p, set()) <= going]
        return files + folders

    def sleeping(self, now: float, writing: Set[str]) -> float:
        """The releaser found nothing due and sleeps: until when (``math.inf``: until woken).

        Until the first quiet period to end; and while open writers keep leases that are
        quiet otherwise, no longer than until it is time to look at those writers again. A
        folder with files adopted under it waits for them (their going back wakes the
        releaser, which then looks at the folder again).
        """
        wake = math.inf
        for lease in self._held.values():
            if lease.phase is not Phase.HELD or self._children.get(lease.path):
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
        chosen.sort(key=lambda lease: lease.is_folder)  # a folder after the files under it
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
            self._drop(lease)

    # -- narrowing a folder lease ------------------------------------------------------------

    def start_narrowing(self, key: str, token: int) -> bool:
        """Someone wants a file under folder ``key``: stop adopting under it and stop giving
        back its files, until `narrowed` or `narrow_failed`. False if it is not held now."""
        folder = self._held.get(key)
        if folder is None or folder.token != token or folder.phase is not Phase.HELD:
            return False
        folder.phase = Phase.RELEASING
        return True

    def to_keep(self, key: str) -> list[str]:
        """The files the narrowing of ``key`` keeps: every one adopted under it still held."""
        return [lease.path for lease in self.children(key) if lease.phase is Phase.HELD]

    def narrowed(self, key: str, kept: Iterable[Lease]) -> list[str]:
        """The coordinator swapped the folder for leases on ``kept``: those files are held
        under their own leases now. Returns the files it did not keep (lost)."""
        folder = self._held.get(key)
        if folder is None:
            return []
        expiry = {lease.path: lease.expires_at for lease in kept}
        lost = []
        for child in self.children(key):
            if child.path in expiry:
                child.folder = None
                child.expires_at = expiry[child.path]
                self._children[key].discard(child.path)
            else:
                lost.append(child.path)
        self._drop(folder)
        self._lost.update(lost)
        return lost

    def narrow_failed(self, key: str) -> None:
        """The narrowing could not reach the coordinator: the folder is held again (its
        break timeout bounds how long the waiter waits if it never can)."""
        folder = self._held.get(key)
        if folder is not None and folder.phase is Phase.RELEASING:
            folder.phase = Phase.HELD
