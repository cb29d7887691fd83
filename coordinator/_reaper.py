"""When to expire leases: one background task that sleeps until the earliest expiry.

Polling would either waste the store's time or let a lease outlive its TTL by a polling
interval; instead the reaper reads the earliest expiry, sleeps until then, and is woken
early only when a grant or renewal moves that moment earlier (`announce`). What expiring
means, and who is served next, is the lease service's (`coordinator._leasing`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio

from .store import Store

MAX_SLEEP_S = 60.0


class Reaper:
    """Calls ``expire_due`` whenever a lease in ``store`` may have run out."""

    def __init__(
        self,
        store: Store,
        expire_due: Callable[[], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._expire_due = expire_due
        self._clock = clock
        self._wake = trio.Event()
        self._due = -math.inf  # when the reaper will look next; -inf while it reads
        self._announced = math.inf  # earliest expiry granted while the reaper read

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Expire leases when their TTL runs out, until cancelled.

        It sleeps until the earliest expiry in the store; a grant or renewal wakes it only if
        it moves that moment earlier (`announce`), not on every lease change.
        """
        task_status.started()
        while True:
            self._due = -math.inf  # while reading, only collect announced expiries
            self._announced = math.inf
            next_expiry = await self._store.read(lambda tx: tx.next_expiry())
            now = self._clock()
            due = min(
                now + MAX_SLEEP_S,
                math.inf if next_expiry is None else next_expiry,
                self._announced,
            )
            if due <= now:
                await self._expire_due()
                continue
            self._wake = trio.Event()
            self._due = due
            with trio.move_on_after(due - now):
                await self._wake.wait()

    def announce(self, expires_at: float) -> None:
        """A lease now runs out at ``expires_at``: wake the reaper if that is sooner than it
        planned to look."""
        self._announced = min(self._announced, expires_at)
        if expires_at < self._due:
            self._wake.set()
