-- Team knowledge: work sessions with handoffs, memories, the context document, messages.

CREATE TABLE work (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    owner_id     INTEGER NOT NULL REFERENCES agents(id),
    title        TEXT    NOT NULL,
    plan         TEXT    NOT NULL,
    paths        TEXT    NOT NULL,   -- JSON list of paths or globs
    status       TEXT    NOT NULL,   -- active | parked | finished | cancelled
    progress     TEXT    NOT NULL DEFAULT '',
    notes        TEXT    NOT NULL DEFAULT '',
    handoff      TEXT,               -- JSON object, set by finish
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL
);
CREATE INDEX work_by_status ON work(workspace_id, status, id);

CREATE TABLE memories (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    agent_id     INTEGER NOT NULL REFERENCES agents(id),
    text         TEXT    NOT NULL,
    paths        TEXT    NOT NULL,   -- JSON list
    tags         TEXT    NOT NULL,   -- JSON list
    created_at   REAL    NOT NULL,
    expires_at   REAL,
    forgotten_at REAL
);
CREATE INDEX memories_by_workspace ON memories(workspace_id, id);
CREATE VIRTUAL TABLE memories_fts USING fts5(text, tags, paths, content='memories', content_rowid='id');
CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, text, tags, paths) VALUES (new.id, new.text, new.tags, new.paths);
END;
CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text, tags, paths) VALUES ('delete', old.id, old.text, old.tags, old.paths);
END;

CREATE TABLE context_docs (
    workspace_id INTEGER PRIMARY KEY REFERENCES workspaces(id),
    version      INTEGER NOT NULL,
    text         TEXT    NOT NULL,
    updated_by   INTEGER REFERENCES agents(id),
    updated_at   REAL    NOT NULL
);

CREATE TABLE threads (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    topic        TEXT    NOT NULL,
    opened_by    INTEGER NOT NULL REFERENCES agents(id),
    to_kind      TEXT    NOT NULL,   -- team | agent | work
    to_id        INTEGER,
    paths        TEXT    NOT NULL,
    closed       INTEGER NOT NULL DEFAULT 0,
    created_at   REAL    NOT NULL
);

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id    INTEGER NOT NULL REFERENCES threads(id),
    sender_id    INTEGER NOT NULL REFERENCES agents(id),
    body         TEXT    NOT NULL,
    created_at   REAL    NOT NULL
);
CREATE INDEX messages_by_thread ON messages(thread_id, id);

CREATE TABLE message_reads (
    agent_id     INTEGER NOT NULL REFERENCES agents(id),
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    PRIMARY KEY (agent_id, message_id)
);
