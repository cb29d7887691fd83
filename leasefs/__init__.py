"""leasefs: edit-time leases for teams of AI coding agents sharing one codebase.

The package is built in layers; a module imports only from its own layer or the ones below,
never from above (``tests/test_layers.py`` checks every import):

    layer 3  leasefs.cli        the command line; the only importer of coordinator, mcp_bridge
    layer 2  leasefs._mount     the mount daemon: lease machine, keeper, leasing FS, applier
    layer 1  leasefs._client    the typed client (HTTP to the coordinator, socket to a mount)
             leasefs._config    settings, default names, the mount registry, hand-off checks
             leasefs._fs        the plain in-place FUSE passthrough, and fusermount
    layer 0  leasefs.wire       bodies, error codes, events, paths, control messages, defaults

Within layer 1, ``_client`` may use ``_config``; ``_config`` and ``_fs`` use only ``wire``.
Beside leasefs, ``coordinator`` imports only `leasefs.wire`, and ``mcp_bridge`` only this
front and `leasefs.wire`.

This front re-exports what other packages and users may import. The client's names load on
first use: importing `leasefs.wire` runs this file first, and the coordinator, which imports
only the wire package, must not load the client and its HTTP stack.
"""

from typing import TYPE_CHECKING

from .wire import LEASEFS_VERSION
from .wire import InvalidPath as InvalidPath
from .wire import check_repo_path as check_repo_path

if TYPE_CHECKING:
    from ._client import Client as Client
    from ._client import Conflict as Conflict
    from ._client import ControlError as ControlError
    from ._client import CoordinatorUnavailable as CoordinatorUnavailable
    from ._client import Forbidden as Forbidden
    from ._client import Identity as Identity
    from ._client import InvalidRequest as InvalidRequest
    from ._client import LeasefsError as LeasefsError
    from ._client import LeaseHeld as LeaseHeld
    from ._client import NotFound as NotFound
    from ._client import PayloadTooLarge as PayloadTooLarge
    from ._client import RateLimited as RateLimited
    from ._client import RequestRejected as RequestRejected
    from ._client import StaleToken as StaleToken
    from ._client import TooManyLeases as TooManyLeases
    from ._client import TooManyRequests as TooManyRequests
    from ._client import Unauthorized as Unauthorized
    from ._client import acting_client as acting_client
    from ._client import mount_status as mount_status
    from ._client import release_now as release_now
    from ._client import resolve_identity as resolve_identity
    from ._config import run_checks as run_checks

__version__ = LEASEFS_VERSION

_LAZY = {
    "Client": "._client",
    "Conflict": "._client",
    "ControlError": "._client",
    "CoordinatorUnavailable": "._client",
    "Forbidden": "._client",
    "InsecureTransport": "._client",
    "Identity": "._client",
    "InvalidRequest": "._client",
    "LeaseHeld": "._client",
    "LeasefsError": "._client",
    "NotFound": "._client",
    "PayloadTooLarge": "._client",
    "RateLimited": "._client",
    "RequestRejected": "._client",
    "StaleToken": "._client",
    "TooManyLeases": "._client",
    "TooManyRequests": "._client",
    "Unauthorized": "._client",
    "acting_client": "._client",
    "mount_status": "._client",
    "release_now": "._client",
    "resolve_identity": "._client",
    "run_checks": "._config",
}


def __getattr__(name: str) -> object:
    """The client's names, imported when first asked for (see the module docstring)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Client",
    "Conflict",
    "ControlError",
    "CoordinatorUnavailable",
    "Forbidden",
    "Identity",
    "InsecureTransport",
    "InvalidPath",
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
    "__version__",
    "acting_client",
    "check_repo_path",
    "mount_status",
    "release_now",
    "resolve_identity",
    "run_checks",
]
