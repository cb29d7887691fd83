"""Run the coordinator: open the store, start the reaper, serve HTTP with hypercorn on trio."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from leasefs.wire import is_loopback_host

from ._admission import ADMIN_SECRET_FILE, Admission, load_admin_secret
from ._app import create_app
from ._backup import DATABASE_FILE
from ._blobs import BlobFiles
from ._hypercorn_guard import contain_connection_failures
from ._limits import Limits
from ._service import Coordinator
from .store import SqliteStore

log = logging.getLogger("leasefs.coordinator")

# A store call ends in a worker thread that needs the GIL back from the trio thread; under
# load that thread holds it until the switch interval (5 ms by default) runs out, and the lease
# lock waits with it. Measured with 100 agents: 135 lease cycles/s at 5 ms, 242 at 0.5 ms.
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 7420
    limits: Limits = field(default_factory=Limits)
    # TLS: both or neither. With them the coordinator serves https only.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Admit every local agent (None: when listening on loopback only), or by invitation.
    open_admission: bool | None = None

    @property
    def admits_openly(self) -> bool:
        if self.open_admission is not None:
            return self.open_admission
        return is_loopback_host(self.host)


async def serve(options: ServeOptions, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready`` gets the URL once the port is bound."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    admission = Admission()
    if not options.admits_openly:
        secret_hash, made = load_admin_secret(options.data_dir)
        admission = Admission(open=False, admin_secret_hash=secret_hash)
        if made is not None:
            print(
                f"leasefs coordinator admin secret (shown once; kept in "
                f"{options.data_dir / ADMIN_SECRET_FILE}): {made}",
                flush=True,
            )
        log.info("admission by invitation: creating a workspace needs the admin secret")
    store = SqliteStore(options.data_dir / DATABASE_FILE)
    try:
        coordinator = Coordinator(
            store,
            BlobFiles(options.data_dir / "blobs"),
            options.limits,
            admission=admission,
        )
        contain_connection_failures()
        config = Config()
        config.bind = [f"{options.host}:{options.port}"]
        config.accesslog = None
        config.errorlog = log
        config.keep_alive_timeout = 75
        config.graceful_timeout = 3
        if options.tls_cert is not None and options.tls_key is not None:
            config.certfile = str(options.tls_cert)
            config.keyfile = str(options.tls_key)
        app = create_app(coordinator)
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(coordinator.run_reaper)
            nursery.start_soon(_wait_for_signal, shutdown)
            async with trio.open_nursery() as http:
                binds = await http.start(
                    # hypercorn's ASGI type is narrower than Starlette's; they do fit at run time.
                    partial(hypercorn_serve, app, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
                )
                if on_ready is not None:
                    on_ready(binds[0])
            # hypercorn has finished its graceful shutdown: stop the reaper too.
            nursery.cancel_scope.cancel()
    finally:
        store.close()


async def _wait_for_signal(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return
