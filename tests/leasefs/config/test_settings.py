"""Settings: every tunable declared once, read from flag, environment, repository file, user
file or default, in that order, and a bad value refused with where it came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leasefs import wire
from leasefs._config import SETTINGS, SettingsError, resolve


@pytest.fixture(autouse=True)
def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from this machine's environment or user config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)


def test_every_tunable_defaults_to_the_one_number_in_wire() -> None:
    defaults = {s.name: s.default for s in SETTINGS}
    assert defaults["ttl"] == wire.LEASE_TTL_S
    assert defaults["idle_grace"] == wire.IDLE_GRACE_S
    assert defaults["wait"] == wire.WAIT_S
    assert defaults["port"] == wire.DEFAULT_PORT
    assert defaults["break_timeout"] == wire.BREAK_TIMEOUT_S
    assert defaults["max_json_bytes"] == wire.MAX_JSON_BYTES


def test_a_flag_beats_the_environment_which_beats_the_repository_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "leasefs.toml").write_text("ttl = 12\n")
    assert resolve("ttl", None, tmp_path) == 12.0
    monkeypatch.setenv("LEASEFS_TTL", "9.5")
    assert resolve("ttl", None, tmp_path) == 9.5
    assert resolve("ttl", 4.0, tmp_path) == 4.0


def test_the_user_file_comes_after_the_repository_file(tmp_path: Path) -> None:
    user = tmp_path / "config" / "leasefs" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[leasefs]\nidle_grace = 7\nwait = 2\n")
    (tmp_path / "leasefs.toml").write_text("idle_grace = 1\n")
    assert resolve("idle_grace", None, tmp_path) == 1.0
    assert resolve("wait", None, tmp_path) == 2.0
    assert resolve("ttl", None, tmp_path) == wire.LEASE_TTL_S


def test_a_value_that_is_not_a_number_names_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASEFS_TTL", "soon")
    with pytest.raises(SettingsError, match="ttl from LEASEFS_TTL must be a number"):
        resolve("ttl")


def test_a_value_out_of_range_names_its_source_and_the_range(tmp_path: Path) -> None:
    (tmp_path / "leasefs.toml").write_text("ttl = 0.2\n")
    with pytest.raises(
        SettingsError, match=r"leasefs.toml is 0.2; it must be at least 1 and at most 3600"
    ):
        resolve("ttl", None, tmp_path)


def test_a_word_not_among_its_choices_names_its_source_and_the_choices(tmp_path: Path) -> None:
    assert resolve("lease_scope", None, tmp_path) == "workspace"
    (tmp_path / "leasefs.toml").write_text('lease_scope = "branch"\n')
    assert resolve("lease_scope", None, tmp_path) == "branch"
    (tmp_path / "leasefs.toml").write_text('lease_scope = "repo"\n')
    with pytest.raises(
        SettingsError, match=r"leasefs.toml is 'repo'; it must be one of 'workspace', 'branch'"
    ):
        resolve("lease_scope", None, tmp_path)


def test_serve_refuses_a_bad_port_from_the_environment(tmp_path: Path) -> None:
    env = {"LEASEFS_PORT": "seventy", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "leasefs", "serve", "--data", str(tmp_path / "data")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "port from LEASEFS_PORT must be a number" in result.stderr
