"""Waking the event streams of a workspace when its events grew.

Events live in the store; this only says "look again". A stream takes `signal` *before*
reading, so an event committed between its read and its wait is never slept through.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio


class EventSignals:
    def __init__(self) -> None:
        self._signals: dict[int, trio.Event] = {}

    def signal(self, workspace_id: int) -> trio.Event:
        """An event that is set once the workspace's stream has grown."""
        event = self._signals.get(workspace_id)
        if event is None:
            event = self._signals[workspace_id] = trio.Event()
        return event

    def notify(self, workspace_ids: Iterable[int]) -> None:
        for workspace_id in workspace_ids:
            event = self._signals.pop(workspace_id, None)
            if event is not None:
                event.set()
