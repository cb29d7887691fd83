"""Where running mounts are recorded, so other commands can find them by repository.

Each mount daemon writes ``<data>/mounts/<id>.json`` once it serves, and removes it when it
stops; ``<id>`` is derived from the repository's real path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ._settings import default_data_dir


class MountRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo: str
    pid: int
    socket: str
    log: str
    coordinator: str
    workspace: str
    agent: str
    agent_id: int
    token: str


def mounts_dir() -> Path:
    return default_data_dir() / "mounts"


def mount_id(repo: Path) -> str:
    return hashlib.sha256(os.fsencode(os.path.realpath(repo))).hexdigest()[:16]


def sockets_dir() -> Path:
    """Control sockets live in a short private directory: a socket path has at most 107 bytes."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and os.path.isdir(runtime) else Path(tempfile.gettempdir())
    path = base / f"leasefs-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def paths_for(repo: Path) -> tuple[Path, Path, Path]:
    """The record, control socket and log file of the mount of ``repo``."""
    ident = mount_id(repo)
    base = mounts_dir() / ident
    return base.with_suffix(".json"), sockets_dir() / f"{ident}.sock", base.with_suffix(".log")


def cursor_path(repo: Path, workspace: str) -> Path:
    """Where the mount of ``repo`` keeps the id of the last event it applied."""
    return mounts_dir() / f"{mount_id(repo)}.{workspace}.cursor"


def write(record: MountRecord, path: Path) -> None:
    """Record a serving mount at ``path`` (from `paths_for`, computed before mounting: the
    mount daemon must never resolve a path through its own mount)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the token
    with os.fdopen(fd, "w") as f:
        f.write(record.model_dump_json())
    os.replace(tmp, path)


def remove(repo: Path) -> None:
    path, _, _ = paths_for(repo)
    path.unlink(missing_ok=True)


def read(repo: Path) -> MountRecord | None:
    path, _, _ = paths_for(repo)
    try:
        return MountRecord.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def all_records() -> list[MountRecord]:
    records = []
    for path in sorted(mounts_dir().glob("*.json")):
        try:
            records.append(MountRecord.model_validate(json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return records


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
