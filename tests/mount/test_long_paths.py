"""Paths longer than PATH_MAX from the repository's root, reached as natively from a deep
current folder: created, written, changed, renamed, linked, leased and released."""

from __future__ import annotations

import os
from pathlib import Path

from tests.mount.conftest import MountFactory

COMPONENT = "d" * 200


def test_a_file_deeper_than_path_max_works_from_a_deep_folder(mount_agent: MountFactory) -> None:
    alice = mount_agent("alice")
    deep = alice.repo / "deep" / COMPONENT / COMPONENT
    deep.mkdir(parents=True)
    here = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(19):  # 19 x 201 bytes: under PATH_MAX from here, over it from the root
            os.mkdir(COMPONENT, dir_fd=here)
            below = os.open(COMPONENT, os.O_RDONLY | os.O_DIRECTORY, dir_fd=here)
            os.close(here)
            here = below
        os.close(here)
        here = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
        name = "/".join([COMPONENT] * 19) + "/file.txt"
        from_root = f"{deep.relative_to(alice.repo)}/{name}"
        assert len(name) < 4096 < len(from_root)
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=here)
        os.write(fd, b"deep\n")
        os.close(fd)
        os.chmod(name, 0o600, dir_fd=here)
        assert os.stat(name, dir_fd=here).st_mode & 0o777 == 0o600
        os.rename(name, name + ".moved", src_dir_fd=here, dst_dir_fd=here)
        os.link(name + ".moved", name, src_dir_fd=here, dst_dir_fd=here)
        assert os.stat(name, dir_fd=here).st_nlink == 2
        fd = os.open(name, os.O_RDONLY, dir_fd=here)
        assert os.read(fd, 100) == b"deep\n"
        os.close(fd)
        os.unlink(name + ".moved", dir_fd=here)
        assert os.stat(name, dir_fd=here).st_nlink == 1
    finally:
        os.close(here)
    alice.leasefs("release", str(alice.repo))
    assert "Traceback" not in alice.output(), alice.output()[-3000:]
    assert Path(alice.repo).exists()
