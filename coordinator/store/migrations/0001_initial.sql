-- Workspaces, agents, leases, blobs, versions, events and the audit log.
-- Times are seconds since the Unix epoch (REAL). JSON columns hold objects.

CREATE TABLE workspaces (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    created_at      REAL    NOT NULL,
    fencing_counter INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE agents (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name         TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    tool         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    joined_at    REAL    NOT NULL,
    left_at      REAL
);

-- The primary key is the exclusivity guarantee: one row, one holder, per (workspace, path).
CREATE TABLE leases (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    path         TEXT    NOT NULL,
    agent_id     INTEGER NOT NULL REFERENCES agents(id),
    token        INTEGER NOT NULL,
    acquired_at  REAL    NOT NULL,
    expires_at   REAL    NOT NULL,
    ttl_s        REAL    NOT NULL,
    work         TEXT,
    PRIMARY KEY (workspace_id, path)
);
CREATE INDEX leases_by_agent ON leases(agent_id);
CREATE INDEX leases_by_expiry ON leases(expires_at);

CREATE TABLE blobs (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    hash         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created_at   REAL    NOT NULL,
    PRIMARY KEY (workspace_id, hash)
);

CREATE TABLE versions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    path         TEXT    NOT NULL,
    branch       TEXT    NOT NULL,
    hash         TEXT,
    deleted      INTEGER NOT NULL,
    base_hash    TEXT,
    size         INTEGER,
    mode         INTEGER,
    token        INTEGER NOT NULL,
    agent_id     INTEGER NOT NULL REFERENCES agents(id),
    created_at   REAL    NOT NULL
);
CREATE INDEX versions_by_path ON versions(workspace_id, path, branch, id);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    type         TEXT    NOT NULL,
    at           REAL    NOT NULL,
    agent_id     INTEGER,
    path         TEXT,
    data         TEXT    NOT NULL
);
CREATE INDEX events_by_workspace ON events(workspace_id, id);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    at           REAL    NOT NULL,
    agent_id     INTEGER,
    action       TEXT    NOT NULL,
    path         TEXT,
    detail       TEXT    NOT NULL
);
CREATE INDEX audit_by_path ON audit(workspace_id, path, id);
CREATE INDEX audit_by_agent ON audit(workspace_id, agent_id, id);
CREATE INDEX audit_by_time ON audit(workspace_id, at);
