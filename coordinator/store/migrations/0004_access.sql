-- Access control: who may join a workspace, and with which role.
--
-- A member is a person's or a machine's standing in a workspace, got by redeeming an
-- invitation (or by creating the workspace: its owner). It holds a credential (stored
-- hashed) with which that machine registers agents, one per mount or session; every agent
-- acts with its member's role. Revoking a member retires all its agents at once.

CREATE TABLE members (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id    INTEGER NOT NULL REFERENCES workspaces(id),
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL,   -- owner | admin | member | viewer
    credential_hash TEXT    NOT NULL UNIQUE,
    invited_by      INTEGER REFERENCES members(id),
    created_at      REAL    NOT NULL,
    revoked_at      REAL
);
CREATE INDEX members_by_workspace ON members(workspace_id);

-- An invitation's secret is shown once; only its hash is kept.
CREATE TABLE invitations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    secret_hash  TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL,
    created_by   INTEGER REFERENCES members(id),
    created_at   REAL    NOT NULL,
    expires_at   REAL    NOT NULL,
    uses_left    INTEGER NOT NULL,
    revoked_at   REAL
);

-- Agents registered before access control (on a machine-local coordinator) keep acting as
-- admins, as every agent of a machine-local coordinator does.
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE agents ADD COLUMN member_id INTEGER REFERENCES members(id);
CREATE INDEX agents_by_member ON agents(member_id);
