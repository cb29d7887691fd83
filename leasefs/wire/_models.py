"""The wire models: every request and response body the coordinator and its clients exchange.

Server and client both import this module, so a field can never mean two things. Times are
seconds since the Unix epoch (floats), so a remaining TTL is a subtraction. Paths are
repository-relative and canonical (see `leasefs.wire._paths`). Error bodies and codes live in
`_errors`, the event stream's in `_events`, every default number in `_defaults`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Base64Bytes, BaseModel, Field, model_validator

from . import _defaults as defaults
from ._base import WIRE_CONFIG
from ._defaults import API_VERSION
from ._paths import check_lease_key, check_repo_path, is_folder

RepoPath = Annotated[str, AfterValidator(check_repo_path)]
LeaseKey = Annotated[str, AfterValidator(check_lease_key)]
"""A file path, or a folder lease's key: the folder's path and a '/'."""


def _check_folder_key(key: str) -> str:
    if not is_folder(key):
        raise ValueError(f"a folder lease's key ends with '/': {key!r}")
    return key


FolderKey = Annotated[LeaseKey, AfterValidator(_check_folder_key)]

_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_workspace_name(name: str) -> str:
    if not _WORKSPACE_NAME.match(name):
        raise ValueError(
            "a workspace name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit: {name!r}"
        )
    return name


def check_sha256(value: str) -> str:
    """Accept a lowercase hex sha256 digest, the only content address we use."""
    if not _SHA256.match(value):
        raise ValueError(f"a content hash is 64 lowercase hex digits (sha256): {value!r}")
    return value


WorkspaceName = Annotated[str, AfterValidator(_check_workspace_name)]
Sha256 = Annotated[str, AfterValidator(check_sha256)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = WIRE_CONFIG


class ServerLimits(_Model):
    """What the coordinator accepts, so a client can refuse locally before sending."""

    max_blob_bytes: int
    max_json_bytes: int


class Health(_Model):
    status: str
    version: str
    api: str = API_VERSION
    limits: ServerLimits | None = None
    failed_authentications: int = Field(
        default=0,
        description="Requests refused for a missing, unknown, retired or revoked token, and "
        "refused invitations or credentials, since the coordinator started.",
    )


class WorkspaceCreate(_Model):
    name: WorkspaceName
    owner: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default="owner",
        description="Where admission is by invitation: the name of the owner member made "
        "with it (who is creating it: user@host).",
    )


class Workspace(_Model):
    name: str
    created_at: float
    credential: str | None = Field(
        default=None,
        description="Only in the answer to creating it on a coordinator that admits by "
        "invitation: the owner's credential, shown once (register agents with it).",
    )


Role = Literal["owner", "admin", "member", "viewer"]
InvitedRole = Literal["admin", "member", "viewer"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}
"""What each role may do includes everything below it: a viewer reads, a member also changes
files, an admin also manages zones, invitations and members, the owner is the first admin."""


class AgentRegistration(_Model):
    """Who joins a workspace: one mount or one MCP session is one agent."""

    workspace: WorkspaceName
    name: ShortText
    host: Annotated[str, Field(max_length=200)] = ""
    tool: Annotated[str, Field(max_length=200)] = ""
    credential: Annotated[str | None, Field(max_length=200)] = Field(
        default=None,
        description="A member's credential (from `leasefs join`): needed where the "
        "coordinator admits by invitation; the agent acts with the member's role.",
    )


class AgentInfo(_Model):
    id: int
    name: str
    host: str
    tool: str
    joined_at: float
    left_at: float | None = None
    role: str = "admin"

    @property
    def label(self) -> str:
        """How people see the agent: ``alice@laptop``, or ``alice`` when no host is known."""
        return f"{self.name}@{self.host}" if self.host else self.name


class Registered(_Model):
    """Answer to a registration. The token is shown once; the coordinator keeps only its hash."""

    workspace: str
    agent: AgentInfo
    token: str


class InvitationCreate(_Model):
    role: InvitedRole = "member"
    expires_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 86400.0
    uses: Annotated[int, Field(ge=1, le=1000)] = 1


class Invitation(_Model):
    """A new invitation. The secret is shown once; the coordinator keeps only its hash."""

    workspace: str
    role: str
    expires_at: float
    uses: int
    secret: str


class InvitationRedeem(_Model):
    secret: Annotated[str, Field(min_length=1, max_length=200)]
    name: ShortText = Field(description="Who joins, as the team will see them: user@host.")


class Joined(_Model):
    """A redeemed invitation: the new member's credential, shown once."""

    workspace: str
    member: str
    role: str
    credential: str


class MemberInfo(_Model):
    id: int
    name: str
    role: str
    invited_by: str | None
    joined_at: float
    revoked_at: float | None
    agents: list[AgentInfo]
    last_seen: float | None = Field(description="When one of its agents last registered.")


LeaseScope = Literal["workspace", "branch"]
"""Whom a lease excludes: every agent of the workspace, whatever its branch (the default: two
branches editing one file is tomorrow's merge conflict), or only the agents on its own branch.
A branch-scoped lease and a workspace-scoped one on the same file still exclude each other."""


class LeaseRequest(_Model):
    """Ask for exclusive leases on several paths at once: all are granted or none is."""

    paths: Annotated[list[RepoPath], Field(min_length=1, max_length=defaults.MAX_LEASE_PATHS)]
    ttl_s: Annotated[float, Field(ge=defaults.MIN_LEASE_TTL_S, le=defaults.MAX_LEASE_TTL_S)] = (
        defaults.LEASE_TTL_S
    )
    wait_s: Annotated[float, Field(ge=0, le=defaults.MAX_WAIT_S)] = defaults.WAIT_S
    work: Annotated[str | None, Field(max_length=500)] = None
    branch: ShortText = defaults.DEFAULT_BRANCH
    lease_scope: LeaseScope = "workspace"
    folders: Annotated[list[FolderKey], Field(max_length=defaults.MAX_LEASE_PATHS)] = Field(
        default_factory=list,
        description="Folders (keys ending in '/') to lease as well if they are free now: "
        "nobody holds or waits for anything under them and nothing was ever recorded under "
        "them. Never waited for; a folder not granted is simply missing from the answer.",
    )


class Lease(_Model):
    path: str
    holder: AgentInfo
    token: int
    acquired_at: float
    expires_at: float
    ttl_s: float
    work: str | None = None
    # The branch a branch-scoped lease excludes agents of; None: every agent of the workspace.
    branch: str | None = None


class LeaseRef(_Model):
    """A lease named by its path (or folder key) and the fencing token it was granted with."""

    path: LeaseKey
    token: int


class Version(_Model):
    """One state of a path: its content (by hash) or its deletion, and where it came from."""

    id: int
    path: str
    branch: str
    hash: str | None
    deleted: bool
    base_hash: str | None
    size: int | None
    mode: int | None
    token: int
    author: AgentInfo
    created_at: float


class LeaseGrant(_Model):
    """Granted leases and the latest version of each path, to edit on top of it; and, where
    other branches changed a path, the latest version on each (tomorrow's merge conflict)."""

    leases: list[Lease]
    versions: dict[str, Version | None]
    elsewhere: dict[str, list[Version]] = {}


class RenewRequest(_Model):
    ttl_s: Annotated[
        float | None, Field(ge=defaults.MIN_LEASE_TTL_S, le=defaults.MAX_LEASE_TTL_S)
    ] = None


class RenewResult(_Model):
    leases: list[Lease]


class ReleaseRequest(_Model):
    leases: Annotated[list[LeaseRef], Field(min_length=1, max_length=defaults.MAX_LEASE_PATHS)]


class ReleaseResult(_Model):
    released: list[str]


class NarrowRequest(_Model):
    """Replace a folder lease by leases on exactly the files under it still held: someone
    else wants one of its other files. The kept leases carry the folder's fencing token."""

    folder: LeaseRef
    keep: Annotated[list[RepoPath], Field(max_length=defaults.MAX_LEASE_PATHS)]


class NarrowResult(_Model):
    leases: list[Lease]


class PathStatus(_Model):
    """Who holds a path now and who waits for it, first in line first."""

    path: str
    lease: Lease | None
    waiters: list[AgentInfo]


class VersionCreate(_Model):
    """A new version of a path, written under a lease whose fencing token it carries."""

    path: RepoPath
    hash: Sha256 | None = None
    deleted: bool = False
    base_hash: Sha256 | None = None
    token: int
    branch: ShortText = defaults.DEFAULT_BRANCH
    mode: Annotated[int | None, Field(ge=0, le=0o7777)] = None

    @model_validator(mode="after")
    def _content_or_deletion(self) -> VersionCreate:
        if self.deleted == (self.hash is not None):
            raise ValueError("a version has either a content hash or deleted=true, not both")
        return self


class VersionBatch(_Model):
    """Versions recorded in one request (a mount's snapshots of many small files): all of
    them or, if any one's lease is no longer current, none. Contents not uploaded as blobs
    come along, base64, keyed by their sha256."""

    versions: Annotated[
        list[VersionCreate], Field(min_length=1, max_length=defaults.MAX_BATCH_VERSIONS)
    ]
    contents: Annotated[
        dict[Sha256, Base64Bytes], Field(max_length=defaults.MAX_BATCH_VERSIONS)
    ] = {}


class BlobInfo(_Model):
    hash: str
    size: int


class ConflictReport(_Model):
    """A mount kept its local file and saved an incoming version beside it."""

    path: RepoPath
    version_id: int
    local_hash: Sha256 | None
    copy_path: RepoPath | None


class AuditEntry(_Model):
    id: int
    at: float
    agent_id: int | None
    agent_name: str | None
    action: str
    path: str | None
    detail: dict[str, Any]


# -- team knowledge: work sessions, memory, the context document, messages -------------------

WorkStatus = Literal["active", "parked", "finished", "cancelled"]
LongText = Annotated[str, Field(max_length=20000)]
TextList = Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=100)]
PathOrGlob = Annotated[str, Field(min_length=1, max_length=4096)]


class WorkStart(_Model):
    """Declare a work session: what, where (paths or globs), and how."""

    title: ShortText
    paths: Annotated[list[PathOrGlob], Field(max_length=1000)] = []
    plan: LongText = ""


class CheckResult(_Model):
    """One build or test command run at hand-off."""

    name: str
    command: str
    passed: bool
    exit_code: int
    output_tail: str


class Handoff(_Model):
    """What the next agent needs from a finished session."""

    summary: LongText
    next_steps: TextList = []
    decisions: TextList = []
    learnings: TextList = []
    failed_approaches: TextList = []
    checks: list[CheckResult] = []


class WorkPark(_Model):
    progress: LongText
    notes: LongText = ""


class Work(_Model):
    id: int
    title: str
    plan: str
    paths: list[str]
    status: WorkStatus
    owner: AgentInfo
    progress: str
    notes: str
    handoff: Handoff | None
    created_at: float
    updated_at: float


class MemoryCreate(_Model):
    text: Annotated[str, Field(min_length=1, max_length=20000)]
    paths: Annotated[list[PathOrGlob], Field(max_length=100)] = []
    tags: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=20)
    ] = []
    ttl_days: Annotated[float | None, Field(gt=0, le=3650)] = None


class Memory(_Model):
    """A piece of team knowledge; ``stale`` once the files it names changed a lot since."""

    id: int
    text: str
    paths: list[str]
    tags: list[str]
    author: AgentInfo
    created_at: float
    expires_at: float | None
    stale: bool
    changes_since: int


class ContextDoc(_Model):
    """The long-term project document; ``version`` grows with every update."""

    version: int
    text: str
    updated_by: AgentInfo | None
    updated_at: float | None


class ContextUpdate(_Model):
    text: Annotated[str, Field(max_length=200000)]
    expected_version: Annotated[int, Field(ge=0)]


class Ask(_Model):
    """A question to an agent (by name or id), a work session, or the whole team."""

    to: Annotated[str, Field(pattern=r"^(team|agent:.{1,200}|work:\d{1,12})$")]
    topic: ShortText
    question: Annotated[str, Field(min_length=1, max_length=20000)]
    paths: Annotated[list[PathOrGlob], Field(max_length=100)] = []


class Reply(_Model):
    body: Annotated[str, Field(min_length=1, max_length=20000)]
    close: bool = False


class Message(_Model):
    id: int
    thread_id: int
    sender: AgentInfo
    body: str
    created_at: float
    read: bool = False


class Thread(_Model):
    id: int
    topic: str
    to: str
    paths: list[str]
    opened_by: AgentInfo
    closed: bool
    created_at: float
    messages: list[Message]


class HotFile(_Model):
    path: str
    versions: int


class Briefing(_Model):
    """Everything an agent needs at the start of a session, in one answer."""

    workspace: str
    you: AgentInfo
    context: ContextDoc
    active_work: list[Work]
    parked_work: list[Work]
    recently_finished: list[Work]
    leases: list[PathStatus]
    memories: list[Memory]
    follow_ups: list[str]
    conflicts: list[AuditEntry]
    unread: list[Thread]
    hot_files: list[HotFile]


class WorkStarted(_Model):
    """A new work session, and the active sessions of others that touch the same paths."""

    work: Work
    overlapping: list[Work]


ZoneLevel = Literal["warn", "confirm", "block"]


class ZoneCreate(_Model):
    glob: Annotated[str, Field(min_length=1, max_length=4096)]
    level: ZoneLevel
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class Zone(_Model):
    id: int
    glob: str
    level: ZoneLevel
    reason: str
    created_at: float


class ZoneAllowance(_Model):
    """A human's yes: agents of this name may change files matching ``path`` in confirm zones."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    agent: ShortText
