"""The leasefs coordinator: leases, snapshots, events and audit for a team of agents.

    _serve          run it: open the store, start the reaper, serve HTTP with hypercorn on trio
    _app, routes/   the HTTP API under /v1: one router per domain, every error rendered once
    _service        `Coordinator`, the front the routes call, composing the services below
    _membership     workspaces, agents and their tokens
    _leasing        acquire, renew, release, recall, expire: the lease lock and the wait line
    _grants         one grant attempt inside a store transaction; _reaper, when to expire
    _leases         the lease rules themselves, pure and property-tested: the only place they live
    _snapshots, _journal, _work, _knowledge, _messages, _briefing, _zones   the other services
    _backup         an online copy of the data folder (SQLite's backup API, blobs by hash)
    store/          the `Store` interface and its rows; SQLite behind it (migrations included)

The rest is shared plumbing: errors, limits, records (rows to wire models, audit and events
written with each change), event signals, the token cache, blob files, and HTTP guards.
From leasefs it imports only `leasefs.wire`, the API's models.
"""

from ._app import create_app as create_app
from ._backup import BackupError as BackupError
from ._backup import BackupReport as BackupReport
from ._backup import backup as backup
from ._limits import Limits as Limits
from ._serve import ServeOptions as ServeOptions
from ._serve import serve as serve
from ._service import Coordinator as Coordinator

__all__ = [
    "BackupError",
    "BackupReport",
    "Coordinator",
    "Limits",
    "ServeOptions",
    "backup",
    "create_app",
    "serve",
]
