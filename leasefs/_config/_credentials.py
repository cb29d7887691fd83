"""Member credentials this user holds, per coordinator and workspace (from `leasefs join`).

Kept beside the user's config in ``credentials.json``, readable by the user only (mode 0600,
checked on every read: a file others can read is refused, not used). The mount and the MCP
bridge register their agents with the credential found here, so no secret is ever written
into another tool's configuration.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ._settings import SettingsError, user_config_path


class StoredCredential(BaseModel):
    coordinator: str
    workspace: str
    member: str
    role: str
    credential: str


class _File(BaseModel):
    credentials: list[StoredCredential] = []


def credentials_path() -> Path:
    return user_config_path().with_name("credentials.json")


def _normal(url: str) -> str:
    return url.rstrip("/")


def _read() -> _File:
    path = credentials_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return _File()
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
            raise SettingsError(
                f"{path} can be read by other users: it holds secrets; chmod 600 it first"
            )
        try:
            return _File.model_validate_json(f.read())
        except ValidationError as exc:
            raise SettingsError(f"{path} is not a credentials file: {exc}") from exc


def lookup(coordinator: str, workspace: str) -> str | None:
    """The member credential for ``workspace`` on ``coordinator``, if this user joined it."""
    for entry in _read().credentials:
        if _normal(entry.coordinator) == _normal(coordinator) and entry.workspace == workspace:
            return entry.credential
    return None


def save(entry: StoredCredential) -> Path:
    """Store ``entry`` (replacing one for the same coordinator and workspace), mode 0600,
    written to a new file and renamed over the old one."""
    current = _read()
    kept = [
        c
        for c in current.credentials
        if not (_normal(c.coordinator) == _normal(entry.coordinator)
                and c.workspace == entry.workspace)
    ]  # fmt: skip
    data = _File(credentials=[*kept, entry]).model_dump_json(indent=2).encode()
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def entries() -> list[StoredCredential]:
    return list(_read().credentials)
