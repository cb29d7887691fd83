"""Layer 0: what the coordinator and every client agree on, and nothing else.

Request and response bodies, error codes, the event stream, repository paths and path globs,
the mount's control-socket messages, and every default number (`_defaults`). Server and
clients both import this package, so a field or a default can never mean two things. It
imports nothing else of ours.
"""

from ._control import CONTROL_REQUEST as CONTROL_REQUEST
from ._control import AddRunAgent as AddRunAgent
from ._control import ConflictStatus as ConflictStatus
from ._control import ControlAnswer as ControlAnswer
from ._control import ControlRefusal as ControlRefusal
from ._control import ControlRequest as ControlRequest
from ._control import Done as Done
from ._control import HeldStatus as HeldStatus
from ._control import MountStatus as MountStatus
from ._control import Released as Released
from ._control import ReleaseNow as ReleaseNow
from ._control import RunAgentAdded as RunAgentAdded
from ._control import RunAgentStatus as RunAgentStatus
from ._control import RunEnded as RunEnded
from ._control import StatusAnswer as StatusAnswer
from ._control import StatusRequest as StatusRequest
from ._control import UnmountRequest as UnmountRequest
from ._control import encode_line as encode_line
from ._defaults import ADMIN_SECRET_HEADER as ADMIN_SECRET_HEADER
from ._defaults import API_VERSION as API_VERSION
from ._defaults import BREAK_TIMEOUT_S as BREAK_TIMEOUT_S
from ._defaults import DEFAULT_BRANCH as DEFAULT_BRANCH
from ._defaults import DEFAULT_PORT as DEFAULT_PORT
from ._defaults import IDLE_GRACE_S as IDLE_GRACE_S
from ._defaults import LEASE_TTL_S as LEASE_TTL_S
from ._defaults import LEASEFS_VERSION as LEASEFS_VERSION
from ._defaults import MAX_BATCH_VERSIONS as MAX_BATCH_VERSIONS
from ._defaults import MAX_BLOB_BYTES as MAX_BLOB_BYTES
from ._defaults import MAX_CONTROL_LINE_BYTES as MAX_CONTROL_LINE_BYTES
from ._defaults import MAX_JSON_BYTES as MAX_JSON_BYTES
from ._defaults import MAX_LEASE_PATHS as MAX_LEASE_PATHS
from ._defaults import MAX_LEASE_TTL_S as MAX_LEASE_TTL_S
from ._defaults import MAX_LEASES_PER_AGENT as MAX_LEASES_PER_AGENT
from ._defaults import MAX_WAIT_S as MAX_WAIT_S
from ._defaults import MIN_LEASE_TTL_S as MIN_LEASE_TTL_S
from ._defaults import RATE_LIMIT_PER_S as RATE_LIMIT_PER_S
from ._defaults import SMALL_BLOB_BYTES as SMALL_BLOB_BYTES
from ._defaults import WAIT_S as WAIT_S
from ._errors import ErrorBody as ErrorBody
from ._errors import ErrorCode as ErrorCode
from ._events import Event as Event
from ._events import EventsHead as EventsHead
from ._events import EventType as EventType
from ._globs import any_overlap as any_overlap
from ._globs import specs_overlap as specs_overlap
from ._hosts import is_loopback_host as is_loopback_host
from ._hosts import is_plain_remote as is_plain_remote
from ._models import ROLE_RANK as ROLE_RANK
from ._models import AgentInfo as AgentInfo
from ._models import AgentRegistration as AgentRegistration
from ._models import Ask as Ask
from ._models import AuditEntry as AuditEntry
from ._models import BlobInfo as BlobInfo
from ._models import Briefing as Briefing
from ._models import CheckResult as CheckResult
from ._models import ConflictReport as ConflictReport
from ._models import ContextDoc as ContextDoc
from ._models import ContextUpdate as ContextUpdate
from ._models import Handoff as Handoff
from ._models import Health as Health
from ._models import HotFile as HotFile
from ._models import Invitation as Invitation
from ._models import InvitationCreate as InvitationCreate
from ._models import InvitationRedeem as InvitationRedeem
from ._models import InvitedRole as InvitedRole
from ._models import Joined as Joined
from ._models import Lease as Lease
from ._models import LeaseGrant as LeaseGrant
from ._models import LeaseKey as LeaseKey
from ._models import LeaseRef as LeaseRef
from ._models import LeaseRequest as LeaseRequest
from ._models import LeaseScope as LeaseScope
from ._models import LongText as LongText
from ._models import MemberInfo as MemberInfo
from ._models import Memory as Memory
from ._models import MemoryCreate as MemoryCreate
from ._models import Message as Message
from ._models import NarrowRequest as NarrowRequest
from ._models import NarrowResult as NarrowResult
from ._models import PathOrGlob as PathOrGlob
from ._models import PathStatus as PathStatus
from ._models import Registered as Registered
from ._models import ReleaseRequest as ReleaseRequest
from ._models import ReleaseResult as ReleaseResult
from ._models import RenewRequest as RenewRequest
from ._models import RenewResult as RenewResult
from ._models import Reply as Reply
from ._models import RepoPath as RepoPath
from ._models import Role as Role
from ._models import ServerLimits as ServerLimits
from ._models import Sha256 as Sha256
from ._models import ShortText as ShortText
from ._models import TextList as TextList
from ._models import Thread as Thread
from ._models import Version as Version
from ._models import VersionBatch as VersionBatch
from ._models import VersionCreate as VersionCreate
from ._models import Work as Work
from ._models import WorkPark as WorkPark
from ._models import Workspace as Workspace
from ._models import WorkspaceCreate as WorkspaceCreate
from ._models import WorkspaceName as WorkspaceName
from ._models import WorkStart as WorkStart
from ._models import WorkStarted as WorkStarted
from ._models import WorkStatus as WorkStatus
from ._models import Zone as Zone
from ._models import ZoneAllowance as ZoneAllowance
from ._models import ZoneCreate as ZoneCreate
from ._models import ZoneLevel as ZoneLevel
from ._models import check_sha256 as check_sha256
from ._paths import MAX_NAME_BYTES as MAX_NAME_BYTES
from ._paths import MAX_PATH_BYTES as MAX_PATH_BYTES
from ._paths import InvalidPath as InvalidPath
from ._paths import check_lease_key as check_lease_key
from ._paths import check_repo_path as check_repo_path
from ._paths import covers as covers
from ._paths import folders_above as folders_above
from ._paths import is_folder as is_folder
from ._paths import overlaps as overlaps

__all__ = [
    "ADMIN_SECRET_HEADER",
    "API_VERSION",
    "BREAK_TIMEOUT_S",
    "CONTROL_REQUEST",
    "DEFAULT_BRANCH",
    "DEFAULT_PORT",
    "IDLE_GRACE_S",
    "LEASEFS_VERSION",
    "LEASE_TTL_S",
    "MAX_BATCH_VERSIONS",
    "MAX_BLOB_BYTES",
    "MAX_CONTROL_LINE_BYTES",
    "MAX_JSON_BYTES",
    "MAX_LEASES_PER_AGENT",
    "MAX_LEASE_PATHS",
    "MAX_LEASE_TTL_S",
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "MAX_WAIT_S",
    "MIN_LEASE_TTL_S",
    "RATE_LIMIT_PER_S",
    "ROLE_RANK",
    "SMALL_BLOB_BYTES",
    "WAIT_S",
    "AddRunAgent",
    "AgentInfo",
    "AgentRegistration",
    "Ask",
    "AuditEntry",
    "BlobInfo",
    "Briefing",
    "CheckResult",
    "ConflictReport",
    "ConflictStatus",
    "ContextDoc",
    "ContextUpdate",
    "ControlAnswer",
    "ControlRefusal",
    "ControlRequest",
    "Done",
    "ErrorBody",
    "ErrorCode",
    "Event",
    "EventType",
    "EventsHead",
    "Handoff",
    "Health",
    "HeldStatus",
    "HotFile",
    "InvalidPath",
    "Invitation",
    "InvitationCreate",
    "InvitationRedeem",
    "InvitedRole",
    "Joined",
    "Lease",
    "LeaseGrant",
    "LeaseKey",
    "LeaseRef",
    "LeaseRequest",
    "LeaseScope",
    "LongText",
    "MemberInfo",
    "Memory",
    "MemoryCreate",
    "Message",
    "MountStatus",
    "NarrowRequest",
    "NarrowResult",
    "PathOrGlob",
    "PathStatus",
    "Registered",
    "ReleaseNow",
    "ReleaseRequest",
    "ReleaseResult",
    "Released",
    "RenewRequest",
    "RenewResult",
    "Reply",
    "RepoPath",
    "Role",
    "RunAgentAdded",
    "RunAgentStatus",
    "RunEnded",
    "ServerLimits",
    "Sha256",
    "ShortText",
    "StatusAnswer",
    "StatusRequest",
    "TextList",
    "Thread",
    "UnmountRequest",
    "Version",
    "VersionBatch",
    "VersionCreate",
    "Work",
    "WorkPark",
    "WorkStart",
    "WorkStarted",
    "WorkStatus",
    "Workspace",
    "WorkspaceCreate",
    "WorkspaceName",
    "Zone",
    "ZoneAllowance",
    "ZoneCreate",
    "ZoneLevel",
    "any_overlap",
    "check_lease_key",
    "check_repo_path",
    "check_sha256",
    "covers",
    "encode_line",
    "folders_above",
    "is_folder",
    "is_loopback_host",
    "is_plain_remote",
    "overlaps",
    "specs_overlap",
]
