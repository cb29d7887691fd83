"""The coordinator unreachable for longer than the TTL, through a TCP proxy of the test's own.

Alice's mount reaches the coordinator only through the proxy; bob's directly. While the proxy
is cut, alice's mount fails closed for writes in scope (new and held leases alike, the latter
before the TTL could have run out on the coordinator), keeps serving reads and writes outside
scope, and bob gets the file once alice's lease has expired. Healed, alice's mount catches up
with every version it missed, and keeps her own acknowledged edit beside bob's.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CoordinatorProcess, TcpProxy, wait_for
from tests.mount.conftest import MountFactory

TTL_S = 6.0


@pytest.fixture
def proxy(coordinator: CoordinatorProcess) -> Iterator[TcpProxy]:
    with TcpProxy(coordinator.port) as running:
        yield running


def _write_fails(path: Path) -> int | None:
    try:
        with open(path, "a") as f:
            f.write("more\n")
    except OSError as exc:
        return exc.errno
    return None


def test_a_partition_longer_than_the_ttl_fails_closed_then_catches_up(
    mount_agent: MountFactory, proxy: TcpProxy
) -> None:
    alice = mount_agent("alice", "--ttl", str(TTL_S), coordinator_url=proxy.url)
    bob = mount_agent("bob", "--wait", "30")
    app = "src/app.py"

    held = open(alice.repo / app, "a")  # noqa: SIM115 - held across the partition
    try:
        held.write("alice, before the partition\n")
        held.flush()
        proxy.cut()
        cut_at = time.monotonic()

        # Reads go on; writes outside scope too; a new lease cannot be had.
        assert (alice.repo / "README.md").read_text() == "# project\n"
        (alice.repo / "debug.log").write_text("ignored by git, so never leased\n")
        assert _write_fails(alice.repo / "README.md") == errno.ENOLCK

        # The held lease stops allowing writes before the TTL could have run out.
        last_allowed = cut_at

        def held_write_refused() -> bool:
            nonlocal last_allowed
            try:
                held.write("alice, during the partition\n")
                held.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOLCK, exc
                return True
            last_allowed = time.monotonic()
            return False

        wait_for(held_write_refused, timeout=TTL_S + 10, what="alice's held lease in jeopardy")
        assert last_allowed - cut_at < TTL_S, "a write was allowed after the lease could expire"

        # On the coordinator alice's lease expires; bob, waiting in line, gets the file.
        with open(bob.repo / app, "a") as f:
            f.write("bob, during the partition\n")
        (bob.repo / "docs").mkdir()
        (bob.repo / "docs" / "new.md").write_text("written while alice was away\n")
    finally:
        with contextlib.suppress(OSError):  # flushing a refused write fails the same way
            held.close()

    wait_for(lambda: bob.leasefs("status", str(bob.repo)).stdout.count("  held") == 0,
             timeout=30, what="bob's leases released")  # fmt: skip
    proxy.heal()

    # Caught up: what was released while alice was away reaches her tree...
    wait_for(lambda: (alice.repo / "docs" / "new.md").exists(), timeout=30,
             what="bob's new file in alice's tree")  # fmt: skip
    assert (alice.repo / "docs" / "new.md").read_text() == "written while alice was away\n"
    # ...and her own acknowledged edit stays, with bob's version beside it.
    wait_for(lambda: any((alice.repo / "src").glob("app.conflict-bob-v*.py")), timeout=30,
             what="bob's version kept beside alice's edit")  # fmt: skip
    copies = sorted((alice.repo / "src").glob("app.conflict-bob-v*.py"))
    assert "bob, during the partition\n" in copies[0].read_text()
    assert "alice, before the partition\n" in (alice.repo / app).read_text()
    # And writing works again.
    (alice.repo / "README.md").write_text("# project, after the partition\n")
    wait_for(lambda: (bob.repo / "README.md").read_text() == "# project, after the partition\n",
             timeout=30, what="alice's edit after healing in bob's tree")  # fmt: skip
