"""The embedded coordinator: started on demand, reused, stopped; never two at once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from leasefs._client import _embedded
from tests.helpers import leasefs_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A private HOME, so the test's embedded coordinator is its own; stopped afterwards."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "LEASEFS_DATA_DIR", "LEASEFS_COORDINATOR"):
        monkeypatch.delenv(name, raising=False)
    env = {**os.environ}
    try:
        yield env
    finally:
        running = _embedded.read_state()
        if running is not None:
            _embedded.stop()


def leasefs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return leasefs_cli(*args, env=env, check=False, timeout=60)


def test_started_on_demand_under_local_data_and_reused(
    home: dict[str, str], tmp_path: Path
) -> None:
    assert leasefs(home, "coordinator", "status").returncode == 1
    first = leasefs(home, "coordinator", "start")
    assert first.returncode == 0, first.stderr
    url = first.stdout.split()[0]
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/v1/health", timeout=5).json()["status"] == "ok"
    assert (tmp_path / ".local/share/leasefs/coordinator/coordinator.sqlite3").exists()
    second = leasefs(home, "coordinator", "start")
    assert second.stdout == first.stdout, "a running embedded coordinator must be reused"
    assert leasefs(home, "coordinator", "stop").stdout.strip() == "stopped"
    assert leasefs(home, "coordinator", "status").returncode == 1


def test_concurrent_starts_start_one_server(home: dict[str, str]) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: leasefs(home, "coordinator", "start"), range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len({r.stdout for r in results}) == 1


def test_configured_url_wins_over_embedded(
    home: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASEFS_COORDINATOR", "http://127.0.0.1:9/")
    assert _embedded.resolve_coordinator_url(None) == "http://127.0.0.1:9"
    assert _embedded.resolve_coordinator_url("http://flag:1") == "http://flag:1"
    assert _embedded.read_state() is None, "a configured URL must not start the embedded one"


def test_restarted_after_it_died(home: dict[str, str]) -> None:
    first = _embedded.ensure_running()
    os.kill(first.pid, 9)
    second = _embedded.ensure_running()
    assert second.pid != first.pid
    assert httpx.get(second.url + "/v1/health", timeout=5).status_code == 200
