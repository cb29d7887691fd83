"""Keep one broken connection from taking the coordinator down.

hypercorn 0.18's trio server closes a connection (``send_eof``) without the lock its
``send_all`` takes. When a peer goes away while an answer (say, an event on a stream) is
being sent, the send can fail with ``trio.BusyResourceError``, which hypercorn does not
catch: it leaves the connection's task, then ``trio.serve_listeners``, and the whole server
exits. Seen under the randomized partition test. Here a failed send is a closed connection,
and anything else a connection's task raises is logged and ends that connection only.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.events import Closed, Event
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("leasefs.coordinator")


class ContainedTCPServer(TCPServer):
    """hypercorn's connection handler, with its failures kept to the one connection."""

    async def run(self) -> None:
        try:
            await super().run()
        except Exception:
            log.exception("a connection failed; closed it, the server goes on")

    async def protocol_send(self, event: Event) -> None:
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:  # the connection is being closed under the send
            await self.protocol.handle(Closed())


def contain_connection_failures() -> None:
    """Make hypercorn's trio worker use `ContainedTCPServer` (call before serving)."""
    hypercorn_run.TCPServer = ContainedTCPServer  # type: ignore[attr-defined]
