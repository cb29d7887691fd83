"""The repositories the benchmark runs on, generated so every run sees the same shape.

The tree looks like a code base: nested folders of text files and a package of Python
modules, one committed git history, packed (so ``.git`` is a few files, as after a clone),
``__pycache__/`` and ``ignored/`` git-ignored (so the mount passes them through unleased).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from .procs import run

NEEDLE = "leasefs-bench-needle"
"""A string in about one file in a hundred, for ``grep -r``."""

OUTPUT_DIR = "bench-out"  # leased: a normal folder, committed with a placeholder
IGNORED_DIR = "ignored"  # git-ignored: the mount passes it through without leases
PACKAGE_DIR = "pkg"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip

_WORDS = [
    "lease", "agent", "mount", "snapshot", "version", "event", "token", "renew", "queue",
    "commit", "kernel", "cache", "inode", "handle", "rename", "grace",
]  # fmt: skip


def git(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    """git with a fixed identity and no system config, so runs do not depend on the host."""
    env = {**os.environ, **GIT_ENV}
    return run(["git", *args], cwd=cwd, timeout=timeout, env=env).stdout


@dataclass(frozen=True)
class TreeShape:
    files: int
    modules: int
    bytes: int


def _text(rng: random.Random, index: int) -> str:
    lines = [" ".join(rng.choices(_WORDS, k=12)) for _ in range(rng.randint(10, 40))]
    if index % 100 == 7:
        lines.insert(rng.randrange(len(lines)), f"# {NEEDLE} {index}")
    return "\n".join(lines) + "\n"


def _module(rng: random.Random, index: int) -> str:
    """A module with enough functions and classes that byte-compiling it costs something."""
    parts = [f'"""Generated module {index}."""\n\nimport os\n\nCONSTANT = {index}\n']
    for n in range(rng.randint(4, 10)):
        word = rng.choice(_WORDS)
        parts.append(
            f"\n\ndef {word}_{n}(value: int, items: list[int]) -> int:\n"
            f'    """{" ".join(rng.choices(_WORDS, k=8))}."""\n'
            f"    total = value * {rng.randint(1, 99)}\n"
            f"    for item in items:\n"
            f"        if item % {rng.randint(2, 9)} == 0:\n"
            f"            total += item\n"
            f"        else:\n"
            f"            total -= len(os.sep) + item\n"
            f"    return total\n"
            f"\n\nclass {word.title()}{n}:\n"
            f"    def __init__(self) -> None:\n"
            f"        self.name = {word!r}\n"
            f"        self.values = [{', '.join(str(rng.randint(0, 999)) for _ in range(8))}]\n"
            f"\n    def size(self) -> int:\n"
            f"        return sum(self.values) + {word}_{n}(1, self.values)\n"
        )
    return "".join(parts)


def _fanout(count: int, per_dir: int) -> list[str]:
    """Nested folder names (two levels) for ``count`` files, ``per_dir`` files per folder."""
    folders = max(1, -(-count // per_dir))
    return [f"d{i // 10:03d}/e{i % 10}" for i in range(folders)]


def _make_package(root: Path, folder: Path) -> None:
    """``folder`` and each parent below ``root`` get an ``__init__.py``: one importable tree."""
    folder.mkdir(parents=True)
    current = folder
    while current != root:
        (current / "__init__.py").touch()
        current = current.parent


def generate(root: Path, files: int, modules: int, seed: int = 5) -> TreeShape:
    """Write the working tree (not yet a repository) under ``root``."""
    rng = random.Random(seed)
    size = 0
    root.mkdir(parents=True)
    (root / ".gitignore").write_text(f"__pycache__/\n{IGNORED_DIR}/\n*.pyc\n")
    (root / IGNORED_DIR).mkdir()
    (root / OUTPUT_DIR).mkdir()
    (root / OUTPUT_DIR / "README").write_text("benchmark output lands here\n")
    text_files = files - modules - 2
    folders = _fanout(text_files, 25)
    for index in range(text_files):
        folder = root / "src" / folders[index % len(folders)]
        folder.mkdir(parents=True, exist_ok=True)
        size += (folder / f"f{index:05d}.txt").write_text(_text(rng, index))
    package_folders = _fanout(modules, 25)
    for index in range(modules):
        folder = root / PACKAGE_DIR / package_folders[index % len(package_folders)]
        if not folder.exists():
            _make_package(root, folder)
        size += (folder / f"mod_{index:05d}.py").write_text(_module(rng, index))
    return TreeShape(files=files, modules=modules, bytes=size)


def make_repository(root: Path, files: int, modules: int) -> TreeShape:
    """Generate the tree, commit it, and pack the objects (as a fresh clone has them)."""
    shape = generate(root, files, modules)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "generated tree", cwd=root)
    git("repack", "-a", "-d", "-q", cwd=root)
    git("prune-packed", cwd=root)
    return shape


def copy_repository(source: Path, dest: Path) -> None:
    """An identical copy, index refreshed (a copy's index has stale inode and ctime data)."""
    run(["cp", "-a", source, dest], timeout=600)
    git("status", "--porcelain", cwd=dest)


def make_origin(bare: Path, seed_dir: Path, files: dict[str, str]) -> None:
    """A bare repository holding ``files`` (repo-relative path -> text), for clones."""
    git("init", "-q", "--bare", "-b", "main", bare, cwd=bare.parent)
    seed_dir.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=seed_dir)
    for relative, text in files.items():
        path = seed_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git("add", "-A", cwd=seed_dir)
    git("commit", "-q", "-m", "origin", cwd=seed_dir)
    git("push", "-q", bare, "main", cwd=seed_dir)


def clone(origin: Path, dest: Path) -> None:
    git("clone", "-q", origin, dest, cwd=dest.parent)
