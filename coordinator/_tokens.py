"""Which agent a bearer token belongs to, remembered between requests.

Every call but registration names its agent by token; reading the agents table for each one
cost a worker-thread round trip (about a fifth of a millisecond here) per request. An agent's
row changes once, when it leaves, and `forget` runs in that same transaction's wake, so a
remembered row is never trusted after its agent left through this coordinator. A generation
count keeps a lookup that raced a leave from remembering the old row, and entries expire after
`MAX_AGE_S` so a row changed behind our back (another process on the same store) is re-read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .store import AgentRow

MAX_AGE_S = 10.0
MAX_ENTRIES = 10_000


class TokenCache:
    """Agents by token hash, for at most `MAX_AGE_S` seconds each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rows: dict[str, tuple[AgentRow, float]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take this before reading a row from the store; hand it back to `remember`."""
        return self._generation

    def get(self, token_hash: str) -> AgentRow | None:
        entry = self._rows.get(token_hash)
        if entry is None:
            return None
        row, stored_at = entry
        if self._clock() - stored_at > MAX_AGE_S:
            del self._rows[token_hash]
            return None
        return row

    def remember(self, token_hash: str, row: AgentRow, generation: int) -> None:
        """Keep ``row`` unless an agent left since ``generation`` was taken."""
        if generation != self._generation or row.left_at is not None:
            return
        if len(self._rows) >= MAX_ENTRIES:
            self._rows.clear()
        self._rows[token_hash] = (row, self._clock())

    def forget(self, agent_id: int) -> None:
        """Drop every entry of an agent that left (rare: a scan is fine)."""
        self._generation += 1
        for token_hash in [h for h, (row, _) in self._rows.items() if row.id == agent_id]:
            del self._rows[token_hash]
