"""A randomized history through real mounts, with partitions, checked afterwards.

Three agents append uniquely numbered lines to a handful of shared files through their
mounts, with real processes (Python's open/write and ``sh -c 'echo >>'``), for a while. One of
them reaches the coordinator through a TCP proxy that is cut and healed at random, sometimes
for longer than the TTL. Afterwards, with every mount unmounted:

- the audit log replays cleanly: never two holders of a path, fencing tokens only growing,
  every version written under the current lease;
- every write that was acknowledged (the write and the close returned without error) is in
  some tree's final file, or in a conflict copy of it: nothing acknowledged is lost.

The seed is printed, so a failing run can be replayed with ``LEASEFS_HISTORY_SEED``.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from leasefs import Client
from tests.helpers import AgentMount, CoordinatorProcess, TcpProxy, wait_for
from tests.mount.conftest import MountFactory
from tests.reliability.replay import full_audit, replay_leases

RUN_S = float(os.environ.get("LEASEFS_HISTORY_S", "20"))
TTL_S = 6.0
FILES = ["src/app.py", "README.md", "notes/a.md", "notes/b.md"]


@dataclass
class Writer:
    mount: AgentMount
    rng: random.Random
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (path, line)
    refused: dict[str, int] = field(default_factory=dict)  # what went wrong -> how often

    def run(self, stop: threading.Event) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            path = self.rng.choice(FILES)
            line = f"{self.mount.agent} {seq}"
            try:
                if self.rng.random() < 0.2:
                    subprocess.run(
                        ["sh", "-c", f"echo '{line}' >> {path}"], cwd=self.mount.repo,
                        check=True, timeout=60, capture_output=True,
                    )  # fmt: skip
                else:
                    with open(self.mount.repo / path, "a") as f:
                        f.write(line + "\n")
            except (OSError, subprocess.CalledProcessError) as exc:
                reason = getattr(exc, "strerror", None) or "shell write failed"
                self.refused[reason] = self.refused.get(reason, 0) + 1
            else:
                self.acknowledged.append((path, line))
            time.sleep(self.rng.uniform(0, 0.15))


def _partitions(
    proxy: TcpProxy, rng: random.Random, stop: threading.Event, log: list[float]
) -> None:
    while not stop.wait(rng.uniform(1.0, 3.0)):
        length = rng.choice([0.5, 2.0, TTL_S + 2.0])  # some outlast the lease
        proxy.cut()
        log.append(length)
        stop.wait(length)
        proxy.heal()


def _everything_written(trees: list[Path], path: str) -> str:
    """The final file and every conflict copy of it, in every tree."""
    head, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    texts = []
    for tree in trees:
        folder = tree / head if head else tree
        if not folder.is_dir():
            continue
        for candidate in folder.iterdir():
            if candidate.name == name or candidate.name.startswith(f"{stem}.conflict-"):
                texts.append(candidate.read_text(errors="replace"))
    return "\n".join(texts)


def test_random_work_with_partitions_loses_nothing_acknowledged(
    mount_agent: MountFactory,
    coordinator: CoordinatorProcess,
    workspace_name: str,
) -> None:
    seed = int(os.environ.get("LEASEFS_HISTORY_SEED", random.randrange(1 << 32)))
    print(f"history seed {seed} (replay with LEASEFS_HISTORY_SEED={seed})")
    rng = random.Random(seed)
    with TcpProxy(coordinator.port) as proxy:
        common = ("--wait", "10", "--ttl", str(TTL_S))
        mounts = [
            mount_agent("alice", *common, coordinator_url=proxy.url),
            mount_agent("bob", *common),
            mount_agent("carol", *common),
        ]
        (mounts[1].repo / "notes").mkdir()
        for name in ("a.md", "b.md"):
            (mounts[1].repo / "notes" / name).write_text(f"# {name}\n")
        for mount in mounts:
            wait_for(lambda m=mount: (m.repo / "notes" / "b.md").exists(), timeout=30,
                     what=f"the notes in {mount.agent}'s tree")  # fmt: skip

        writers = [Writer(m, random.Random(rng.random())) for m in mounts]
        stop = threading.Event()
        cuts: list[float] = []
        threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
        threads.append(
            threading.Thread(target=_partitions, args=(proxy, rng, stop, cuts), daemon=True)
        )
        for thread in threads:
            thread.start()
        time.sleep(RUN_S)
        stop.set()
        for thread in threads:
            thread.join(90)
            assert not thread.is_alive(), "a writer hung on its mount"
        proxy.heal()
        time.sleep(2 * TTL_S)  # the partitioned mount renews or learns what it lost
        for mount in mounts:
            mount.umount()

    acknowledged = [item for w in writers for item in w.acknowledged]
    print(
        f"{len(acknowledged)} acknowledged writes, refused: "
        + ", ".join(f"{w.mount.agent} {w.refused}" for w in writers)
        + f"; {len(cuts)} partitions {cuts}"
    )
    assert len(acknowledged) > 50, "too little work to judge"

    async def audit() -> None:
        async with Client(coordinator.url) as auditor:
            await auditor.register(workspace_name, "auditor")
            replay = replay_leases(await full_audit(auditor))
            assert replay.grants > 0 and replay.versions > 0

    trio.run(audit)

    trees = [m.repo for m in mounts]
    lost = []
    for path in FILES:
        everything = _everything_written(trees, path).splitlines()
        present = set(everything)
        lost += [(p, line) for p, line in acknowledged if p == path and line not in present]
    assert not lost, f"acknowledged writes lost (seed {seed}): {lost[:20]}"
