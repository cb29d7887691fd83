"""Layer 2: the mount daemon — one repository, one agent, served in place until unmounted.

`_lease_machine` holds the rules of the mount's leases with no I/O; `_keeper` runs it against
the coordinator; `_snapshots` turns released files into versions; `_leasing_fs` is the
passthrough that asks before every change; `_applier` and `_follower` bring other agents'
versions in; `_daemon` builds all of these once, through their constructors.
"""

from ._bypass import Bypasser as Bypasser
from ._bypass import find_bypassers as find_bypassers
from ._daemon import MountConfig as MountConfig
from ._daemon import MountDaemon as MountDaemon

__all__ = [
    "Bypasser",
    "MountConfig",
    "MountDaemon",
    "find_bypassers",
]
