"""Follow the workspace's event stream and apply other agents' versions as they are made.

The stream is resumed from the last event id seen after any cut, so no version is missed;
the id is also saved to disk, so a remount catches up with what happened while unmounted.
It is saved at once after an event that changed a file here; after any other event (leases
taken and given back, our own versions: most of the stream) only every few seconds and on the
way out, since replaying those after a crash changes nothing. Saving after each of them was a
tenth of the mount's CPU time while it created files under new leases.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .._client import Client, LeasefsError
from ..wire import EventType, Version
from ._applier import Applier, Outcome

log = logging.getLogger("leasefs.mount")

_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_LAZY_SAVE_S = 5.0
_CHANGED_HERE = (Outcome.APPLIED, Outcome.CONFLICT)


@dataclass(frozen=True)
class FollowerStatistics:
    connected: bool  # following the event stream now (else reconnecting)


class Follower:
    def __init__(
        self,
        client: Client,
        applier: Applier,
        cursor_file: Path | None,
        on_recall: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_recall(path, token)``: another agent waits for a lease this agent holds."""
        self._client = client
        self._applier = applier
        self._cursor_file = cursor_file
        self.last_id: int | None = None
        self._saved_id: int | None = None
        self._saving = trio.Lock()  # one writer of the cursor file at a time
        self._connected = False
        self.caught_up = trio.Event()
        self._on_recall = on_recall

    def statistics(self) -> FollowerStatistics:
        return FollowerStatistics(connected=self._connected)

    def _saved_cursor(self) -> int | None:
        if self._cursor_file is None:
            return None
        try:
            return int(self._cursor_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _save_cursor(self) -> None:
        if self._cursor_file is None or self.last_id is None:
            return
        self._cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cursor_file.with_name(self._cursor_file.name + ".tmp")
        last_id = self.last_id
        tmp.write_text(str(last_id))
        os.replace(tmp, self._cursor_file)
        self._saved_id = last_id

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow forever; ``started`` once the position in the stream is known."""
        self.last_id = self._saved_id = self._saved_cursor()
        if self.last_id is None:
            self.last_id = await self._client.events_head()
            self._save_cursor()
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._save_lazily)
                await self._follow_forever()
        finally:
            if self._saved_id != self.last_id:
                try:
                    self._save_cursor()  # on the way out: quick, and nothing else to wait for
                except OSError as exc:
                    log.warning("could not save the event cursor: %s", exc)

    async def _save_lazily(self) -> None:
        while True:
            await trio.sleep(_LAZY_SAVE_S)
            if self._saved_id != self.last_id:
                try:
                    await self._save_in_thread()
                except OSError as exc:
                    log.warning("could not save the event cursor: %s", exc)

    async def _save_in_thread(self) -> None:
        async with self._saving:
            await trio.to_thread.run_sync(self._save_cursor)

    async def _follow_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow_once()
            except LeasefsError as exc:
                self._connected = False
                delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.warning("event stream lost (%s); resuming in %.1f s", exc, delay)
                await trio.sleep(delay)
            else:
                failures = 0

    async def _follow_once(self) -> None:
        head = await self._client.events_head()
        if self.last_id is not None and self.last_id >= head:
            self.caught_up.set()
        async with self._client.open_events(after=self.last_id) as events:
            self._connected = True
            async for event in events:
                if (
                    event.type == EventType.LEASE_RECALLED
                    and self._on_recall is not None
                    and event.path
                    and self._applier.is_local(event.data.get("holder_id"))
                ):
                    self._on_recall(event.path, int(event.data["token"]))
                outcome = None
                if event.type == EventType.VERSION_CREATED:
                    version = Version.model_validate(event.data)
                    try:
                        outcome = await self._applier.apply(version)
                    except OSError as exc:
                        log.error("could not apply %s v%d: %s", version.path, version.id, exc)
                self.last_id = event.id
                if event.id >= head:
                    self.caught_up.set()
                if outcome in _CHANGED_HERE:
                    await self._save_in_thread()
