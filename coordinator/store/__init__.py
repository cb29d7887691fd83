"""Where the coordinator keeps its state: the store interface, its rows, and the SQLite store.

Everything above this package speaks only `Store` and `Tx` (`_protocol`); what is particular
to SQLite (SQL text, connections, WAL checkpoints, migrations/*.sql) stays in the `_sqlite*`
modules, so a second store (PostgreSQL) can sit beside it without the rest changing.
"""

from ._protocol import AccessTx as AccessTx
from ._protocol import AgentRow as AgentRow
from ._protocol import AuditQuery as AuditQuery
from ._protocol import AuditRow as AuditRow
from ._protocol import ContextRow as ContextRow
from ._protocol import EventRow as EventRow
from ._protocol import InvitationRow as InvitationRow
from ._protocol import LeaseRow as LeaseRow
from ._protocol import MemberRow as MemberRow
from ._protocol import MemoryRow as MemoryRow
from ._protocol import MessageRow as MessageRow
from ._protocol import Store as Store
from ._protocol import TeamTx as TeamTx
from ._protocol import ThreadRow as ThreadRow
from ._protocol import Tx as Tx
from ._protocol import VersionRow as VersionRow
from ._protocol import WorkRow as WorkRow
from ._protocol import WorkspaceRow as WorkspaceRow
from ._protocol import ZoneRow as ZoneRow
from ._sqlite import SqliteStore as SqliteStore

__all__ = [
    "AccessTx",
    "AgentRow",
    "AuditQuery",
    "AuditRow",
    "ContextRow",
    "EventRow",
    "InvitationRow",
    "LeaseRow",
    "MemberRow",
    "MemoryRow",
    "MessageRow",
    "SqliteStore",
    "Store",
    "TeamTx",
    "ThreadRow",
    "Tx",
    "VersionRow",
    "WorkRow",
    "WorkspaceRow",
    "ZoneRow",
]
