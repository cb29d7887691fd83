"""leasefs: edit-time leases for teams of AI coding agents sharing one codebase."""

from ._client import Client as Client
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
from ._paths import InvalidPath as InvalidPath
from ._paths import check_repo_path as check_repo_path

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
