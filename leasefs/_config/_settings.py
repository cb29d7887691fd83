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

from .. import wire


@dataclass(frozen=True)
class Setting:
    """One tunable: its name (also its TOML key), default, help, and for numbers the type and
    range a value from the environment or a file must have (a flag is checked by its option)."""

    name: str
    default: Any
    help: str
    kind: type = str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # for words: the ones allowed

    @property
    def env(self) -> str:
        return "LEASEFS_" + self.name.upper()

    def parse(self, value: Any, source: str) -> Any:
        """``value`` as this setting's type, or `SettingsError` naming ``source``."""
        if self.kind is str:
            word = value if isinstance(value, str) else str(value)
            if self.choices and word not in self.choices:
                raise SettingsError(
                    f"{self.name} from {source} is {word!r}; it must be one of "
                    + ", ".join(repr(c) for c in self.choices)
                )
            return word
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{self.name} from {source} must be a number, not {value!r}"
            ) from None
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            at_most = "" if self.maximum is None else f" and at most {self.maximum:g}"
            raise SettingsError(
                f"{self.name} from {source} is {number:g}; it must be at least "
                f"{self.minimum or 0:g}{at_most}"
            )
        return number


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
    Setting(
        "insecure",
        None,
        "Set to 1 to talk plain http to a coordinator on another machine anyway: its tokens "
        "and code then cross the network unencrypted (leasefs --insecure).",
    ),
    # The mount (leasefs mount --wait/--ttl/--idle-grace)
    Setting(
        "wait",
        wire.WAIT_S,
        "Seconds a write waits for a file another agent holds before it fails with EBUSY; "
        "0: at once.",
        float,
        0.0,
        wire.MAX_WAIT_S,
    ),
    Setting(
        "ttl",
        wire.LEASE_TTL_S,
        "Lease TTL in seconds; the mount renews every TTL/3.",
        float,
        1.0,
        wire.MAX_LEASE_TTL_S,
    ),
    Setting(
        "idle_grace",
        wire.IDLE_GRACE_S,
        "Seconds the mount keeps a lease after the last write handle on its file closes.",
        float,
        0.0,
        3600.0,
    ),
    Setting(
        "lease_scope",
        "workspace",
        "Whom a lease excludes: 'workspace', every agent whatever its branch (two branches "
        "editing one file is tomorrow's merge conflict), or 'branch', only agents on the same "
        "branch. Set it in the repository's leasefs.toml so every clone agrees; a "
        "'workspace' lease still excludes agents of any scope.",
        choices=("workspace", "branch"),
    ),
    # The coordinator (leasefs serve --port/--max-…/--rate-limit/--break-timeout)
    Setting(
        "port",
        wire.DEFAULT_PORT,
        "Port the coordinator listens on; 0 picks a free one.",
        int,
        0,
        65535,
    ),
    Setting(
        "max_blob_bytes",
        wire.MAX_BLOB_BYTES,
        "Largest snapshot blob the coordinator accepts, in bytes.",
        int,
        1,
        None,
    ),
    Setting(
        "max_json_bytes",
        wire.MAX_JSON_BYTES,
        "Largest JSON request body the coordinator accepts, in bytes.",
        int,
        1024,
        None,
    ),
    Setting(
        "max_leases_per_agent",
        wire.MAX_LEASES_PER_AGENT,
        "Most leases one agent may hold at once.",
        int,
        1,
        None,
    ),
    Setting(
        "rate_limit",
        wire.RATE_LIMIT_PER_S,
        "Requests per second per agent the coordinator serves (bursts of twice that); 0: off.",
        float,
        0.0,
        None,
    ),
    Setting(
        "break_timeout",
        wire.BREAK_TIMEOUT_S,
        "Seconds a holder may keep a lease another agent waits for before it is not renewed.",
        float,
        0.0,
        None,
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
        return setting.parse(value, setting.env)
    sources = [repo / "leasefs.toml"] if repo is not None else []
    for path in [*sources, user_config_path()]:
        if name in (section := _read_toml(path)):
            return setting.parse(section[name], str(path))
    return setting.default
