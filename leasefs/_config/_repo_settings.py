"""Settings written into a repository's ``leasefs.toml`` (what `leasefs join` records, so that
`leasefs mount .` needs no flags), keeping every other line, comment and table as it was."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import tomlkit
from tomlkit.exceptions import ParseError

from ._settings import SETTINGS, SettingsError

_KNOWN = {s.name for s in SETTINGS}
SETTINGS_FILE = "leasefs.toml"


def write_repo_settings(repo: Path, values: Mapping[str, str]) -> dict[str, str]:
    """Set ``values`` in ``repo/leasefs.toml`` (in its ``[leasefs]`` table if it has one, as
    the reader looks there first); returns the values they replaced, where they differed."""
    unknown = set(values) - _KNOWN
    if unknown:
        raise SettingsError(f"no such setting: {', '.join(sorted(unknown))}")
    path = repo / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    try:
        document = tomlkit.parse(text)
    except ParseError as exc:
        raise SettingsError(f"cannot update {path}, it is not valid TOML: {exc}") from exc
    section = document.get("leasefs")
    table = section if isinstance(section, dict) else document
    replaced = {
        name: str(table[name])
        for name, value in values.items()
        if name in table and str(table[name]) != value
    }
    for name, value in values.items():
        table[name] = value
    temporary = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}.tmp")
    try:
        temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise SettingsError(f"cannot write {path}: {exc}") from exc
    return replaced
