"""Settings and their sources: flags > environment > leasefs.toml > user config > defaults."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PORT = 7420
DEFAULT_MAX_BLOB_BYTES = 1 << 30


def default_data_dir() -> Path:
    """Where leasefs keeps local state: ``$XDG_DATA_HOME/leasefs``, else ``~/.local/share/leasefs``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "leasefs"
