"""What every part of the coordinator above the store is built from."""

from __future__ import annotations

import time
from collections.abc import Callable

from ._signals import EventSignals
from .store import Store


class StoreComponent:
    """A part of the coordinator over the store: membership, work, knowledge, messages, zones,
    the journal.

    ``signals`` wakes event streams after a change; ``clock`` is injectable for tests.
    """

    def __init__(
        self, store: Store, signals: EventSignals, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._signals = signals
        self._clock = clock
