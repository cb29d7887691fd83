"""Waiting for a state that other processes bring about: always bounded, always named."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.05


def wait_for(
    predicate: Callable[[], object],
    *,
    what: str,
    timeout: float = WAIT_TIMEOUT_S,
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Poll `predicate` until it is true; TimeoutError naming `what` after `timeout` seconds.

    An exception raised by `predicate` ends the wait at once and propagates.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)
