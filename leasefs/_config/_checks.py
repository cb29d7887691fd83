"""Health checks at hand-off: the build and test commands named in ``leasefs.toml``.

    [checks]
    build = "make"
    test = "pytest -q"

They run in the repository, each with a time limit, and the result with the tail of its
output goes into the hand-off, so the next agent knows whether it inherits a green tree.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import anyio

from ..wire import CheckResult

TIMEOUT_S = 600.0
TAIL_CHARS = 4000


def configured_checks(repo: Path) -> dict[str, str]:
    try:
        with open(repo / "leasefs.toml", "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    checks = data.get("checks", {})
    return {str(k): str(v) for k, v in checks.items() if isinstance(v, str)}


def _run(name: str, command: str, repo: Path) -> CheckResult:
    try:
        done = subprocess.run(
            command, shell=True, cwd=repo, capture_output=True, text=True, timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        partial = [
            p.decode(errors="replace") if isinstance(p, bytes) else (p or "")
            for p in (exc.stdout, exc.stderr)
        ]
        output = "".join(partial) + f"\n(timed out after {TIMEOUT_S:g} s)"
        code = -1
    return CheckResult(
        name=name,
        command=command,
        passed=code == 0,
        exit_code=code,
        output_tail=output[-TAIL_CHARS:],
    )


async def run_checks(repo: Path) -> list[CheckResult]:
    results = []
    for name, command in configured_checks(repo).items():
        results.append(await anyio.to_thread.run_sync(_run, name, command, repo))
    return results
