"""A held file refuses every kind of write from another agent's mount, whatever the tool."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import CoordinatorProcess, audit_actions, run, wait_for
from tests.mount.conftest import MountFactory


def tree(repo: Path) -> dict[str, bytes]:
    """Every file of the working tree (not .git) with its bytes."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


WRITES = {
    # The open succeeds and its first write is refused (bash says why; dash's echo would
    # report any failed write as "I/O error").
    "echo >>": ["bash", "-c", "echo bob >> src/app.py"],
    "sed -i": ["sed", "-i", "s/v1/bob/", "src/app.py"],
    "python open w": [sys.executable, "-c", "open('src/app.py', 'w').write('bob')"],
    "mv onto": ["mv", "-f", "spare.txt", "src/app.py"],
    "mv away": ["mv", "src/app.py", "moved.py"],
    "rm": ["rm", "-f", "src/app.py"],
    "cp onto": ["cp", "spare.txt", "src/app.py"],
    "truncate": ["truncate", "-s", "0", "src/app.py"],
    "chmod": ["chmod", "600", "src/app.py"],
    "git checkout": ["git", "checkout", "HEAD~1", "--", "src/app.py"],
}


@pytest.mark.parametrize("transport", [(), ("--file-handles",)], ids=["inodes", "handles"])
def test_held_file_refuses_every_tool_and_leaves_the_tree_unchanged(
    mount_agent: MountFactory, transport: tuple[str, ...]
) -> None:
    """Both ways of serving files (no per-open requests, and a handle per open) enforce the
    same: at the first change, whatever opened the file."""
    alice, bob = mount_agent("alice", *transport), mount_agent("bob", *transport)
    (bob.repo / "spare.txt").write_text("spare\n")
    with open(alice.repo / "src" / "app.py", "a") as held:
        held.write("# alice is editing\n")
        held.flush()
        before = tree(bob.repo)
        for name, command in WRITES.items():
            result = run(*command, cwd=bob.repo, check=False)
            assert result.returncode != 0, f"{name} succeeded on a held file"
            assert "busy" in (result.stdout + result.stderr).lower(), (name, result.stderr)
            assert tree(bob.repo) == before, f"{name} changed bob's tree"
        who = bob.leasefs("who", str(bob.repo / "src" / "app.py")).stdout
        assert "held by alice" in who
        holder = run("getfattr", "-n", "user.leasefs.holder", "--only-values",
                     bob.repo / "src" / "app.py").stdout  # fmt: skip
        assert '"agent": "alice"' in holder
    # Released (with its snapshot) after the idle grace: bob gets alice's bytes.
    wait_for(lambda: (bob.repo / "src" / "app.py").read_text() == "print('v1')\n# alice is editing\n",
             what="alice's content in bob's tree")  # fmt: skip


def test_ignored_and_git_paths_are_not_leased(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    with open(alice.repo / "build.log", "w") as a_log, open(bob.repo / "build.log", "w") as b_log:
        a_log.write("alice")
        b_log.write("bob")  # both at once: *.log is ignored, so never leased
    status = alice.leasefs("status", str(alice.repo)).stdout
    assert "no leases held" in status
    run("git", "status", cwd=alice.repo)
    run("git", "status", cwd=bob.repo)
    assert (bob.repo / "build.log").read_text() == "bob"


def test_zones_are_enforced_on_every_write_in_the_mount(
    mount_agent: MountFactory, coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    alice = mount_agent("alice")

    def zone(*args: str) -> None:  # run inside the mount: acts as alice's agent, in her workspace
        alice.leasefs("zone", *args, cwd=alice.repo)

    zone("add", "README.md", "--level", "block", "--reason", "frozen for the release")
    zone("add", "src/**", "--level", "confirm", "--reason", "the core needs a reviewer")
    zone("add", ".gitignore", "--level", "warn", "--reason", "affects everyone")
    # bash, not sh: dash reports any failed write as "I/O error", whatever the errno.
    blocked = run("bash", "-c", "echo x >> README.md", cwd=alice.repo, check=False)
    assert blocked.returncode != 0 and "permission denied" in blocked.stderr.lower()
    unconfirmed = run("bash", "-c", "echo x >> src/app.py", cwd=alice.repo, check=False)
    assert unconfirmed.returncode != 0 and "permission denied" in unconfirmed.stderr.lower()
    zone("allow", "src/app.py", "--for", "alice")
    run("sh", "-c", "echo '# reviewed' >> src/app.py", cwd=alice.repo)
    run("sh", "-c", "echo '*.tmp' >> .gitignore", cwd=alice.repo)
    assert ("zone.warned", "alice") in audit_actions(coordinator.url, workspace_name, ".gitignore")
    assert (alice.repo / "README.md").read_text() == "# project\n"
    listed = alice.leasefs("zone", "list", cwd=alice.repo).stdout
    assert "block\tREADME.md\tfrozen for the release" in listed
