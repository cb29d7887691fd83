"""Reading a bounded number of events from a stream, with a timeout."""

from __future__ import annotations

import trio

from leasefs import Client
from leasefs.wire import Event


async def take_events(
    client: Client, count: int, after: int | None = None, within_s: float = 10
) -> list[Event]:
    events: list[Event] = []
    with trio.fail_after(within_s):
        async with client.open_events(after=after) as stream:
            async for event in stream:
                events.append(event)
                if len(events) == count:
                    break
    return events
