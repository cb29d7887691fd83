"""What agents and people see: status, release, inotify on incoming versions, no needless round trips."""

from __future__ import annotations

import ctypes
import json
import os
import select
import struct
import time
from pathlib import Path

from tests.helpers import CoordinatorProcess, audit_actions, wait_for
from tests.mount.conftest import MountFactory

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100


class Inotify:
    """A minimal inotify reader (what editors use to notice changes on disk)."""

    def __init__(self, directory: Path) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        assert self._libc.inotify_add_watch(self.fd, os.fsencode(directory), mask) >= 0

    def names(self, timeout: float) -> set[str]:
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(self.fd, 65536)
            offset = 0
            while offset < len(data):
                _, _, _, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                seen.add(name)
                offset += 16 + length
            if seen:
                break
        return seen

    def close(self) -> None:
        os.close(self.fd)


def test_watchers_on_the_mount_see_incoming_versions(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    watcher = Inotify(bob.repo / "src")
    try:
        (alice.repo / "src" / "app.py").write_text("print('alice')\n")
        assert "app.py" in watcher.names(timeout=15), "no inotify event for the incoming version"
    finally:
        watcher.close()
    assert (bob.repo / "src" / "app.py").read_text() == "print('alice')\n"


def test_status_release_and_one_grant_for_many_writes(
    mount_agent: MountFactory, coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    alice = mount_agent("alice", "--idle-grace", "60")
    bob = mount_agent("bob", "--wait", "30")
    for i in range(20):  # many writes, one lease: no round trip once it is held
        with open(alice.repo / "src" / "app.py", "a") as f:
            f.write(f"# {i}\n")
    status = json.loads(alice.leasefs("status", str(alice.repo), "--json").stdout)[0]
    assert [h["path"] for h in status["held"]] == ["src/app.py"]
    assert status["coordinator_reachable"] and status["events_connected"]
    assert status["held"][0]["expires_in_s"] > 20
    assert not status["held"][0]["open_for_writing"]
    with open(alice.repo / "src" / "app.py", "a") as still_open:  # seen in /proc, not told
        still_open.write("# open\n")
        still_open.flush()
        status = json.loads(alice.leasefs("status", str(alice.repo), "--json").stdout)[0]
        assert status["held"][0]["open_for_writing"]
        assert "open for writing" in alice.leasefs("status").stdout
    text = alice.leasefs("status").stdout
    assert "src/app.py  held" in text and str(alice.repo) in text
    assert "held by alice" in bob.leasefs("who", str(bob.repo / "src" / "app.py")).stdout
    released = alice.leasefs("release", str(alice.repo / "src" / "app.py")).stdout
    assert "released 1 lease(s)" in released and "src/app.py" in released
    expected = (alice.repo / "src" / "app.py").read_text()
    wait_for(lambda: (bob.repo / "src" / "app.py").read_text() == expected, what="released content")
    assert "free" in bob.leasefs("who", str(bob.repo / "src" / "app.py")).stdout
    assert audit_actions(coordinator.url, workspace_name, "src/app.py") == [
        ("lease.granted", "alice"),
        ("version.created", "alice"),
        ("lease.released", "alice"),
    ]
