"""Hand-offs without MCP: `leasefs finish --check` runs the repository's checks, `tracker` writes it down."""

from __future__ import annotations

import trio

from leasefs import Client
from tests.mount.conftest import MountFactory


def test_finish_with_checks_releases_and_the_tracker_shows_the_handoff(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--idle-grace", "60")  # the lease stays until finish releases it
    (alice.repo / "leasefs.toml").write_text(
        '[checks]\nbuild = "test -f README.md"\ntest = "echo 2 tests failed; exit 3"\n'
    )
    record = alice.record()
    assert record is not None

    async def start() -> int:
        async with Client(record.coordinator, record.token) as client:
            return (await client.start_work("release prep", ["src/app.py"])).work.id

    work_id = trio.run(start)
    (alice.repo / "src" / "app.py").write_text("print('ready')\n")
    assert "src/app.py" in alice.leasefs("status", str(alice.repo)).stdout
    done = alice.leasefs("finish", "--summary", "prepared the release", "--check", "--next", "tag v1",
                         cwd=alice.repo, check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # a check failed
    assert "check build: test -f README.md -> passed" in done.stdout
    assert "check test: echo 2 tests failed; exit 3 -> FAILED (exit 3)" in done.stdout
    assert f"work {work_id} (release prep) finished" in done.stdout
    assert "no leases held" in alice.leasefs("status", str(alice.repo)).stdout
    handoff = alice.leasefs("tracker", "--output", "-", cwd=alice.repo).stdout
    assert "# Hand-off:" in handoff and "**release prep**" in handoff
    assert "summary: prepared the release" in handoff
    assert "check `test` (`echo 2 tests failed; exit 3`): FAILED (exit 3)" in handoff
    assert "- [ ] tag v1" in handoff
    written = alice.leasefs("tracker", cwd=alice.repo).stdout
    assert "wrote HANDOFF.md" in written and (alice.repo / "HANDOFF.md").read_text().startswith(
        "# Hand-off:"
    )
