-- Protected zones: globs whose files need care (warn), a human's yes (confirm), or stay shut (block).

CREATE TABLE zones (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    glob         TEXT    NOT NULL,
    level        TEXT    NOT NULL,   -- warn | confirm | block
    reason       TEXT    NOT NULL,
    created_by   INTEGER REFERENCES agents(id),
    created_at   REAL    NOT NULL,
    removed_at   REAL
);
CREATE INDEX zones_by_workspace ON zones(workspace_id, removed_at);

-- A confirmation: agents of this name may change files matching this path or glob.
CREATE TABLE zone_allowances (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    path         TEXT    NOT NULL,
    agent_name   TEXT    NOT NULL,
    granted_by   INTEGER REFERENCES agents(id),
    created_at   REAL    NOT NULL
);
CREATE INDEX allowances_by_agent ON zone_allowances(workspace_id, agent_name);
