"""`leasefs install` into a temporary HOME holding existing configurations of every client."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from leasefs.cli import _jsonc
from tests.helpers import leasefs_cli

EXISTING = {
    ".claude.json": '{\n  "numStartups": 3,\n  "mcpServers": {\n    "github": {"command": "gh-mcp"}\n  }\n}\n',
    ".cursor/mcp.json": '{"mcpServers": {"db": {"command": "db-mcp", "args": ["--ro"]}}}',
    ".config/Code/User/mcp.json": '{\n\t"servers": {\n\t\t"fs": {"type": "stdio", "command": "fs-mcp"}\n\t}\n}\n',
    ".codeium/windsurf/mcp_config.json": "{}\n",
    ".config/zed/settings.json": (
        '// Zed settings\n{\n  "theme": "One Dark", // my theme\n  /* servers */\n'
        '  "context_servers": {\n    "other": {"command": "x", "args": []},\n  },\n}\n'
    ),
    ".codex/config.toml": '# my codex config\nmodel = "o4"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n',
    ".gemini/settings.json": '{"theme": "GitHub"}\n',
}
CONTAINERS = {
    ".claude.json": ["mcpServers"], ".cursor/mcp.json": ["mcpServers"],
    ".config/Code/User/mcp.json": ["servers"], ".codeium/windsurf/mcp_config.json": ["mcpServers"],
    ".config/zed/settings.json": ["context_servers"], ".gemini/settings.json": ["mcpServers"],
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for name, text in EXISTING.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    return home


def leasefs(home: Path, cwd: Path, *args: str) -> str:
    env = {**os.environ, "HOME": str(home)}
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "LEASEFS_DATA_DIR"):
        env.pop(name, None)
    return leasefs_cli(*args, env=env, cwd=cwd, timeout=60).stdout


def snapshot(home: Path) -> dict[str, bytes]:
    return {name: (home / name).read_bytes() for name in EXISTING}


def test_install_adds_ours_keeps_theirs_is_idempotent_and_uninstall_restores(
    home: Path, tmp_path: Path
) -> None:
    before = snapshot(home)
    dry = leasefs(home, tmp_path, "install", "--dry-run")
    assert "(dry run)" in dry and snapshot(home) == before
    out = leasefs(home, tmp_path, "install")
    assert out.count(": added ") == len(EXISTING), out
    for name, container in CONTAINERS.items():
        text = (home / name).read_text()
        ours = _jsonc.get(text, [*container, "leasefs"])
        assert ours is not None and ours["args"][-1] == "mcp", name
        # Nothing secret goes into another tool's config: the command finds its credential.
        assert set(ours) <= {"command", "args", "type", "source", "env"}, (name, ours)
        assert not ours.get("env"), (name, ours)
        original = _jsonc.get(before[name].decode(), container) or {}
        for other, config in original.items():
            assert _jsonc.get(text, [*container, other]) == config, (name, other)
    zed = (home / ".config/zed/settings.json").read_text()
    assert "// my theme" in zed and "/* servers */" in zed and "// Zed settings" in zed
    codex = tomllib.loads((home / ".codex/config.toml").read_text())
    assert codex["mcp_servers"]["docs"] == {"command": "docs-mcp"} and codex["model"] == "o4"
    assert codex["mcp_servers"]["leasefs"]["args"][-1] == "mcp"
    assert "# my codex config" in (home / ".codex/config.toml").read_text()
    assert json.loads((home / ".claude.json").read_text())["numStartups"] == 3
    installed = snapshot(home)
    again = leasefs(home, tmp_path, "install")
    assert again.count(": unchanged ") == len(EXISTING) and snapshot(home) == installed
    leasefs(home, tmp_path, "uninstall")
    assert snapshot(home) == before, "uninstall must give back the original bytes"
    assert not list(home.rglob("*leasefs-backup*"))


def test_uninstall_after_the_user_edited_removes_only_our_entry(home: Path, tmp_path: Path) -> None:
    leasefs(home, tmp_path, "install")
    cursor = home / ".cursor/mcp.json"
    edited = cursor.read_text().replace('"db-mcp"', '"db-mcp-2"')
    cursor.write_text(edited)
    leasefs(home, tmp_path, "uninstall")
    text = cursor.read_text()
    assert _jsonc.get(text, ["mcpServers", "leasefs"]) is None
    assert _jsonc.get(text, ["mcpServers", "db"]) == {"command": "db-mcp-2", "args": ["--ro"]}


def test_project_scope_and_agent_rules(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "CLAUDE.md").write_text("# House rules\n\nBe nice.\n")
    leasefs(home, repo, "install", "--scope", "project", "--rules")
    assert _jsonc.get((repo / ".mcp.json").read_text(), ["mcpServers", "leasefs"]) is not None
    assert "servers" in json.loads((repo / ".vscode/mcp.json").read_text())
    agents = (repo / "AGENTS.md").read_text()
    assert "EBUSY" in agents and "leasefs_briefing" in agents
    assert (repo / "CLAUDE.md").read_text().startswith("# House rules\n\nBe nice.\n")
    assert "leasefs_finish" in (repo / "CLAUDE.md").read_text()
    again = leasefs(home, repo, "install", "--scope", "project", "--rules")
    assert "agent rules: unchanged" in again
    leasefs(home, repo, "uninstall", "--rules")
    assert not (repo / ".mcp.json").exists() and not (repo / "AGENTS.md").exists()
    assert (repo / "CLAUDE.md").read_text() == "# House rules\n\nBe nice.\n"
