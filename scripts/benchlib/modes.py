"""How big and how often: the two modes of the benchmark, declared as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """Sizes and repetition counts; ``runs`` is per target and operation (median reported)."""

    name: str
    tree_files: int  # files in the generated repository, modules included
    modules: int  # Python modules among them, for compileall
    runs: int
    cold_rounds: int  # mounts brought up afresh to time a first ("cold") git status
    big_file_mib: int
    small_files: int
    write_iterations: int  # first vs held write through the mount
    client_iterations: int  # acquire+release through the client
    handoff_iterations: int
    propagation_iterations: int
    propagation_mounts: tuple[int, ...]
    scale_agents: tuple[int, ...]
    scale_slices: int  # each agent count runs this many slices, alternating with the others
    scale_slice_s: float
    memory_leases: int
    memory_audit_rows: int


QUICK = Mode(
    name="quick",
    tree_files=2_000,
    modules=200,
    runs=3,
    cold_rounds=1,
    big_file_mib=128,
    small_files=200,
    write_iterations=30,
    client_iterations=100,
    handoff_iterations=5,
    propagation_iterations=5,
    propagation_mounts=(1, 4),
    scale_agents=(1, 10, 100),
    scale_slices=2,
    scale_slice_s=0.5,
    memory_leases=10_000,
    memory_audit_rows=50_000,
)

FULL = Mode(
    name="full",
    tree_files=20_000,
    modules=3_000,
    runs=5,
    cold_rounds=3,
    big_file_mib=1024,
    small_files=2_000,
    write_iterations=200,
    client_iterations=2_000,
    handoff_iterations=20,
    propagation_iterations=20,
    propagation_mounts=(1, 4, 16),
    scale_agents=(1, 10, 100),
    scale_slices=5,
    scale_slice_s=1.0,
    memory_leases=100_000,
    memory_audit_rows=1_000_000,
)
