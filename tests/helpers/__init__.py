"""What the tests share besides fixtures: real processes, mounts, waits, and a proxy.

Conftest files hold only fixtures (and the types of the factories they yield); everything
else they and the tests use comes from here, each once:

- `coordinator`: `CoordinatorProcess` (`leasefs serve` on loopback), `serving()`, and
  `audit_actions()` (an audit read from outside trio)
- `mounts`: `MountProcess` (a bare passthrough mount) and `AgentMount` (`leasefs mount` as one
  agent), both `ChildMount`s that share start, stop and the unmount clean-up; `stop_all()` for
  finalizers; `using_data_dir()` to read a mount's registry
- `fuse`: `requires_fuse` (skip where FUSE is missing) and `unmount_cleanly()` (fusermount3
  -u, then -uz)
- `processes`: `run()` (a real tool with a timeout), `leasefs_cli()`, `die_with_parent()`,
  `reap()`, `GIT_ENV`
- `waiting`: `wait_for()`, the one bounded poll, naming what it waited for when it times out
- `events`: `take_events()`, a bounded read of an event stream
- `proxy`: `TcpProxy`, to cut and heal the network between a mount and its coordinator
"""

from .coordinator import CoordinatorProcess, audit_actions, serving
from .events import take_events
from .fuse import FUSE_MISSING, fuse_missing, requires_fuse, unmount_cleanly
from .mounts import AgentMount, ChildMount, MountProcess, stop_all, using_data_dir
from .processes import GIT_ENV, CommandFailed, die_with_parent, leasefs_cli, reap, run
from .proxy import TcpProxy
from .waiting import wait_for

__all__ = [
    "FUSE_MISSING",
    "GIT_ENV",
    "AgentMount",
    "ChildMount",
    "CommandFailed",
    "CoordinatorProcess",
    "MountProcess",
    "TcpProxy",
    "audit_actions",
    "die_with_parent",
    "fuse_missing",
    "leasefs_cli",
    "reap",
    "requires_fuse",
    "run",
    "serving",
    "stop_all",
    "take_events",
    "unmount_cleanly",
    "using_data_dir",
    "wait_for",
]
