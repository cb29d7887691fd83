"""leasefs: edit-time leases for teams of AI coding agents sharing one codebase."""

from typing import TYPE_CHECKING

from ._exceptions import Conflict as Conflict
from ._exceptions import CoordinatorUnavailable as CoordinatorUnavailable
from ._exceptions import Forbidden as Forbidden
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
from .wire import InvalidPath as InvalidPath
from .wire import check_repo_path as check_repo_path

if TYPE_CHECKING:
    from ._client import Client as Client

# Loaded on first use, so that the coordinator, which imports only `leasefs.wire`, never loads
# the client and its HTTP stack (importing a subpackage runs this file first).
_LAZY = {"Client": "._client"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Client",
    "Conflict",
    "CoordinatorUnavailable",
    "Forbidden",
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
    "check_repo_path",
]
