"""The report: one markdown table per figure (stdout and results/), raw samples as JSON."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import leasefs

from .procs import run


@dataclass
class Table:
    """One markdown table; cells are already formatted text."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        for row in self.rows:
            cells = [c.replace("|", "\\|").replace("\n", " ") for c in row]
            cells += [""] * (len(self.columns) - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
        lines.extend(["", *[f"- {note}" for note in self.notes]])
        return "\n".join(lines).rstrip() + "\n"


@dataclass
class Section:
    """A figure's tables and the raw data behind them (samples in seconds, bytes, counts)."""

    title: str
    tables: list[Table] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def markdown(self) -> str:
        parts = [f"## {self.title}", ""]
        if self.error:
            parts.append(f"**Not measured completely:** {self.error}\n")
        parts.extend(table.markdown() for table in self.tables)
        return "\n".join(parts)


def _tool_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        result = run(argv, timeout=10, check=False)
    except (subprocess.SubprocessError, OSError):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path``: the longest mount point above it."""
    real = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        for line in f:
            _, point, kind, *_ = line.split()
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, kind
    return fstype


def _leasefs_commit(repo: Path) -> str:
    try:
        head = run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, timeout=10).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "-uno"], cwd=repo, timeout=30).stdout
    except (subprocess.SubprocessError, OSError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def machine(tmp: Path, repo: Path) -> dict[str, Any]:
    """What a reader needs to compare two reports: the machine and the versions."""
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "temp_dir": str(tmp),
        "temp_fs": filesystem_of(tmp),
        "python": platform.python_version(),
        "leasefs": f"{leasefs.__version__} ({_leasefs_commit(repo)})",
        "git": _tool_version(["git", "--version"]),
        "fusermount3": _tool_version(["fusermount3", "--version"]),
        "bindfs": _tool_version(["bindfs", "--version"]),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def markdown(header: dict[str, Any], sections: list[Section]) -> str:
    lines = [f"# leasefs benchmark ({header['mode']}, {header['started']})", ""]
    lines.append("| machine | |")
    lines.append("| --- | --- |")
    for key, value in header["machine"].items():
        lines.append(f"| {key} | {value} |")
    lines.append(f"| total time | {header['duration_s']:.1f} s |")
    lines.append("")
    return "\n".join(lines) + "\n" + "\n".join(s.markdown() for s in sections)


def write(
    results_dir: Path, stamp: str, header: dict[str, Any], sections: list[Section]
) -> tuple[Path, Path, str]:
    """Write ``bench-STAMP.md`` and ``.json``; returns their paths and the markdown."""
    results_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(header, sections)
    md_path = results_dir / f"bench-{stamp}.md"
    json_path = results_dir / f"bench-{stamp}.json"
    md_path.write_text(text)
    document = {**header, "sections": [asdict(s) for s in sections]}
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return md_path, json_path, text
