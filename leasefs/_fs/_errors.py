"""Turning every failure inside a FUSE handler into an errno.

pyfuse3 ends the whole filesystem when a handler raises anything but `FUSEError`, and a
dead filesystem mounted over a repository blocks every process that touches it. So each
handler is wrapped: `OSError` becomes its own errno (the backing filesystem already chose
the right one), anything unexpected becomes EIO plus a log line with the traceback.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pyfuse3 import FUSEError

__all__ = ["fuse_handler", "quiet_handler"]

log = logging.getLogger("leasefs.fs")

P = ParamSpec("P")
R = TypeVar("R")


def fuse_handler(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Wrap a request handler so that it raises only `FUSEError`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except FUSEError:
            raise
        except OSError as exc:
            raise FUSEError(exc.errno or errno.EIO) from exc
        except Exception as exc:
            log.exception("%s failed unexpectedly; answering EIO", fn.__qualname__)
            raise FUSEError(errno.EIO) from exc

    return wrapper


def quiet_handler(fn: Callable[P, Awaitable[None]]) -> Callable[P, Coroutine[Any, Any, None]]:
    """Wrap a handler that must not raise at all (`forget`, `release`): log and carry on."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await fn(*args, **kwargs)
        except FUSEError as exc:
            log.debug("%s: %s", fn.__qualname__, exc)
        except Exception:
            log.exception("%s failed unexpectedly; ignored", fn.__qualname__)

    return wrapper
