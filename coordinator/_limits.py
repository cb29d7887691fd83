"""What one agent may ask of the coordinator, and the request-rate buckets that enforce it.

Limits keep one runaway or hostile client from filling the disk or taking the whole server:
each is answered with a clear error naming the limit and the flag that sets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from leasefs.wire import (
    BREAK_TIMEOUT_S,
    MAX_BLOB_BYTES,
    MAX_JSON_BYTES,
    MAX_LEASES_PER_AGENT,
    RATE_LIMIT_PER_S,
)


@dataclass(frozen=True)
class Limits:
    max_blob_bytes: int = MAX_BLOB_BYTES
    max_json_bytes: int = MAX_JSON_BYTES
    max_leases_per_agent: int = MAX_LEASES_PER_AGENT
    # Requests per second per agent (per client address before it has a token); bursts of
    # twice that pass. Zero turns the limit off.
    rate_per_s: float = RATE_LIMIT_PER_S
    # A holder that keeps a recalled lease this long loses it (DESIGN: break timeout).
    break_timeout_s: float = BREAK_TIMEOUT_S

    @property
    def rate_burst(self) -> float:
        return 2 * self.rate_per_s


class RateLimiter:
    """Token buckets, one per key: a request spends a token, tokens come back at ``rate_per_s``
    up to ``burst``. Idle full buckets are forgotten, so keys cannot grow memory without end."""

    _PRUNE_AT = 10_000

    def __init__(
        self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def admit(self, key: Hashable) -> float | None:
        """None if the request may go; otherwise the seconds until it could."""
        if self.rate_per_s <= 0:
            return None
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._PRUNE_AT:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        refill_s = self.burst / self.rate_per_s
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill_s}
