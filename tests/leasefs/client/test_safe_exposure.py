"""No way to expose a coordinator, or a token, over plain http by accident: `leasefs serve`
on an address other machines can reach needs TLS or --insecure, and clients refuse plain
http to another machine unless told --insecure."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from leasefs import Client, InsecureTransport
from leasefs._client import CoordinatorUnavailable
from leasefs.wire import is_loopback_host, is_plain_remote
from tests.helpers import run

UNROUTABLE = "http://192.0.2.1:9"  # TEST-NET-1: never answers


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.8.7", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False),
     ("10.0.0.5", False), ("example.com", False), ("localhost.example.com", False)],
)  # fmt: skip
def test_which_hosts_are_this_machine_only(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_plain_remote_means_http_off_this_machine() -> None:
    assert is_plain_remote("http://10.0.0.5:7420")
    assert not is_plain_remote("https://10.0.0.5:7420")
    assert not is_plain_remote("http://127.0.0.1:7420")
    assert not is_plain_remote("http://localhost:7420")


async def test_a_client_refuses_plain_http_to_another_machine_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LEASEFS_INSECURE", raising=False)
    async with Client(UNROUTABLE, "a-secret-token", timeout=0.5) as client:
        with pytest.raises(InsecureTransport, match=r"refusing to talk plain http to .*--insecure"):
            await client.health()
        with pytest.raises(InsecureTransport):
            await client.register("ws", "alice")  # no token yet, but one would come back


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_told_insecure_a_client_does_send(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEASEFS_INSECURE", raising=False)
    if how == "environment":
        monkeypatch.setenv("LEASEFS_INSECURE", "1")
    insecure = True if how == "argument" else None
    async with Client(UNROUTABLE, "token", timeout=0.5, insecure=insecure) as client:
        with pytest.raises(CoordinatorUnavailable):  # it tried: nobody answers there
            await client.health()


def test_serve_refuses_plain_http_on_a_reachable_address(tmp_path: Path) -> None:
    result = run(
        sys.executable, "-m", "leasefs", "serve", "--host", "0.0.0.0", "--port", "0",
        "--data", tmp_path / "data", check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result
    assert "refusing to serve plain http on 0.0.0.0" in result.stderr
    assert "--tls-cert" in result.stderr and "--insecure" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_serve_insecure_starts_and_warns(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "leasefs", "serve", "--host", "0.0.0.0", "--port", "0",
         "--data", str(tmp_path / "data"), "--insecure"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines = []
        while not lines or "listening on" not in lines[-1]:
            ready, _, _ = select.select([server.stdout], [], [], 60)
            assert ready, f"the coordinator said nothing more within 60 s: {lines}"
            lines.append(server.stdout.readline())
            assert lines[-1], f"the coordinator stopped: {lines}"  # empty: it died
        # Off loopback it admits by invitation: its admin secret is shown on the first start.
        assert any("admin secret (shown once" in line for line in lines), lines
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate(timeout=10)
    assert "WARNING: serving plain http on 0.0.0.0 (--insecure)" in stderr
