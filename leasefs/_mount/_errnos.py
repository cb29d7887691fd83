"""Why a change cannot go ahead, as the errno its system call fails with.

One table, most specific exception first, so what a refusal means to an editor or a shell is
written in one place: EBUSY for a file another agent holds, ENOLCK when the coordinator cannot
be reached (no lease can be confirmed) or no longer takes this agent (revoked), EACCES for a blocked zone, EDQUOT past the agent's
lease limit, EAGAIN when rate-limited, EIO for anything else the coordinator refused.
"""

from __future__ import annotations

import errno

from .._client import (
    CoordinatorUnavailable,
    Forbidden,
    LeasefsError,
    LeaseHeld,
    RateLimited,
    TooManyLeases,
    Unauthorized,
)

_ERRNO_OF: list[tuple[type[LeasefsError], int]] = [
    (LeaseHeld, errno.EBUSY),
    (Forbidden, errno.EACCES),
    (TooManyLeases, errno.EDQUOT),
    (RateLimited, errno.EAGAIN),
    (CoordinatorUnavailable, errno.ENOLCK),
    (Unauthorized, errno.ENOLCK),  # this agent left or was revoked: it holds no lease now
    (LeasefsError, errno.EIO),
]


class LeaseRefused(Exception):
    """A change cannot proceed; ``errno`` is what the system call fails with."""

    def __init__(self, message: str, *, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


def errno_of(exc: LeasefsError) -> int:
    """The errno a refused acquire ends the system call with."""
    return next(number for kind, number in _ERRNO_OF if isinstance(exc, kind))


def refusal(exc: LeasefsError) -> LeaseRefused:
    """The acquire's failure as the refusal the filesystem answers with, saying why."""
    if isinstance(exc, CoordinatorUnavailable):
        message = f"cannot reach the coordinator, so no new lease: {exc}"
    elif isinstance(exc, LeaseHeld | Forbidden | TooManyLeases | RateLimited):
        message = str(exc)
    else:
        message = f"lease refused: {exc}"
    return LeaseRefused(message, errno=errno_of(exc))
