"""Processes that see the real repository underneath the mount, and so bypass enforcement.

A process whose working directory or open files were inside the repository before it was
mounted keeps using the directory underneath. We find them through ``/proc``: a working
directory, root or open file whose device is the underlying filesystem's and whose path is
inside the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._procfs import descriptors, processes


@dataclass(frozen=True)
class Bypasser:
    pid: int
    name: str
    how: str  # "cwd" or "open file <path>"

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}, {self.how})"


def _inside(path: str, repo: str) -> bool:
    return path == repo or path.startswith(repo.rstrip("/") + "/")


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def find_bypassers(
    repo: Path, underlying_dev: int, exclude: set[int] | None = None
) -> list[Bypasser]:
    """Processes using files of ``repo`` on device ``underlying_dev`` (the real directory)."""
    real = os.path.realpath(repo)
    skip = exclude or set()
    found: list[Bypasser] = []
    for pid in processes(exclude=skip):
        hit = _cwd_hit(pid, real, underlying_dev) or _fd_hit(pid, real, underlying_dev)
        if hit:
            found.append(Bypasser(pid=pid, name=_process_name(pid), how=hit))
    return found


def _uses(link: str, real: str, underlying_dev: int) -> str | None:
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return target if _inside(target, real) and _on_device(link, underlying_dev) else None


def _on_device(link: str, underlying_dev: int) -> bool:
    """Whether what `link` points at is on the underlying filesystem (not the mount)."""
    try:
        return os.stat(link).st_dev == underlying_dev
    except OSError:
        return False


def _cwd_hit(pid: int, real: str, underlying_dev: int) -> str | None:
    target = _uses(f"/proc/{pid}/cwd", real, underlying_dev)
    return "working directory" if target else None


def _fd_hit(pid: int, real: str, underlying_dev: int) -> str | None:
    for fd, target in descriptors(pid):
        if _inside(target, real) and _on_device(f"/proc/{pid}/fd/{fd}", underlying_dev):
            return f"open file {target}"
    return None
