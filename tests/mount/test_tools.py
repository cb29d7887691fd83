"""Editors and git work inside the mounts as they do outside."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.helpers import run, wait_for
from tests.mount.conftest import MountFactory


def test_vim_edits_and_saves_with_swap_and_backup_files(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    run("vim", "-u", "NONE", "-i", "NONE", "-es",
        "-c", "set swapfile backup writebackup backupcopy=no",
        "-c", "%s/v1/edited in vim/", "-c", "wq", "src/app.py", cwd=alice.repo)  # fmt: skip
    assert (alice.repo / "src" / "app.py").read_text() == "print('edited in vim')\n"
    assert not list(alice.repo.rglob("*.swp")), "vim's swap file was left behind"
    wait_for(lambda: (bob.repo / "src" / "app.py").read_text() == "print('edited in vim')\n",
             what="vim's save in bob's tree")  # fmt: skip


def test_git_works_in_both_mounts_at_once(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    errors: list[BaseException] = []

    def alice_commits() -> None:
        try:
            for i in range(3):
                (alice.repo / f"alice{i}.txt").write_text(f"{i}\n")
                run("git", "add", f"alice{i}.txt", cwd=alice.repo)
                run("git", "commit", "-qm", f"alice {i}", cwd=alice.repo)
                run("git", "status", "--short", cwd=alice.repo)
        except BaseException as exc:
            errors.append(exc)

    def bob_stashes() -> None:
        try:
            for _ in range(3):
                (bob.repo / "README.md").write_text("# bob's draft\n")
                run("git", "stash", cwd=bob.repo)
                assert (bob.repo / "README.md").read_text() == "# project\n"
                run("git", "stash", "pop", cwd=bob.repo)
                assert (bob.repo / "README.md").read_text() == "# bob's draft\n"
                run("git", "checkout", "--", "README.md", cwd=bob.repo)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=alice_commits), threading.Thread(target=bob_stashes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    log = run("git", "log", "--oneline", cwd=alice.repo).stdout
    assert "alice 2" in log
    assert run("git", "status", "--porcelain", cwd=alice.repo).stdout == ""
    run("git", "fsck", "--no-progress", cwd=alice.repo)
    wait_for(lambda: (bob.repo / "alice2.txt").exists(), what="alice's new files in bob's tree")


def test_python_compiles_and_runs_inside_the_mount(mount_agent: MountFactory) -> None:
    import sys

    alice = mount_agent("alice")
    (alice.repo / "src" / "mod.py").write_text("VALUE = 42\n")
    result = run(sys.executable, "-c", "import sys; sys.path.insert(0, 'src'); import mod; print(mod.VALUE)",
                 cwd=alice.repo)  # fmt: skip
    assert result.stdout.strip() == "42"
    run(sys.executable, "-m", "compileall", "-q", "src", cwd=alice.repo)
    assert any(Path(alice.repo / "src" / "__pycache__").iterdir())  # ignored: written freely
