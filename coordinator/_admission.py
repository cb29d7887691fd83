"""Who may come in, and what each role may do: the coordinator's access rules, with no I/O.

A coordinator is *open* when only this machine can reach it (it listens on loopback): every
local agent joins as an admin, as the user it runs as could do anything to its files anyway.
Otherwise it admits by *invitation*: creating a workspace needs the coordinator's admin
secret, joining one needs a member's credential (from a redeemed invitation), and every
agent acts with its member's role. Roles rank viewer < member < admin < owner.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from leasefs.wire import ROLE_RANK, ErrorCode

from ._errors import Forbidden
from .store import AgentRow

ADMIN_SECRET_FILE = "admin-secret"


@dataclass(frozen=True)
class Admission:
    """``open``: admit every agent without invitation (a coordinator on loopback only)."""

    open: bool = True
    admin_secret_hash: str | None = None

    def is_admin_secret(self, secret: str | None) -> bool:
        """Compared in constant time, by hash: the secret itself is never kept in memory."""
        if not secret or self.admin_secret_hash is None:
            return False
        return hmac.compare_digest(hash_secret(secret), self.admin_secret_hash)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    """A secret with a prefix saying what it is (``lfi_`` invitation, ``lfm_`` member...)."""
    return prefix + secrets.token_urlsafe(32)


def require_role(agent: AgentRow, role: str, what: str) -> None:
    """Refuse (403 ``role_required``) an agent whose role ranks below ``role``."""
    if ROLE_RANK.get(agent.role, -1) >= ROLE_RANK[role]:
        return
    raise Forbidden(
        f"{what} needs the {role} role; agent {agent.name!r} is a {agent.role} of this "
        "workspace (an admin can invite with --role admin)",
        code=ErrorCode.ROLE_REQUIRED,
        details={"needed": role, "role": agent.role},
    )


def load_admin_secret(data_dir: Path) -> tuple[str, str | None]:
    """The admin secret's hash, and the secret itself if it was made just now (to print once).

    Kept in ``data_dir/admin-secret``, readable by the coordinator's user only.
    """
    path = data_dir / ADMIN_SECRET_FILE
    try:
        secret = path.read_text().strip()
        made = None
    except FileNotFoundError:
        secret = made = new_secret("lfa_")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    return hash_secret(secret), made
