"""The few libc calls the `os` module does not offer: renameat2 and utimensat with UTIME_OMIT.

`os.rename` has no flags (RENAME_NOREPLACE, RENAME_EXCHANGE) and `os.utime` cannot leave one
of the two timestamps alone, which `touch -m` and `touch -a` need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["UTIME_OMIT", "futimens", "renameat2", "utimensat"]

UTIME_OMIT = (1 << 30) - 2
_AT_SYMLINK_NOFOLLOW = 0x100
_NANOS = 1_000_000_000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.renameat2.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
]
_libc.renameat2.restype = ctypes.c_int
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), ctypes.c_int]
_libc.utimensat.restype = ctypes.c_int
_libc.futimens.argtypes = [ctypes.c_int, ctypes.POINTER(_Timespec)]
_libc.futimens.restype = ctypes.c_int


def _timespecs(atime_ns: int | None, mtime_ns: int | None) -> ctypes.Array[_Timespec]:
    times = (_Timespec * 2)()
    for slot, ns in zip(times, (atime_ns, mtime_ns), strict=True):
        if ns is None:
            slot.tv_sec, slot.tv_nsec = 0, UTIME_OMIT
        else:
            slot.tv_sec, slot.tv_nsec = divmod(ns, _NANOS)
    return times


def _check(result: int, filename: str | None = None) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), filename)


def renameat2(old_dir_fd: int, old: str, new_dir_fd: int, new: str, flags: int) -> None:
    """rename(2) with flags, each path relative to its folder's descriptor."""
    result = _libc.renameat2(old_dir_fd, os.fsencode(old), new_dir_fd, os.fsencode(new), flags)
    _check(result, old)


def utimensat(dir_fd: int, path: str, atime_ns: int | None, mtime_ns: int | None) -> None:
    """Set the times of `path` (not following a final symlink); None leaves one unchanged."""
    times = _timespecs(atime_ns, mtime_ns)
    _check(_libc.utimensat(dir_fd, os.fsencode(path), times, _AT_SYMLINK_NOFOLLOW), path)


def futimens(fd: int, atime_ns: int | None, mtime_ns: int | None) -> None:
    """Set the times of an open file; None leaves one unchanged."""
    _check(_libc.futimens(fd, _timespecs(atime_ns, mtime_ns)))
