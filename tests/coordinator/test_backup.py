"""`leasefs backup`: an online copy of a serving coordinator, taken while agents keep working,
and `leasefs serve --data COPY` starting from it with leases, versions, blobs, memories,
zones and tokens as they were."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import trio

from leasefs import Client
from leasefs.wire import MemoryCreate, VersionCreate
from tests.helpers import CoordinatorProcess, leasefs_cli


async def test_a_backup_taken_while_agents_work_restores_what_it_held(
    fresh_coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    url = fresh_coordinator.url
    async with Client(url) as alice, Client(url) as bob:
        await alice.join_workspace("team", "alice")
        await bob.join_workspace("team", "bob")
        held = (await alice.acquire(["held.py"], ttl_s=3600)).leases[0]
        content = os.urandom(300_000)
        blob = await alice.upload_blob(content)
        version = await alice.create_version(
            VersionCreate(path="held.py", hash=blob.hash, token=held.token)
        )
        memory = await alice.remember(MemoryCreate(text="tests run with scripts/test"))
        zone = await alice.add_zone("vendor/**", "block", "vendored code: never edit")
        rounds = 0
        done = trio.Event()

        async def bob_keeps_working() -> None:
            nonlocal rounds
            while not done.is_set():
                lease = (await bob.acquire([f"work/{rounds % 5}.py"])).leases[0]
                data = await bob.upload_blob(f"round {rounds}\n".encode() * 1000)
                await bob.create_version(
                    VersionCreate(path=lease.path, hash=data.hash, token=lease.token)
                )
                await bob.release([lease])
                rounds += 1

        env = {**os.environ, "LEASEFS_DATA_DIR": str(tmp_path / "cli")}
        copy = tmp_path / "copy"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_keeps_working)
            await trio.sleep(0.5)
            backup = ("backup", str(copy), "--data", str(fresh_coordinator.data_dir))
            taken = await trio.to_thread.run_sync(
                lambda: leasefs_cli(*backup, env=env, check=False)
            )
            await trio.sleep(0.3)
            done.set()
        assert taken.returncode == 0, taken.stderr
        assert f"leasefs serve --data {copy}" in taken.stdout and rounds > 0
        assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
        with sqlite3.connect(copy / "coordinator.sqlite3") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        refused = leasefs_cli("backup", str(copy), "--data", str(fresh_coordinator.data_dir),
                              env=env, check=False)  # fmt: skip
        assert refused.returncode == 1 and "exists already" in refused.stderr

        restored = CoordinatorProcess(copy).start()
        try:
            # Same tokens: alice's client, pointed at the copy, is still alice.
            async with Client(restored.url, alice.token) as again:
                assert (await again.whoami()).name == "alice"
                statuses = await again.holders(["held.py"])
                lease = statuses[0].lease
                assert lease is not None and (lease.holder.name, lease.token) == (
                    "alice",
                    held.token,
                )
                latest = await again.latest_version("held.py")
                assert latest is not None and latest.id == version.id
                assert await again.read_blob(blob.hash) == content
                assert [m.id for m in await again.recall(query="scripts/test")] == [memory.id]
                assert [z.id for z in await again.zones()] == [zone.id]
                work = [await again.latest_version(f"work/{n}.py") for n in range(5)]
                for found in work:  # whatever bob had recorded by then, readable whole
                    if found is not None and found.hash is not None:
                        assert (await again.read_blob(found.hash)).startswith(b"round ")
        finally:
            restored.stop()
