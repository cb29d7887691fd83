"""Other user ids in a mounted tree (``sudo -u``, a build user, a container as root):
shut out by default, let in by ``--allow-other`` with the kernel checking every permission as
natively, and their writes leased as the mount's agent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from leasefs import Client
from leasefs._fs import OtherUsers, other_users_refusal
from tests.helpers import run, wait_for
from tests.mount.conftest import MountFactory

NOBODY = 65534


def append_as_nobody(path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """A real shell of another user (uid and gid 65534, no supplementary groups) appending
    ``text`` to ``path`` (the project's Python lives where that user may not go). bash: dash
    reports any failed write as "I/O error", whatever the errno."""
    return subprocess.run(
        ["/bin/bash", "-c", 'printf %s "$2" >> "$1"', "sh", str(path), text], user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/",
    )  # fmt: skip


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """This module's folders, where another user may walk: pytest's own base stays 0700 (and
    a pytest session starting meanwhile sets it back to 0700), so they live beside it."""
    folder = Path(tempfile.mkdtemp(prefix="leasefs-other-users-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_other_users_are_refused_without_allow_other(mount_agent: MountFactory) -> None:
    alice = mount_agent("alice")
    (alice.repo / "README.md").chmod(0o666)
    refused = append_as_nobody(alice.repo / "README.md", "nobody\n")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_allow_other_lets_another_user_write_leased_enforced_and_attributed(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--allow-other", "--idle-grace", "60")
    bob = mount_agent("bob", "--idle-grace", "60")
    readme, app = alice.repo / "README.md", alice.repo / "src" / "app.py"
    readme.chmod(0o666)
    app.chmod(0o666)
    (alice.repo / "src").chmod(0o777)
    alice.leasefs("release", str(alice.repo))  # the chmods above took leases: give them back
    wait_for(lambda: "no leases held" in alice.leasefs("status", str(alice.repo)).stdout,
             what="alice's leases to go back")  # fmt: skip

    # Bob holds README.md: another user's write in alice's tree is refused like alice's own.
    (bob.repo / "README.md").write_text("# bob's\n")
    before = readme.read_bytes()
    busy = append_as_nobody(readme, "nobody\n")
    assert busy.returncode != 0 and "Device or resource busy" in busy.stderr
    assert readme.read_bytes() == before

    # A file nobody else holds: written, and leased as alice's mount agent.
    done = append_as_nobody(app, "# nobody was here\n")
    assert done.returncode == 0, done.stderr
    assert app.read_text().endswith("# nobody was here\n")
    status = alice.leasefs("status", str(alice.repo)).stdout
    assert "src/app.py  held" in status and "agent alice" in status
    holder = run("getfattr", "--only-values", "-n", "user.leasefs.holder", app, check=False)
    assert '"agent": "alice"' in holder.stdout

    # A new file is the other user's, as natively.
    created = append_as_nobody(alice.repo / "src" / "new.py", "x = 1\n")
    assert created.returncode == 0, created.stderr
    assert (alice.repo / "src" / "new.py").stat().st_uid == NOBODY

    # The kernel still checks permissions: a 0644 file of root's stays root's.
    locked = alice.repo / ".gitignore"
    assert locked.stat().st_mode & 0o777 == 0o644
    denied = append_as_nobody(locked, "nobody\n")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


def test_allow_root_and_allow_other_go_alone(mount_agent: MountFactory, tmp_path: Path) -> None:
    repo = tmp_path / "plain"
    repo.mkdir()
    both = subprocess.run(
        [sys.executable, "-m", "leasefs", "mount", str(repo), "--allow-root", "--allow-other"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "LEASEFS_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert both.returncode == 1 and "--allow-other lets root in too" in both.stderr


def test_a_user_mount_is_told_how_to_enable_user_allow_other() -> None:
    message = other_users_refusal(OtherUsers.ALL, 1000, "# mount_max = 1000\n#user_allow_other\n")
    assert message is not None
    assert "user_allow_other" in message and "/etc/fuse.conf" in message
    assert other_users_refusal(OtherUsers.ROOT, 1000, None) is not None
    assert other_users_refusal(OtherUsers.ALL, 1000, "user_allow_other\n") is None
    assert other_users_refusal(OtherUsers.ALL, 0, None) is None  # root may anyway
    assert other_users_refusal(OtherUsers.NONE, 1000, None) is None


def test_another_users_write_under_a_leasefs_run_is_that_runs_agent(
    mount_agent: MountFactory,
) -> None:
    """`sudo -u` (here setpriv) inside an agent's `leasefs run`: the other user's process
    descends from the run, so its write is leased and recorded as the run's agent."""
    alice = mount_agent("alice", "--allow-other", "--idle-grace", "60")
    app = alice.repo / "src" / "app.py"
    app.chmod(0o666)
    alice.leasefs("release", str(alice.repo))
    wait_for(lambda: "no leases held" in alice.leasefs("status", str(alice.repo)).stdout,
             what="alice's leases to go back")  # fmt: skip
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 "/bin/bash", "-c", f"printf '# carol via nobody\\n' >> {app}"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "leasefs", "run", "--agent", "carol", "--", *as_nobody],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=alice.env, cwd=alice.repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert app.read_text().endswith("# carol via nobody\n")
    assert "free" in alice.leasefs("who", str(app)).stdout  # carol's run ended: given back
    record = alice.record()
    assert record is not None

    async def author() -> str | None:
        async with Client(record.coordinator, record.token) as client:
            version = await client.latest_version("src/app.py")
        return version.author.name if version else None

    assert trio.run(author) == "carol"
