"""Default names: which workspace a repository belongs to, and what an agent is called.

Two clones of one repository must land in one workspace without anyone configuring it, so the
default workspace comes from the clone's ``origin`` remote (the same for every clone), and only
without a remote from the directory itself.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import subprocess
from pathlib import Path


def _origin_url(repo: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = result.stdout.strip()
    return url or None


def repository_of(cwd: Path) -> Path | None:
    """The top of the git working tree ``cwd`` is in, or None outside any."""
    try:
        out = subprocess.run(
            ["git", "-C", str(cwd), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else None


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return slug[:40] or "repo"


def default_workspace(repo: Path) -> str:
    """``<name>-<hash8>`` from the origin remote, else from the repository's real path."""
    origin = _origin_url(repo)
    if origin:
        name = origin.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        key = origin
    else:
        real = os.path.realpath(repo)
        name, key = os.path.basename(real), real
    return f"{_slug(name)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def default_agent_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "agent"
    return f"{user}@{socket.gethostname()}"
