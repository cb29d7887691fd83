"""Layer 1: the typed client, the one way our code talks to a coordinator or a running mount.

`Client` speaks HTTP to the coordinator: `_transport` is the plumbing and the one mapping of
errors, `_client` composes the calls, one mixin per domain (`_agents`, `_leases`,
`_snapshots`, `_events`, `_teamwork`, `_zones`), and `_hashing` hashes contents. The
exceptions are one hierarchy (`_exceptions`); `_acting` decides who a command acts as;
`_embedded` finds or starts the local coordinator; `_control` asks a mount daemon over its
socket. Imports `leasefs.wire` and `leasefs._config` only.
"""

from ._acting import Identity as Identity
from ._acting import acting_client as acting_client
from ._acting import resolve_identity as resolve_identity
from ._client import Client as Client
from ._control import ControlError as ControlError
from ._control import add_run_agent as add_run_agent
from ._control import end_run as end_run
from ._control import mount_status as mount_status
from ._control import release_now as release_now
from ._control import unmount_now as unmount_now
from ._embedded import resolve_coordinator_url as resolve_coordinator_url
from ._events import EventStream as EventStream
from ._exceptions import Conflict as Conflict
from ._exceptions import CoordinatorUnavailable as CoordinatorUnavailable
from ._exceptions import Forbidden as Forbidden
from ._exceptions import InsecureTransport as InsecureTransport
from ._exceptions import InvalidRequest as InvalidRequest
from ._exceptions import LeasefsError as LeasefsError
from ._exceptions import LeaseHeld as LeaseHeld
from ._exceptions import NotFound as NotFound
from ._exceptions import PayloadTooLarge as PayloadTooLarge
from ._exceptions import RateLimited as RateLimited
from ._exceptions import RequestRejected as RequestRejected
from ._exceptions import StaleToken as StaleToken
from ._exceptions import TooManyLeases as TooManyLeases
from ._exceptions import TooManyRequests as TooManyRequests
from ._exceptions import Unauthorized as Unauthorized
from ._hashing import sha256_of_file as sha256_of_file

__all__ = [
    "Client",
    "Conflict",
    "ControlError",
    "CoordinatorUnavailable",
    "EventStream",
    "Forbidden",
    "Identity",
    "InsecureTransport",
    "InvalidRequest",
    "LeaseHeld",
    "LeasefsError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestRejected",
    "StaleToken",
    "TooManyLeases",
    "TooManyRequests",
    "Unauthorized",
    "acting_client",
    "add_run_agent",
    "end_run",
    "mount_status",
    "release_now",
    "resolve_coordinator_url",
    "resolve_identity",
    "sha256_of_file",
    "unmount_now",
]
