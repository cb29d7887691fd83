-- Branch-scoped leases: a lease row names the branch whose agents it excludes ('' for every
-- agent of the workspace, as all leases did before), so two branches may each hold one file.

CREATE TABLE leases_scoped (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    path         TEXT    NOT NULL,
    agent_id     INTEGER NOT NULL REFERENCES agents(id),
    token        INTEGER NOT NULL,
    acquired_at  REAL    NOT NULL,
    expires_at   REAL    NOT NULL,
    ttl_s        REAL    NOT NULL,
    work         TEXT,
    scope        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, path, scope)
);
INSERT INTO leases_scoped (workspace_id, path, agent_id, token, acquired_at, expires_at, ttl_s, work)
    SELECT workspace_id, path, agent_id, token, acquired_at, expires_at, ttl_s, work FROM leases;
DROP TABLE leases;
ALTER TABLE leases_scoped RENAME TO leases;
CREATE INDEX leases_by_agent ON leases(agent_id);
CREATE INDEX leases_by_expiry ON leases(expires_at);
