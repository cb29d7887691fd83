"""The in-place passthrough, through real mounts: what tools do to a repository works."""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyfuse3
import pytest

from leasefs._fs import ROOT_INODE, InodeId, fuse_handler, quiet_handler
from leasefs._fs._inode_files import DEFAULT_CAPACITY
from leasefs._fs._inodes import InodeTable
from leasefs._fs._passthrough import LISTINGS_BY_INODE, LISTINGS_CACHED
from tests.helpers import requires_fuse, run

from .conftest import MountFactory

CMD_TIMEOUT = 60

_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old: Path, new: Path, flags: int) -> None:
    at_fdcwd = -100
    if _libc.renameat2(at_fdcwd, bytes(old), at_fdcwd, bytes(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(old))


def snapshot(root: Path) -> dict[str, object]:
    """Every entry below `root`: file contents, symlink targets, 'dir' for directories."""
    seen: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                seen[rel] = "dir"
            else:
                seen[rel] = path.read_bytes()
    return seen


# -- the error wrapper, without a mount --------------------------------------------------


async def test_handler_maps_oserror_to_its_errno() -> None:
    @fuse_handler
    async def handler() -> None:
        raise FileNotFoundError(errno.ENOENT, "gone")

    with pytest.raises(pyfuse3.FUSEError) as info:
        await handler()
    assert info.value.errno == errno.ENOENT


async def test_handler_turns_unexpected_exception_into_eio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @fuse_handler
    async def handler() -> int:
        raise KeyError("bug")

    with pytest.raises(pyfuse3.FUSEError) as info:
        await handler()
    assert info.value.errno == errno.EIO
    assert "failed unexpectedly" in caplog.text


async def test_handler_passes_fuse_error_and_result_through() -> None:
    @fuse_handler
    async def busy() -> None:
        raise pyfuse3.FUSEError(errno.EBUSY)

    @fuse_handler
    async def fine(x: int) -> int:
        return x + 1

    with pytest.raises(pyfuse3.FUSEError) as info:
        await busy()
    assert info.value.errno == errno.EBUSY
    assert await fine(1) == 2


async def test_quiet_handler_swallows_everything(caplog: pytest.LogCaptureFixture) -> None:
    @quiet_handler
    async def release() -> None:
        raise RuntimeError("bug")

    await release()
    assert "failed unexpectedly" in caplog.text


# -- the inode table, without a mount ------------------------------------------------------


def _st(ino: int, mode: int = stat.S_IFREG | 0o644) -> os.stat_result:
    return os.stat_result((mode, ino, 7, 1, 0, 0, 0, 0, 0, 0))


def test_inode_numbers_are_the_backing_ones_when_free() -> None:
    table = InodeTable(_st(2, stat.S_IFDIR | 0o755))
    assert table.lookup("a", _st(500)) == 500
    assert table.lookup("a", _st(500)) == 500
    assert table.lookups(InodeId(500)) == 2
    hard_link = table.lookup("b", _st(500))  # same backing file, another name
    assert hard_link not in (500, ROOT_INODE)
    assert table.lookup("c", _st(1)) not in (1, 500, hard_link)  # 1 is always the root


def test_replaced_backing_file_gets_a_new_inode_and_the_old_one_is_detached() -> None:
    table = InodeTable(_st(2, stat.S_IFDIR | 0o755))
    old = table.lookup("a", _st(500))
    new = table.lookup("a", _st(600))
    assert new != old
    assert table.path_of(old) is None
    assert table.path_of(new) == "a"
    table.forget(old, 1)
    assert old not in table


def test_rename_of_a_directory_moves_everything_below_it() -> None:
    table = InodeTable(_st(2, stat.S_IFDIR | 0o755))
    table.lookup("d", _st(10, stat.S_IFDIR | 0o755))
    f = table.lookup("d/e/f", _st(11))
    other = table.lookup("dd/f", _st(12))
    target = table.lookup("x", _st(13))
    table.renamed("d", "x")
    assert table.path_of(f) == "x/e/f"
    assert table.path_of(other) == "dd/f"  # a sibling that merely shares the prefix
    assert table.path_of(target) is None
    assert table.id_of("d/e/f") is None


def test_exchange_swaps_paths_and_forget_frees_numbers() -> None:
    table = InodeTable(_st(2, stat.S_IFDIR | 0o755))
    a = table.lookup("a", _st(20))
    b = table.lookup("b", _st(21, stat.S_IFDIR | 0o755))
    inner = table.lookup("b/i", _st(22))
    table.exchanged("a", "b")
    assert (table.path_of(a), table.path_of(b), table.path_of(inner)) == ("b", "a", "a/i")
    table.unlinked("a")
    assert table.path_of(inner) is None
    for inode in (a, b, inner):
        table.forget(inode, 1)
    assert len(table) == 1  # only the root is left
    table.forget(ROOT_INODE, 5)
    assert table.path_of(ROOT_INODE) == ""


def test_rename_between_two_names_of_one_file_changes_nothing() -> None:
    table = InodeTable(_st(2, stat.S_IFDIR | 0o755))
    a = table.lookup("a", _st(30))
    b = table.lookup("b", _st(30))
    table.renamed("a", "b")
    assert (table.path_of(a), table.path_of(b)) == ("a", "b")


# -- files ---------------------------------------------------------------------------------


@requires_fuse
def test_files_created_before_mounting_are_visible(repo: Path, mount_dir: MountFactory) -> None:
    (repo / "a.txt").write_text("before")
    (repo / "src").mkdir()
    (repo / "src" / "m.py").write_text("print(1)\n")
    os.symlink("a.txt", repo / "link")
    mount_dir(repo)
    assert (repo / "a.txt").read_text() == "before"
    assert (repo / "src" / "m.py").read_text() == "print(1)\n"
    assert os.readlink(repo / "link") == "a.txt"
    assert sorted(os.listdir(repo)) == ["a.txt", "link", "src"]


@requires_fuse
def test_mount_hides_nothing_and_reports_backing_inode_numbers(
    repo: Path, mount_dir: MountFactory
) -> None:
    (repo / "a.txt").write_text("x")
    before = os.stat(repo / "a.txt")
    mount_dir(repo)
    during = os.stat(repo / "a.txt")
    assert during.st_ino == before.st_ino  # keeps git's index (which records st_ino) valid
    assert during.st_dev != before.st_dev
    assert (during.st_size, during.st_mtime_ns, during.st_mode) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_mode,
    )


@requires_fuse
def test_write_read_and_append(mnt: Path) -> None:
    path = mnt / "f.txt"
    path.write_bytes(b"hello")
    with open(path, "ab") as f:
        f.write(b" world")
    assert path.read_bytes() == b"hello world"
    with open(path, "r+b") as f:
        f.seek(6)
        f.write(b"W")
        f.seek(0)
        assert f.read() == b"hello World"
    big = os.urandom(3 * 1024 * 1024 + 17)
    (mnt / "big.bin").write_bytes(big)
    assert (mnt / "big.bin").read_bytes() == big


@requires_fuse
def test_append_mode_appends_even_after_truncation_elsewhere(mnt: Path) -> None:
    path = mnt / "log"
    path.write_text("one\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"two\n")
        path.write_text("")  # truncated by another open
        os.write(fd, b"three\n")
    finally:
        os.close(fd)
    assert path.read_text() == "three\n"


@requires_fuse
def test_open_with_o_trunc_empties_the_file(mnt: Path) -> None:
    path = mnt / "f.txt"
    path.write_text("long original content")
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert path.read_text() == "new"
    assert os.stat(path).st_size == 3


@requires_fuse
def test_each_open_keeps_its_own_flags(mnt: Path) -> None:
    path = mnt / "f.txt"
    path.write_text("abc")
    reader = os.open(path, os.O_RDONLY)
    writer = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(writer, b"def")
        assert os.pread(reader, 100, 0) == b"abcdef"
        with pytest.raises(OSError) as info:
            os.write(reader, b"x")
        assert info.value.errno == errno.EBADF
    finally:
        os.close(reader)
        os.close(writer)


@requires_fuse
def test_create_with_o_excl_fails_on_existing_file(mnt: Path) -> None:
    fd = os.open(mnt / "new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.close(fd)
    assert stat.S_IMODE(os.stat(mnt / "new").st_mode) == 0o640
    with pytest.raises(FileExistsError):
        os.open(mnt / "new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)


@requires_fuse
def test_create_without_o_excl_opens_existing_file_unchanged(mnt: Path) -> None:
    (mnt / "f").write_text("keep")
    os.chmod(mnt / "f", 0o600)
    fd = os.open(mnt / "f", os.O_RDWR | os.O_CREAT, 0o777)
    os.close(fd)
    assert (mnt / "f").read_text() == "keep"
    assert stat.S_IMODE(os.stat(mnt / "f").st_mode) == 0o600


@requires_fuse
def test_new_entries_get_the_requested_mode_under_the_callers_umask(mnt: Path) -> None:
    old = os.umask(0o027)
    try:
        (mnt / "f").write_text("x")
        (mnt / "d").mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(mnt / "f").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(mnt / "d").st_mode) == 0o750


@requires_fuse
def test_mkdir_rmdir_unlink(mnt: Path) -> None:
    (mnt / "d" / "e").mkdir(parents=True)
    (mnt / "d" / "e" / "f").write_text("x")
    assert os.path.isdir(mnt / "d" / "e")
    os.unlink(mnt / "d" / "e" / "f")
    assert not os.path.exists(mnt / "d" / "e" / "f")
    os.rmdir(mnt / "d" / "e")
    os.rmdir(mnt / "d")
    assert os.listdir(mnt) == []


@requires_fuse
def test_errno_cases_are_the_backing_filesystems(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_text("x")
    cases = [
        (errno.ENOENT, lambda: os.stat(mnt / "missing")),
        (errno.ENOENT, lambda: os.open(mnt / "missing", os.O_RDONLY)),
        (errno.ENOENT, lambda: os.unlink(mnt / "missing")),
        (errno.ENOTEMPTY, lambda: os.rmdir(mnt / "d")),
        (errno.EEXIST, lambda: os.mkdir(mnt / "d")),
        (errno.EISDIR, lambda: os.open(mnt / "d", os.O_WRONLY)),
        (errno.EISDIR, lambda: os.unlink(mnt / "d")),
        (errno.ENOTDIR, lambda: os.rmdir(mnt / "d" / "f")),
        (errno.ENOTDIR, lambda: os.listdir(mnt / "d" / "f")),
        (errno.EINVAL, lambda: os.rename(mnt / "d", mnt / "d" / "sub")),
    ]
    for expected, call in cases:
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == expected, call
    assert (mnt / "d" / "f").read_text() == "x"


@requires_fuse
def test_unlinked_open_file_stays_usable(mnt: Path) -> None:
    path = mnt / "tmp"
    path.write_text("data")
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        assert not path.exists()
        os.pwrite(fd, b"DATA", 0)
        assert os.pread(fd, 10, 0) == b"DATA"
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)


# -- renames ------------------------------------------------------------------------------


@requires_fuse
def test_rename_over_existing_file_replaces_it(mnt: Path) -> None:
    (mnt / "a").write_text("new")
    (mnt / "b").write_text("old")
    reader = os.open(mnt / "b", os.O_RDONLY)
    try:
        os.rename(mnt / "a", mnt / "b")
        assert os.pread(reader, 10, 0) == b"old"  # an open file keeps its content
    finally:
        os.close(reader)
    assert (mnt / "b").read_text() == "new"
    assert not (mnt / "a").exists()
    assert os.listdir(mnt) == ["b"]


@requires_fuse
def test_rename_directory_moves_what_is_inside(mnt: Path) -> None:
    (mnt / "x" / "y").mkdir(parents=True)
    (mnt / "x" / "y" / "f").write_text("deep")
    assert (mnt / "x" / "y" / "f").read_text() == "deep"
    os.rename(mnt / "x", mnt / "z")
    assert (mnt / "z" / "y" / "f").read_text() == "deep"
    (mnt / "z" / "y" / "f").write_text("deeper")
    (mnt / "z" / "y" / "g").write_text("new")
    assert sorted(os.listdir(mnt / "z" / "y")) == ["f", "g"]
    assert not (mnt / "x").exists()


@requires_fuse
def test_rename_noreplace_refuses_an_existing_target(mnt: Path) -> None:
    (mnt / "a").write_text("a")
    (mnt / "b").write_text("b")
    with pytest.raises(FileExistsError):
        renameat2(mnt / "a", mnt / "b", pyfuse3.RENAME_NOREPLACE)
    renameat2(mnt / "a", mnt / "c", pyfuse3.RENAME_NOREPLACE)
    assert sorted(os.listdir(mnt)) == ["b", "c"]


@requires_fuse
def test_rename_exchange_swaps_two_entries(mnt: Path) -> None:
    (mnt / "a").write_text("a")
    (mnt / "d").mkdir()
    (mnt / "d" / "inner").write_text("inner")
    renameat2(mnt / "a", mnt / "d", pyfuse3.RENAME_EXCHANGE)
    assert (mnt / "d").read_text() == "a"
    assert (mnt / "a" / "inner").read_text() == "inner"


# -- links, metadata, xattrs ------------------------------------------------------------------


@requires_fuse
def test_symlink_and_readlink(mnt: Path) -> None:
    (mnt / "target").write_text("t")
    os.symlink("target", mnt / "rel")
    os.symlink("/nonexistent/abs", mnt / "dangling")
    assert os.readlink(mnt / "rel") == "target"
    assert (mnt / "rel").read_text() == "t"
    assert os.readlink(mnt / "dangling") == "/nonexistent/abs"
    assert stat.S_ISLNK(os.lstat(mnt / "dangling").st_mode)
    assert not (mnt / "dangling").exists()


@requires_fuse
def test_hard_link_shares_content(mnt: Path) -> None:
    (mnt / "a").write_text("shared")
    assert os.stat(mnt / "a").st_nlink == 1
    os.link(mnt / "a", mnt / "b")
    assert os.stat(mnt / "b").st_nlink == 2
    assert os.stat(mnt / "a").st_nlink == 2  # not the count cached before the link
    assert (mnt / "a").read_text() == "shared"  # its pages now cached under the name a
    (mnt / "b").write_text("changed via b")
    assert (mnt / "a").read_text() == "changed via b"
    with open(mnt / "a", "r+") as f:
        f.write("CHANGED")
    assert (mnt / "b").read_text() == "CHANGED via b"
    os.unlink(mnt / "a")
    assert os.stat(mnt / "b").st_nlink == 1


@requires_fuse
def test_chmod_truncate_and_utime(mnt: Path) -> None:
    path = mnt / "f"
    path.write_text("0123456789")
    os.chmod(path, 0o751)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o751
    os.truncate(path, 4)
    assert path.read_text() == "0123"
    with open(path, "r+b") as f:
        os.ftruncate(f.fileno(), 2)
    assert path.read_text() == "01"
    os.utime(path, ns=(1_000_000_000_123, 2_000_000_000_456))
    st = os.stat(path)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000_123, 2_000_000_000_456)


@requires_fuse
def test_touch_changes_only_the_time_it_is_asked_to(mnt: Path) -> None:
    path = mnt / "f"
    path.write_text("x")
    os.utime(path, ns=(1_000_000_000_000, 2_000_000_000_000))
    run("touch", "-m", "-d", "@3000", path, cwd=mnt)
    st = os.stat(path)
    assert st.st_atime_ns == 1_000_000_000_000
    assert st.st_mtime_ns == 3_000_000_000_000
    before = time.time()
    run("touch", "-a", path, cwd=mnt)
    st = os.stat(path)
    assert st.st_atime >= before - 1
    assert st.st_mtime_ns == 3_000_000_000_000


@requires_fuse
def test_xattrs_set_get_list_remove(mnt: Path) -> None:
    path = mnt / "f"
    path.write_text("x")
    (mnt / "d").mkdir()
    for target in (path, mnt / "d", mnt):
        os.setxattr(target, "user.leasefs.test", b"value")
        assert os.getxattr(target, "user.leasefs.test") == b"value"
        assert "user.leasefs.test" in os.listxattr(target)
        os.removexattr(target, "user.leasefs.test")
        assert "user.leasefs.test" not in os.listxattr(target)
        with pytest.raises(OSError) as info:
            os.getxattr(target, "user.leasefs.test")
        assert info.value.errno == errno.ENODATA


@requires_fuse
def test_xattrs_on_a_symlink_are_refused_as_linux_does(mnt: Path) -> None:
    os.symlink("nowhere", mnt / "link")
    assert os.listxattr(mnt / "link", follow_symlinks=False) == []
    with pytest.raises(OSError) as info:
        os.setxattr(mnt / "link", "user.x", b"1", follow_symlinks=False)
    assert info.value.errno == errno.EPERM


@requires_fuse
def test_fifo_from_mknod(mnt: Path) -> None:
    os.mkfifo(mnt / "pipe", 0o600)
    st = os.lstat(mnt / "pipe")
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


@requires_fuse
def test_statfs_reports_the_backing_filesystem(mnt: Path) -> None:
    ours = os.statvfs(mnt)
    backing = os.statvfs(mnt.parent)
    assert (ours.f_bsize, ours.f_blocks, ours.f_namemax) == (
        backing.f_bsize,
        backing.f_blocks,
        backing.f_namemax,
    )


@requires_fuse
def test_new_entries_belong_to_the_user_who_made_them(repo: Path, mount_dir: MountFactory) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    os.chmod(repo, 0o777)
    os.chmod(repo.parent, 0o755)
    mount_dir(repo, "--allow-other")
    as_user = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
    script = "open('f','w').write('x'); import os; os.mkdir('d'); os.symlink('f','l')"
    run(*as_user, sys.executable, "-c", script, cwd=repo)
    for name in ("f", "d", "l"):
        st = os.lstat(repo / name)
        assert (st.st_uid, st.st_gid) == (1000, 1000), name
    os.chmod(repo / "f", 0o600)
    stranger = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "cat", "f"]
    result = subprocess.run(stranger, cwd=repo, capture_output=True, timeout=CMD_TIMEOUT)
    assert result.returncode != 0  # default_permissions: the kernel checks the mode bits
    assert b"Permission denied" in result.stderr


# -- directories -----------------------------------------------------------------------------


@requires_fuse
def test_directory_with_3000_entries_lists_completely(mnt: Path) -> None:
    names = {f"file-{i:05d}-{'x' * (i % 40)}" for i in range(3000)}
    (mnt / "big").mkdir()
    for name in names:
        (mnt / "big" / name).write_text(name)
    listed = os.listdir(mnt / "big")
    assert len(listed) == len(names)
    assert set(listed) == names
    with os.scandir(mnt / "big") as entries:
        kinds = {entry.name: entry.is_file(follow_symlinks=False) for entry in entries}
    assert kinds == dict.fromkeys(names, True)


def test_this_pyfuse3_lets_the_kernel_keep_listings_and_written_pages() -> None:
    """scripts/setup builds pyfuse3 with scripts/pyfuse3/kernel-caches.patch; say so if not."""
    assert LISTINGS_CACHED, "pyfuse3 is unpatched: run scripts/pyfuse3/build"
    assert "enable_auto_inval_data" in vars(pyfuse3.Operations), "run scripts/pyfuse3/build"
    assert LISTINGS_BY_INODE, "pyfuse3 predates directories_without_handles: rebuild it"


@requires_fuse
def test_folders_are_listed_and_synced_without_a_handle(
    repo: Path, mount_dir: MountFactory
) -> None:
    """The kernel sends no OPENDIR (answered ENOSYS once): a folder held open costs the mount
    no descriptor, and listing, fsync and a removed folder still behave as natively."""
    mount = mount_dir(repo)
    assert mount.proc is not None
    server_fds = Path(f"/proc/{mount.proc.pid}/fd")
    (repo / "d").mkdir()
    (repo / "d" / "f").write_text("x")
    os.listdir(repo / "d")
    baseline = len(os.listdir(server_fds))
    held = [os.open(repo / "d", os.O_RDONLY | os.O_DIRECTORY) for _ in range(20)]
    try:
        assert len(os.listdir(server_fds)) == baseline
        assert os.listdir(held[0]) == ["f"]
        os.fsync(held[1])
        os.unlink(repo / "d" / "f")
        os.rmdir(repo / "d")
        assert os.listdir(held[2]) == []  # as natively: a removed folder lists nothing
    finally:
        for fd in held:
            os.close(fd)


@requires_fuse
def test_what_was_written_reads_back_after_every_kind_of_change(mnt: Path) -> None:
    """The kernel keeps written pages: reads after writes, truncation, appends, a replace by
    rename and a write through a hard link must still show the file as it is."""
    f = mnt / "f"
    f.write_bytes(b"a" * 300_000)
    assert f.read_bytes() == b"a" * 300_000
    with open(f, "r+b") as out:
        out.seek(100_000)
        out.write(b"b" * 10)
    assert f.read_bytes()[99_998:100_012] == b"aabbbbbbbbbbaa"
    os.truncate(f, 5)
    assert f.read_bytes() == b"aaaaa"
    with open(f, "ab") as out:
        out.write(b"tail")
    assert f.read_bytes() == b"aaaaatail"
    (mnt / "g").write_bytes(b"replacement")
    os.rename(mnt / "g", f)
    assert f.read_bytes() == b"replacement"
    os.link(f, mnt / "h")
    (mnt / "h").write_bytes(b"through the other name")
    assert f.read_bytes() == b"through the other name"


@requires_fuse
def test_kept_listings_follow_every_change_through_the_mount(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "a").write_text("a")
    (mnt / "d" / "b").write_text("b")
    changes = [
        (lambda: (mnt / "d" / "c").write_text("c"), ["a", "b", "c"]),
        (lambda: (mnt / "d" / "a").unlink(), ["b", "c"]),
        (lambda: (mnt / "d" / "b").rename(mnt / "d" / "e"), ["c", "e"]),
        (lambda: (mnt / "d" / "c").rename(mnt / "moved"), ["e"]),
        (lambda: (mnt / "d" / "sub").mkdir(), ["e", "sub"]),
        (lambda: os.link(mnt / "d" / "e", mnt / "d" / "f"), ["e", "f", "sub"]),
        (lambda: os.symlink("e", mnt / "d" / "l"), ["e", "f", "l", "sub"]),
        (lambda: (mnt / "d" / "sub").rmdir(), ["e", "f", "l"]),
    ]
    for change, expected in changes:
        assert os.listdir(mnt / "d")  # the kernel now holds this listing
        change()
        assert sorted(os.listdir(mnt / "d")) == expected
    assert sorted(os.listdir(mnt)) == ["d", "moved"]


@requires_fuse
def test_listing_shows_dot_entries_and_types(mnt: Path) -> None:
    (mnt / "f").write_text("x")
    (mnt / "d").mkdir()
    os.symlink("f", mnt / "l")
    output = run("ls", "-a1F", mnt, cwd=mnt).stdout.split()
    assert output == ["./", "../", "d/", "f", "l@"]


@requires_fuse
def test_listing_survives_changes_between_reads(mnt: Path) -> None:
    (mnt / "d").mkdir()
    for i in range(500):
        (mnt / "d" / f"f{i:03d}").write_text("x")
    seen = []
    with os.scandir(mnt / "d") as entries:
        for i, entry in enumerate(entries):
            seen.append(entry.name)
            if i == 10:
                for j in range(200):
                    os.unlink(mnt / "d" / f"f{499 - j:03d}")
                    (mnt / "d" / f"g{j:03d}").write_text("y")
    assert len(seen) == len(set(seen))
    assert {f"f{i:03d}" for i in range(300)} <= set(seen)


# -- what tools do -----------------------------------------------------------------------------


@requires_fuse
def test_git_init_add_commit_status(mnt: Path, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (mnt / "src").mkdir()
    for i in range(50):
        (mnt / "src" / f"m{i}.py").write_text(f"x = {i}\n")
    (mnt / "README").write_text("hi\n")
    run("git", "init", "-q", "-b", "main", cwd=mnt, env=env, inherit_env=False)
    run("git", "add", "-A", cwd=mnt, env=env, inherit_env=False)
    run("git", "commit", "-q", "-m", "first", cwd=mnt, env=env, inherit_env=False)
    assert run("git", "status", "--porcelain", cwd=mnt, env=env, inherit_env=False).stdout == ""
    (mnt / "README").write_text("changed\n")
    assert (
        run("git", "status", "--porcelain", cwd=mnt, env=env, inherit_env=False).stdout
        == " M README\n"
    )
    run("git", "checkout", "--", "README", cwd=mnt, env=env, inherit_env=False)
    assert (mnt / "README").read_text() == "hi\n"
    run("git", "mv", "src/m1.py", "src/renamed.py", cwd=mnt, env=env, inherit_env=False)
    run("git", "commit", "-q", "-m", "second", cwd=mnt, env=env, inherit_env=False)
    assert run("git", "status", "--porcelain", cwd=mnt, env=env, inherit_env=False).stdout == ""
    run("git", "fsck", "--strict", cwd=mnt, env=env, inherit_env=False)
    assert (
        run("git", "log", "--format=%s", cwd=mnt, env=env, inherit_env=False).stdout
        == "second\nfirst\n"
    )


@requires_fuse
def test_sed_in_place(mnt: Path) -> None:
    (mnt / "f.txt").write_text("alpha\nbeta\n")
    os.chmod(mnt / "f.txt", 0o640)
    run("sed", "-i", "s/beta/gamma/", "f.txt", cwd=mnt)
    assert (mnt / "f.txt").read_text() == "alpha\ngamma\n"
    assert stat.S_IMODE(os.stat(mnt / "f.txt").st_mode) == 0o640
    assert os.listdir(mnt) == ["f.txt"]


@requires_fuse
def test_cp_and_mv(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_bytes(os.urandom(200_000))
    os.symlink("f", mnt / "d" / "l")
    run("cp", "-a", "d", "copy", cwd=mnt)
    assert snapshot(mnt / "copy") == snapshot(mnt / "d")
    assert os.stat(mnt / "copy" / "f").st_mtime_ns == os.stat(mnt / "d" / "f").st_mtime_ns
    run("mv", "copy", "moved", cwd=mnt)
    run("mv", "moved/f", "g", cwd=mnt)
    assert (mnt / "g").read_bytes() == (mnt / "d" / "f").read_bytes()
    assert sorted(os.listdir(mnt)) == ["d", "g", "moved"]


@requires_fuse
def test_python_atomic_save(mnt: Path) -> None:
    (mnt / "config.json").write_text('{"v": 1}')
    script = textwrap.dedent(
        """
        import json, os, tempfile
        fd, tmp = tempfile.mkstemp(dir=".", prefix=".config.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump({"v": 2}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, "config.json")
        dirfd = os.open(".", os.O_RDONLY)
        os.fsync(dirfd)
        os.close(dirfd)
        """
    )
    run(sys.executable, "-c", script, cwd=mnt)
    assert json.loads((mnt / "config.json").read_text()) == {"v": 2}
    assert os.listdir(mnt) == ["config.json"]


@requires_fuse
def test_unmount_leaves_exactly_what_was_written(repo: Path, mount_dir: MountFactory) -> None:
    (repo / "kept").write_text("kept")
    (repo / "doomed").write_text("doomed")
    mount = mount_dir(repo)
    (repo / "kept").write_text("kept, edited")
    os.unlink(repo / "doomed")
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "mod.py").write_text("print('hi')\n")
    os.symlink("pkg/sub/mod.py", repo / "shortcut")
    (repo / "tmp").write_text("x")
    os.rename(repo / "tmp", repo / "renamed")
    through_mount = snapshot(repo)
    mount.stop()
    assert not mount.mounted
    assert snapshot(repo) == through_mount
    assert through_mount == {
        "kept": b"kept, edited",
        "pkg": "dir",
        "pkg/sub": "dir",
        "pkg/sub/mod.py": b"print('hi')\n",
        "shortcut": ("symlink", "pkg/sub/mod.py"),
        "renamed": b"x",
    }


@requires_fuse
def test_closed_files_leave_no_descriptor_open_in_the_server(
    repo: Path, mount_dir: MountFactory, file_io: str
) -> None:
    mount = mount_dir(repo)
    assert mount.proc is not None
    fds = Path(f"/proc/{mount.proc.pid}/fd")
    baseline = len(os.listdir(fds))
    # Without handles, descriptors are kept per inode up to a bound: go well past it.
    count = 2 * DEFAULT_CAPACITY if file_io == "inodes" else 200
    kept = DEFAULT_CAPACITY if file_io == "inodes" else 0
    for i in range(count):
        (repo / f"f{i}").write_text("x")
        assert (repo / f"f{i}").read_text() == "x"
        os.listdir(repo)
    for i in range(0, count, 2):
        os.unlink(repo / f"f{i}")  # kept while the kernel knows it, then closed
    deadline = time.monotonic() + 10
    while len(os.listdir(fds)) > baseline + kept:  # releases and forgets are asynchronous
        open_now = len(os.listdir(fds))
        assert time.monotonic() < deadline, f"{open_now} open, {baseline} before, {kept} kept"
        time.sleep(0.05)


@requires_fuse
def test_sigterm_unmounts(repo: Path, mount_dir: MountFactory) -> None:
    mount = mount_dir(repo)
    (repo / "f").write_text("x")
    mount.signal(signal.SIGTERM)
    assert mount.wait() == 0
    assert not mount.mounted
    assert (repo / "f").read_text() == "x"


# -- the seams for the lease layer -------------------------------------------------------------

_RECORDING_FS = textwrap.dedent(
    """
    import errno, json, os, sys
    import pyfuse3, trio
    from leasefs._fs import Passthrough
    from leasefs._fs._standalone import main

    LOG = os.environ["LEASEFS_TEST_LOG"]

    def record(*item):
        with open(LOG, "a") as f:
            f.write(json.dumps(item) + "\\n")

    class Recording(Passthrough):
        async def before_mutation(self, kind, paths, ctx):
            if any(p.endswith("boom") for p in paths):
                raise RuntimeError("injected failure")
            if any(p.endswith("busy") for p in paths):
                raise pyfuse3.FUSEError(errno.EBUSY)
            record("before", str(kind), list(paths))
            if any(p.endswith("slow") for p in paths):
                await trio.sleep(2.0)  # as a lease wait would

        async def after_write_release(self, path, fh):
            record("released", path, self.write_handles(path))

    sys.exit(main(factory=Recording))
    """
)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _records(log: Path) -> list[list[object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@requires_fuse
def test_hooks_see_every_mutation_with_its_paths(
    repo: Path,
    mount_dir: MountFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_io: str,
) -> None:
    log = tmp_path / "hooks.jsonl"
    monkeypatch.setenv("LEASEFS_TEST_LOG", str(log))
    (repo / "old").write_text("x")
    mount_dir(repo, script=_RECORDING_FS)

    assert (repo / "old").read_text() == "x"  # reads are not mutations
    os.listdir(repo)
    os.stat(repo / "old")
    assert _records(log) == []

    create, write = ["before", "create", ["new"]], ["before", "write", ["new"]]
    steps = [
        (lambda: (repo / "new").write_text("1"), [create, write]),
        (lambda: (repo / "new").write_text("2"), [["before", "truncate", ["new"]], write]),
        (lambda: open(repo / "new", "a").close(), []),  # an open is no change
        (lambda: _append(repo / "new", b"3"), [write]),
        (lambda: os.truncate(repo / "new", 0), [["before", "truncate", ["new"]]]),
        (lambda: os.chmod(repo / "new", 0o600), [["before", "setattr", ["new"]]]),
        (lambda: os.mkdir(repo / "d"), [["before", "mkdir", ["d"]]]),
        (lambda: os.rename(repo / "new", repo / "d" / "n"), [["before", "rename", ["new", "d/n"]]]),
        (lambda: os.link(repo / "d" / "n", repo / "h"), [["before", "link", ["d/n", "h"]]]),
        (lambda: os.symlink("h", repo / "s"), [["before", "symlink", ["s"]]]),
        (lambda: os.unlink(repo / "s"), [["before", "unlink", ["s"]]]),
        (lambda: os.setxattr(repo / "h", "user.a", b"1"), [["before", "setxattr", ["h"]]]),
        (lambda: os.removexattr(repo / "h", "user.a"), [["before", "removexattr", ["h"]]]),
        (lambda: os.mkfifo(repo / "p"), [["before", "mknod", ["p"]]]),
        (lambda: os.rename(repo / "d", repo / "e"), [["before", "rename", ["d", "e"]]]),
        (lambda: os.unlink(repo / "e" / "n"), [["before", "unlink", ["e/n"]]]),
        (lambda: os.rmdir(repo / "e"), [["before", "rmdir", ["e"]]]),
    ]
    for action, expected in steps:
        log.unlink(missing_ok=True)
        action()
        got = [r for r in _records(log) if r[0] == "before"]
        assert got == expected, (action, _records(log))

    time.sleep(0.2)  # releases are sent asynchronously: let the last ones land first
    log.unlink(missing_ok=True)
    truncate = ["before", "truncate", ["h"]]
    with open(repo / "h", "w") as f:
        assert _records(log) == [truncate]
        f.write("x")
        f.flush()
        assert _records(log) == [truncate, ["before", "write", ["h"]]]
    if file_io == "inodes":
        time.sleep(0.3)  # without handles the kernel tells of no close: nothing to wait for
        assert [r for r in _records(log) if r[0] == "released"] == []
        return
    deadline = time.monotonic() + 10
    while len(_records(log)) < 3:
        assert time.monotonic() < deadline, "no release"
        time.sleep(0.02)
    assert _records(log)[2] == ["released", "h", 0]


@requires_fuse
def test_handler_exception_answers_eio_and_the_mount_lives_on(
    repo: Path, mount_dir: MountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASEFS_TEST_LOG", str(tmp_path / "hooks.jsonl"))
    mount = mount_dir(repo, script=_RECORDING_FS)
    for _ in range(3):
        with pytest.raises(OSError) as info:
            (repo / "boom").write_text("x")
        assert info.value.errno == errno.EIO
    with pytest.raises(OSError) as info:
        os.mkdir(repo / "busy")
    assert info.value.errno == errno.EBUSY
    (repo / "fine").write_text("still serving")
    assert (repo / "fine").read_text() == "still serving"
    assert mount.mounted
    assert "injected failure" in mount.output()
    assert not (repo / "boom").exists()


@requires_fuse
def test_a_waiting_hook_does_not_hold_up_other_requests(
    repo: Path, mount_dir: MountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASEFS_TEST_LOG", str(tmp_path / "hooks.jsonl"))
    (repo / "slow").write_text("old")
    (repo / "other").write_text("x")
    mount_dir(repo, script=_RECORDING_FS)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit((repo / "slow").write_text, "waited")  # open(O_TRUNC) waits
        time.sleep(0.2)
        assert (repo / "other").read_text() == "x"
        (repo / "other").write_text("y")
        os.mkdir(repo / "dir")
        (repo / "dir" / "new").write_text("z")
        assert sorted(os.listdir(repo)) == ["dir", "other", "slow"]
        assert time.monotonic() - started < 1.5
        assert not waiting.done()
        waiting.result(timeout=10)
    assert (repo / "slow").read_text() == "waited"


@requires_fuse
def test_a_waiting_create_holds_up_only_its_own_directory(
    repo: Path, mount_dir: MountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel holds the directory's lock across create, mkdir, unlink and rename, so a
    # hook that waits there stalls other name changes in that directory (not elsewhere).
    monkeypatch.setenv("LEASEFS_TEST_LOG", str(tmp_path / "hooks.jsonl"))
    (repo / "a").mkdir()
    (repo / "b").mkdir()
    mount_dir(repo, script=_RECORDING_FS)
    os.listdir(repo / "a")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        waiting = pool.submit((repo / "a" / "slow").write_text, "waited")
        time.sleep(0.2)
        (repo / "b" / "elsewhere").write_text("quick")
        assert time.monotonic() - started < 1.5
        same_dir = pool.submit((repo / "a" / "neighbour").write_text, "later")
        same_dir.result(timeout=10)
        assert time.monotonic() - started >= 1.9
        waiting.result(timeout=10)


@requires_fuse
def test_paths_moved_while_the_hook_waits_are_asked_for_again(
    repo: Path, mount_dir: MountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "hooks.jsonl"
    monkeypatch.setenv("LEASEFS_TEST_LOG", str(log))
    (repo / "d").mkdir()
    mount_dir(repo, script=_RECORDING_FS)
    os.listdir(repo / "d")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit((repo / "d" / "slow").write_text, "moved")
        time.sleep(0.5)
        os.rename(repo / "d", repo / "e")
        waiting.result(timeout=10)
    assert (repo / "e" / "slow").read_text() == "moved"
    before = [r for r in _records(log) if r[0] == "before" and r[1] == "create"]
    assert before == [["before", "create", ["d/slow"]], ["before", "create", ["e/slow"]]]


@requires_fuse
@pytest.mark.parametrize("listed", [False, True], ids=["fresh", "listed"])
def test_a_killed_server_leaves_no_mount_behind(
    repo: Path, mount_dir: MountFactory, listed: bool
) -> None:
    """Also once a folder was listed: fusermount3's auto_unmount then takes the dead mount
    for a live one (its test open needs no OPENDIR), and our watcher unmounts it."""
    (repo / "f").write_text("x")
    mount = mount_dir(repo)
    if listed:
        assert os.listdir(repo) == ["f"]
        assert (repo / "f").read_text() == "x"
    mount.signal(signal.SIGKILL)
    mount.wait()
    deadline = time.monotonic() + 20
    while mount.mounted:  # auto_unmount or the watcher notices and unmounts
        assert time.monotonic() < deadline, "still mounted after the server died"
        time.sleep(0.05)
    assert (repo / "f").read_text() == "x"


_INVALIDATING_FS = textwrap.dedent(
    """
    import os, sys
    import trio
    from leasefs._fs._standalone import main

    CONTROL = sys.argv.pop()  # a directory outside the mount: requests in, answers out

    async def coordinator_stand_in(ops):
        root = ops.backing_fd
        while True:
            await trio.sleep(0.02)
            for name in os.listdir(CONTROL):
                if not name.endswith(".req"):
                    continue
                action, path, content = open(os.path.join(CONTROL, name)).read().split("\\n", 2)
                if action == "replace":
                    tmp = path + ".incoming"
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=root)
                    os.write(fd, content.encode())
                    os.close(fd)
                    os.rename(tmp, path, src_dir_fd=root, dst_dir_fd=root)
                elif action == "overwrite":
                    fd = os.open(path, os.O_WRONLY | os.O_TRUNC, dir_fd=root)
                    os.write(fd, content.encode())
                    os.close(fd)
                elif action == "delete":
                    os.unlink(path, dir_fd=root)
                await ops.invalidate_path(path)
                os.rename(os.path.join(CONTROL, name), os.path.join(CONTROL, name[:-4] + ".done"))

    sys.exit(main(background=coordinator_stand_in))
    """
)


@requires_fuse
def test_invalidate_path_shows_changes_made_underneath(
    repo: Path, mount_dir: MountFactory, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (repo / "a").write_text("old a")
    (repo / "b").write_text("old b")
    mount_dir(repo, str(control), script=_INVALIDATING_FS)

    def underneath(action: str, path: str, content: str = "") -> None:
        request = control / f"{action}-{path}.req"
        request.write_text(f"{action}\n{path}\n{content}")
        done = control / f"{action}-{path}.done"
        deadline = time.monotonic() + 10
        while not done.exists():
            assert time.monotonic() < deadline, "the stand-in coordinator did not answer"
            time.sleep(0.02)
        done.unlink()

    # Warm every cache: data, attributes, names, the listing, and a negative entry for "c".
    assert (repo / "a").read_text() == "old a"
    assert (repo / "b").read_text() == "old b"
    assert not (repo / "c").exists()
    assert sorted(os.listdir(repo)) == ["a", "b"]

    underneath("replace", "a", "new a, a different file")
    assert (repo / "a").read_text() == "new a, a different file"
    underneath("overwrite", "b", "new b")
    assert (repo / "b").read_text() == "new b"
    assert os.stat(repo / "b").st_size == len("new b")
    underneath("replace", "c", "created underneath")
    assert (repo / "c").read_text() == "created underneath"
    assert sorted(os.listdir(repo)) == ["a", "b", "c"]
    underneath("replace", "d", "a name the kernel never looked up")
    assert sorted(os.listdir(repo)) == ["a", "b", "c", "d"]
    underneath("delete", "a")
    assert not (repo / "a").exists()
    assert sorted(os.listdir(repo)) == ["b", "c", "d"]
