"""`leasefs install`: add the leasefs MCP server to every installed agent's and IDE's own config.

Each client keeps MCP servers in its own file and format (declared as data in `TARGETS`).
Install adds exactly one entry, named ``leasefs``, leaving every other server, setting,
comment and blank line as it was, and keeps a backup of the original. A second run changes
nothing. Uninstall restores the original bytes if the file is as we left it, and otherwise
cuts out just our entry. A manifest in the data directory remembers what we did.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from pydantic import BaseModel

from .._config import default_data_dir
from . import _jsonc

Scope = Literal["user", "project"]
ENTRY = "leasefs"
RULES_BEGIN = "<!-- leasefs:begin -->"
RULES_END = "<!-- leasefs:end -->"


@dataclass(frozen=True)
class Target:
    """One client: where it keeps MCP servers, in which format, and how it spells an entry."""

    name: str
    detect: tuple[str, ...]  # paths under HOME whose existence says the client is installed
    user_file: str | None  # under HOME
    project_file: str | None  # under the repository
    container: tuple[str, ...]  # keys down to the object holding the servers
    style: Literal["mcpServers", "vscode", "zed", "codex"]

    def entry(self, command: str, args: list[str]) -> dict[str, Any]:
        if self.style == "vscode":
            return {"type": "stdio", "command": command, "args": args}
        if self.style == "zed":
            return {"source": "custom", "command": command, "args": args, "env": {}}
        return {"command": command, "args": args}


TARGETS = [
    Target("Claude Code", (".claude", ".claude.json"), ".claude.json", ".mcp.json", ("mcpServers",), "mcpServers"),
    Target("Cursor", (".cursor",), ".cursor/mcp.json", ".cursor/mcp.json", ("mcpServers",), "mcpServers"),
    Target("VS Code (Copilot)", (".config/Code",), ".config/Code/User/mcp.json", ".vscode/mcp.json", ("servers",), "vscode"),
    Target("Windsurf", (".codeium/windsurf",), ".codeium/windsurf/mcp_config.json", None, ("mcpServers",), "mcpServers"),
    Target("Zed", (".config/zed",), ".config/zed/settings.json", ".zed/settings.json", ("context_servers",), "zed"),
    Target("Codex CLI", (".codex",), ".codex/config.toml", None, ("mcp_servers",), "codex"),
    Target("Gemini CLI", (".gemini",), ".gemini/settings.json", ".gemini/settings.json", ("mcpServers",), "mcpServers"),
]  # fmt: skip


class InstallRecord(BaseModel):
    client: str
    path: str
    original_sha256: str | None  # None: the file did not exist
    installed_sha256: str
    backup: str | None
    at: float


class Manifest(BaseModel):
    records: list[InstallRecord] = []


@dataclass(frozen=True)
class Change:
    client: str
    path: Path
    action: Literal["added", "unchanged", "restored", "removed", "skipped"]
    detail: str = ""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_path() -> Path:
    return default_data_dir() / "installs.json"


def _load_manifest() -> Manifest:
    try:
        return Manifest.model_validate_json(_manifest_path().read_text())
    except (OSError, ValueError):
        return Manifest()


def _save_manifest(manifest: Manifest) -> None:
    path = _manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2))
    os.replace(tmp, path)


def server_command() -> tuple[str, list[str]]:
    """How a client starts our MCP server: this installation's `leasefs mcp`."""
    script = Path(sys.executable).with_name("leasefs")
    if script.exists():
        return str(script), ["mcp"]
    return sys.executable, ["-m", "leasefs", "mcp"]


def _config_path(target: Target, scope: Scope, home: Path, repo: Path) -> Path | None:
    if scope == "user":
        return home / target.user_file if target.user_file else None
    return repo / target.project_file if target.project_file else None


def installed_targets(home: Path) -> list[Target]:
    return [t for t in TARGETS if any((home / d).exists() for d in t.detect)]


def _with_entry(target: Target, text: str, command: str, args: list[str]) -> str:
    entry = target.entry(command, args)
    if target.style == "codex":
        doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
        servers = doc.get("mcp_servers")
        if servers is None:
            servers = tomlkit.table(is_super_table=True)
            doc["mcp_servers"] = servers
        table = tomlkit.table()
        table["command"] = command
        table["args"] = args
        servers[ENTRY] = table
        return tomlkit.dumps(doc)
    return _jsonc.set_member(text, list(target.container), ENTRY, entry)


def _has_entry(target: Target, text: str, command: str, args: list[str]) -> bool:
    if not text.strip():
        return False
    if target.style == "codex":
        servers = tomlkit.parse(text).get("mcp_servers") or {}
        current = servers.get(ENTRY)
        return (
            current is not None
            and current.get("command") == command
            and list(current.get("args", [])) == args
        )
    found: Any = _jsonc.get(text, [*target.container, ENTRY])
    return bool(found == target.entry(command, args))


def _without_entry(target: Target, text: str) -> str:
    if target.style == "codex":
        doc = tomlkit.parse(text)
        servers = doc.get("mcp_servers")
        if servers is not None and ENTRY in servers:
            del servers[ENTRY]
            if not servers:
                del doc["mcp_servers"]
        return tomlkit.dumps(doc)
    return _jsonc.remove_member(text, list(target.container), ENTRY)


def install(
    *, scope: Scope, home: Path, repo: Path, dry_run: bool = False, only: list[str] | None = None
) -> list[Change]:
    """Add the leasefs server to each installed client's config (idempotent)."""
    command, args = server_command()
    manifest = _load_manifest()
    changes = []
    for target in installed_targets(home):
        if only and target.name not in only:
            continue
        path = _config_path(target, scope, home, repo)
        if path is None:
            changes.append(Change(target.name, home, "skipped", f"no {scope}-scope config"))
            continue
        original = path.read_bytes() if path.exists() else None
        text = original.decode() if original is not None else ""
        try:
            if _has_entry(target, text, command, args):
                changes.append(Change(target.name, path, "unchanged"))
                continue
            new_text = _with_entry(target, text, command, args)
        except (ValueError, _jsonc.JsoncError, tomlkit.exceptions.ParseError) as exc:
            changes.append(Change(target.name, path, "skipped", f"cannot parse it: {exc}"))
            continue
        changes.append(Change(target.name, path, "added"))
        if dry_run:
            continue
        backup = None
        if original is not None:
            backup = str(path.with_name(path.name + f".leasefs-backup-{int(time.time())}"))
            shutil.copy2(path, backup)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".leasefs-tmp")
        tmp.write_text(new_text)
        if original is not None:
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
        manifest.records = [r for r in manifest.records if r.path != str(path)]
        manifest.records.append(
            InstallRecord(
                client=target.name, path=str(path),
                original_sha256=_sha(original) if original is not None else None,
                installed_sha256=_sha(new_text.encode()), backup=backup, at=time.time(),
            )
        )  # fmt: skip
    if not dry_run:
        _save_manifest(manifest)
    return changes


def uninstall(*, dry_run: bool = False) -> list[Change]:
    """Undo every install recorded in the manifest."""
    manifest = _load_manifest()
    changes, kept = [], []
    by_name = {t.name: t for t in TARGETS}
    for record in manifest.records:
        path = Path(record.path)
        target = by_name[record.client]
        current = path.read_bytes() if path.exists() else None
        if current is not None and _sha(current) == record.installed_sha256:
            changes.append(Change(record.client, path, "restored", "the original bytes"))
            if not dry_run:
                if record.original_sha256 is None:
                    path.unlink()
                elif record.backup is not None:
                    shutil.copy2(record.backup, path)
        elif current is not None:
            changes.append(
                Change(record.client, path, "removed", "our entry only (the file changed since)")
            )
            if not dry_run:
                path.write_text(_without_entry(target, current.decode()))
        else:
            changes.append(Change(record.client, path, "unchanged", "the file is gone"))
        if dry_run:
            kept.append(record)
        elif record.backup:
            Path(record.backup).unlink(missing_ok=True)
    if not dry_run:
        manifest.records = kept
        _save_manifest(manifest)
    return changes


RULES = f"""{RULES_BEGIN}
## Working with other agents (leasefs)

This repository is shared by several agents at once through leasefs.

- At the start of a session, call `leasefs_briefing` (or read `HANDOFF.md`): it says who works
  on what, who holds which files, and what the last agents left for you.
- Declare your work with `leasefs_start` (title, the paths you expect to touch), and end it with
  `leasefs_finish` (summary, next steps, decisions) — or `leasefs_park` if someone else should
  carry on.
- A write that fails with EBUSY ("Device or resource busy") means another agent holds that file
  right now. Do not retry in a loop and do not work around it (no copies, no renames): call
  `leasefs_check` to see who holds it and why, do something else meanwhile, ask them with
  `leasefs_ask`, or wait for it with `leasefs_lease_wait`.
- EACCES on a file can mean a protected zone: `leasefs_check` shows it; `leasefs_confirm_zone`
  asks a person.
- Record lasting knowledge with `leasefs_remember`.
- Other agents may work in this very folder. Commit with `leasefs commit -m "message"`: it
  commits only the files you changed. Never `git commit -a`, `git add -A`/`git add .`,
  `git stash`, `git reset --hard` or `git checkout -- .`: they take or undo the other agents'
  uncommitted work (leasefs refuses them, with EBUSY, on files another agent holds).
{RULES_END}
"""


def add_rules(repo: Path, dry_run: bool = False) -> list[Change]:
    """Add the working rules to AGENTS.md (and CLAUDE.md where there is one), once."""
    changes = []
    for name in ("AGENTS.md", "CLAUDE.md"):
        path = repo / name
        if name == "CLAUDE.md" and not path.exists():
            continue
        text = path.read_text() if path.exists() else ""
        if RULES_BEGIN in text:
            changes.append(Change("agent rules", path, "unchanged"))
            continue
        changes.append(Change("agent rules", path, "added"))
        if not dry_run:
            path.write_text(text + ("\n" if text else "") + RULES)
    return changes


def remove_rules(repo: Path) -> list[Change]:
    """Cut the rules block `add_rules` added; a file it created alone goes away."""
    changes = []
    for name in ("AGENTS.md", "CLAUDE.md"):
        path = repo / name
        text = path.read_text() if path.exists() else ""
        start, end = text.find(RULES_BEGIN), text.find(RULES_END)
        if start < 0 or end < 0:
            continue
        before = text[:start]
        after = text[end + len(RULES_END) + 1 :]
        if before.endswith("\n\n"):
            before = before[:-1]
        remaining = before + after
        if remaining:
            path.write_text(remaining)
        else:
            path.unlink()
        changes.append(Change("agent rules", path, "removed"))
    return changes


def describe(changes: list[Change]) -> str:
    return (
        "\n".join(
            f"{c.client}: {c.action} {c.path}" + (f" ({c.detail})" if c.detail else "")
            for c in changes
        )
        or "no supported agent or IDE found"
    )
