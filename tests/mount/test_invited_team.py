"""A team on a coordinator that admits by invitation, as the README's "Several machines" has
it: the owner creates the workspace with the admin secret, invites; the invited user joins
(each user with their own config); both mount, edit and hand off; an uninvited user cannot
mount; a revoked member's mount stops writing."""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.helpers import CoordinatorProcess, leasefs_cli, run, wait_for
from tests.mount.conftest import MountFactory


@pytest.fixture(params=["http", "https"])
def closed(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CoordinatorProcess]:
    """A coordinator that admits by invitation; over https, as across machines: on an address
    of its own (127.0.0.2, not the 127.0.0.1 the machines' agents come from), with a
    certificate for that address only, its test CA trusted through LEASEFS_CA_CERT by every
    command and mount made next."""
    tls: list[str] = []
    host = "127.0.0.1"
    if request.param == "https":
        host = "127.0.0.2"
        authority = trustme.CA()
        issued = authority.issue_cert(host)
        issued.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
        issued.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("LEASEFS_CA_CERT", str(tmp_path / "ca.pem"))
        tls = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    server = CoordinatorProcess(tmp_path / "closed", "--join", "invite", *tls, host=host)
    server.start()
    assert server.url.startswith(f"{request.param}://{host}:")
    try:
        yield server
    finally:
        server.kill()


def as_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, user: str) -> dict[str, str]:
    """This user's own config directory, for the commands and mounts made next."""
    config = tmp_path / f"{user}-config"
    config.mkdir(exist_ok=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return {**os.environ, "LEASEFS_DATA_DIR": str(tmp_path / f"{user}-cli")}


def content(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def test_an_invited_team_shares_a_workspace_and_a_revoked_member_stops_writing(
    mount_agent: MountFactory,
    closed: CoordinatorProcess,
    workspace_name: str,
    origin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = (closed.data_dir / "admin-secret").read_text().strip()
    env = as_user(monkeypatch, tmp_path, "alice")
    created = leasefs_cli("join", "--coordinator", closed.url, "--workspace", workspace_name,
                          "--admin-secret", secret, "--name", "alice", env=env)  # fmt: skip
    assert f"joined {workspace_name} as alice (owner)" in created.stdout
    alice = mount_agent("alice", coordinator_url=closed.url)
    invited = alice.leasefs("invite", "--role", "member", cwd=alice.repo).stdout
    line = re.search(r"leasefs join '([^']+)'", invited)
    assert line is not None, invited

    # An uninvited user cannot even mount: the mount says why and stops.
    as_user(monkeypatch, tmp_path, "eve")
    with pytest.raises(Exception, match=r"invitation"):
        mount_agent("eve", coordinator_url=closed.url)

    env = as_user(monkeypatch, tmp_path, "bob")
    bob_repo = tmp_path / "bob"  # bob's clone, joined from inside it before it is mounted
    run("git", "clone", "-q", origin, bob_repo)
    (bob_repo / "leasefs.toml").write_text('# ours\nworkspace = "old"\n\n[checks]\ntest = "true"\n')
    joined = leasefs_cli("join", line.group(1), "--name", "bob", env=env, cwd=bob_repo).stdout
    assert f"joined {workspace_name} as bob (member)" in joined
    assert "; workspace was old" in joined and f"leasefs mount {bob_repo}" in joined
    settings = tomllib.loads((bob_repo / "leasefs.toml").read_text())
    assert settings == {"coordinator": closed.url, "workspace": workspace_name,
                        "checks": {"test": "true"}}  # fmt: skip
    assert (bob_repo / "leasefs.toml").read_text().startswith("# ours\n")
    # The recorded settings and the stored credential are all a command in the clone needs.
    listed = leasefs_cli("members", env=env, cwd=bob_repo).stdout
    assert re.search(r"bob\tmember", listed), listed
    stored = tmp_path / "bob-config" / "leasefs" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    replayed = leasefs_cli("join", line.group(1), "--name", "bob2", env=env, check=False)
    assert replayed.returncode == 1 and "not valid" in replayed.stderr
    bob = mount_agent("bob", "--wait", "20", coordinator_url=closed.url)

    (alice.repo / "src" / "app.py").write_text("print('alice')\n")
    wait_for(lambda: content(bob.repo / "src" / "app.py") == "print('alice')\n",
             what="alice's edit in bob's tree")  # fmt: skip
    with open(bob.repo / "src" / "app.py", "a") as f:
        f.write("print('bob')\n")
    wait_for(lambda: content(alice.repo / "src" / "app.py") == "print('alice')\nprint('bob')\n",
             what="bob's edit in alice's tree")  # fmt: skip

    listed = alice.leasefs("members", cwd=alice.repo).stdout
    assert re.search(r"alice\towner", listed) and re.search(r"bob\tmember", listed), listed
    assert re.search(r"bob@\S+ \(leasefs-mount\)", listed), listed
    refused = bob.leasefs("invite", cwd=bob.repo, check=False)
    assert refused.returncode == 1 and "needs the admin role" in refused.stderr

    revoked = alice.leasefs("revoke", "bob", cwd=alice.repo).stdout
    assert "revoked bob (member)" in revoked
    # bob's mount fails closed: every change in scope is refused from now on.
    with pytest.raises(OSError) as stopped:
        (bob.repo / "README.md").write_text("bob was revoked\n")
    assert stopped.value.errno == errno.ENOLCK
    assert content(alice.repo / "README.md") == "# project\n"
