"""Settings, declared as data, and where each value comes from.

Precedence: command-line flag > environment (``LEASEFS_*``) > ``leasefs.toml`` in the
repository > ``~/.config/leasefs/config.toml`` > the default here. Every setting is listed in
`SETTINGS` with its help text; the docs test checks that the README documents each one.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "LEASEFS_" + self.name.upper()


SETTINGS = [
    Setting("coordinator", None, "Coordinator URL; unset means the embedded local coordinator."),
    Setting("token", None, "Agent bearer token to reuse instead of registering anew."),
    Setting("workspace", None, "Workspace (shared repository) name on the coordinator."),
    Setting("agent", None, "Agent name shown to the team; defaults to user@host."),
    Setting("data_dir", None, "Local state directory; defaults to ~/.local/share/leasefs."),
    Setting(
        "ca_cert",
        None,
        "CA certificate (PEM) that signed an https coordinator's certificate; unset uses the "
        "system's public trust store.",
    ),
]
_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A configuration file that cannot be read; the message names the file."""


def default_data_dir() -> Path:
    """Local state: ``$LEASEFS_DATA_DIR``, ``$XDG_DATA_HOME/leasefs``, ``~/.local/share/leasefs``."""
    if explicit := os.environ.get("LEASEFS_DATA_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "leasefs"


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "leasefs" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    section = data.get("leasefs", data)
    return section if isinstance(section, dict) else {}


def resolve(name: str, flag: Any = None, repo: Path | None = None) -> Any:
    """The value of setting ``name`` from the first source that has one."""
    setting = _BY_NAME[name]
    if flag is not None:
        return flag
    if (value := os.environ.get(setting.env)) not in (None, ""):
        return value
    sources = [repo / "leasefs.toml"] if repo is not None else []
    for path in [*sources, user_config_path()]:
        if name in (section := _read_toml(path)):
            return section[name]
    return setting.default
