"""The coordinator over TLS (``--tls-cert/--tls-key``), as agents on other machines reach it.

A test certificate authority (trustme) signs the coordinator's certificate for 127.0.0.1;
clients trust it through ``ca_cert`` or the ``LEASEFS_CA_CERT`` setting, and refuse it
otherwise.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from leasefs import Client, CoordinatorUnavailable, LeasefsError
from tests.helpers import CoordinatorProcess, run, serving, wait_for
from tests.mount.conftest import MountFactory


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def coordinator(
    authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CoordinatorProcess]:
    """Overrides the session's plain-http coordinator for this module's mounts."""
    directory = tmp_path_factory.mktemp("tls")
    issued = authority.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    issued.private_key_pem.write_to_path(str(directory / "key.pem"))
    with serving(
        directory / "data",
        *("--tls-cert", str(directory / "cert.pem")),
        *("--tls-key", str(directory / "key.pem")),
    ) as server:
        yield server


async def test_the_coordinator_serves_https_to_clients_that_trust_its_ca(
    coordinator: CoordinatorProcess, ca_pem: Path
) -> None:
    assert coordinator.url.startswith("https://127.0.0.1:")
    async with Client(coordinator.url, ca_cert=ca_pem) as client:
        assert (await client.health()).status == "ok"
        await client.ensure_workspace("tls-team")
        await client.register("tls-team", "remote")
        grant = await client.acquire(["src/app.py"])
        assert [lease.path for lease in grant.leases] == ["src/app.py"]


async def test_clients_refuse_an_untrusted_certificate(coordinator: CoordinatorProcess) -> None:
    async with Client(coordinator.url) as client:  # public trust store: no test CA in it
        with pytest.raises(CoordinatorUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await client.health()


async def test_plain_http_gets_no_answer_from_the_tls_port(
    coordinator: CoordinatorProcess,
) -> None:
    async with Client(coordinator.url.replace("https://", "http://")) as client:
        with pytest.raises(CoordinatorUnavailable):
            await client.health()


async def test_the_ca_setting_comes_from_the_environment(
    coordinator: CoordinatorProcess, ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASEFS_CA_CERT", str(ca_pem))
    async with Client(coordinator.url) as client:
        assert (await client.health()).status == "ok"


def test_a_missing_ca_file_is_named(coordinator: CoordinatorProcess, tmp_path: Path) -> None:
    with pytest.raises(LeasefsError, match=r"cannot load the CA certificate .*nowhere\.pem"):
        Client(coordinator.url, ca_cert=tmp_path / "nowhere.pem")


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not used")
    result = run(
        sys.executable, "-m", "leasefs", "serve", "--port", "0", "--data", tmp_path / "data",
        "--tls-cert", tmp_path / "cert.pem", check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr


def test_mounts_take_leases_over_tls(
    mount_agent: MountFactory, ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASEFS_CA_CERT", str(ca_pem))
    alice = mount_agent("alice")
    bob = mount_agent("bob")
    with open(alice.repo / "src" / "app.py", "a") as held:
        held.write("# alice was here\n")
        held.flush()
        with pytest.raises(OSError) as refused, open(bob.repo / "src" / "app.py", "a") as f:
            f.write("# bob too\n")
        assert refused.value.errno == errno.EBUSY
    wait_for(
        lambda: "alice was here" in (bob.repo / "src" / "app.py").read_text(),
        what="alice's edit reaching bob over TLS",
    )
