"""Every default number of leasefs, written once.

The coordinator, the client, the mount and the command line all read their defaults from here,
so a TTL or a limit can never mean one thing on one side and another on the other.
"""

from __future__ import annotations

LEASEFS_VERSION = "0.1.0"
"""The release both sides report (`leasefs.__version__`, the coordinator's health answer)."""
API_VERSION = "v1"
DEFAULT_PORT = 7420
DEFAULT_BRANCH = "main"
ADMIN_SECRET_HEADER = "X-Leasefs-Admin-Secret"
"""The header that carries a coordinator's admin secret (creating a workspace)."""

# Leases
LEASE_TTL_S = 30.0
"""How long a lease lives without renewal (DESIGN: TTL and heartbeat)."""
MIN_LEASE_TTL_S = 0.5
MAX_LEASE_TTL_S = 3600.0
IDLE_GRACE_S = 3.0
"""How long the mount keeps a lease after the last change to its file."""
WAIT_S = 0.0
"""How long a write waits for a held file before it fails with EBUSY; 0: at once."""
MAX_WAIT_S = 600.0
BREAK_TIMEOUT_S = 30.0
"""How long a holder may keep a lease another agent waits for before it is not renewed."""
MAX_LEASE_PATHS = 1000
"""Paths one acquire or release request may name."""

# Sizes the coordinator accepts
MAX_BLOB_BYTES = 1 << 30
MAX_JSON_BYTES = 1 << 20
MAX_LEASES_PER_AGENT = 10_000
RATE_LIMIT_PER_S = 1_000.0
"""Requests per second per agent; bursts of twice that pass."""

# Snapshots
SMALL_BLOB_BYTES = 64 << 10
"""Contents up to this size travel inline (one PUT, or base64 inside a version batch)."""
MAX_BATCH_VERSIONS = 500
"""Versions one batch request may record."""

# The mount's control socket
MAX_CONTROL_LINE_BYTES = 1 << 20
