"""pjdfstest, the POSIX filesystem suite of FreeBSD, ZFS and many FUSE filesystems, run as
it is meant to be run (as root, ``prove -r`` from inside the folder under test) by
``scripts/posix --quick``: natively and inside a real mount with a second agent holding a
file, side by side. No test that passes natively may fail inside the mount, except the
deliberate differences `scripts/posix.py` and the README name."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import run

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "posix.py"


@pytest.mark.skipif(os.geteuid() != 0, reason="pjdfstest runs as root")
def test_the_pjdfstest_subset_passes_inside_a_mount_as_it_does_natively(tmp_path: Path) -> None:
    figures_path = tmp_path / "posix.json"
    done = run(sys.executable, SCRIPT, "--quick", "--json", figures_path, "--tmpdir", tmp_path,
               check=False, timeout=1800)  # fmt: skip
    assert figures_path.exists(), done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    native, mounted = figures["native"], figures["leasefs mount"]
    assert native["tests"] > 5000 and not native["broken"], "the suite did not really run"
    assert not mounted["broken"], mounted["broken"]
    assert figures["unexpected"] == {}, done.stdout[-6000:]
    assert figures["setup"]["bob_held"] == ["bob.txt"]  # the second agent held its file
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
