"""Every setting and every command is documented in the README."""

from __future__ import annotations

from pathlib import Path

import typer.main

from leasefs._config import SETTINGS
from leasefs.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()


def command_names(group: typer.Typer, prefix: str = "leasefs") -> list[str]:
    click_group = typer.main.get_group(group)
    names = []
    for name, command in click_group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            names += [f"{prefix} {name} {sub}" for sub in command.commands]
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_setting_is_documented() -> None:
    for setting in SETTINGS:
        assert f"`{setting.name}`" in README, setting.name
        assert f"`{setting.env}`" in README, setting.env


def test_every_command_is_documented() -> None:
    names = command_names(app)
    assert "leasefs mount" in names and "leasefs coordinator start" in names
    for name in names:
        assert f"`{name}" in README, f"{name} is not in the README"
