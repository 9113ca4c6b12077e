-- unitdeck's state: login, tokens, the audit log and the unit files it created.
-- Times are RFC 3339 UTC text with microseconds; expiry is Unix seconds for cheap comparison.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Only a SHA-256 of each session id is stored: a leaked database holds no live cookie.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
) STRICT;

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT
) STRICT;

CREATE TABLE unit_files (
    name       TEXT PRIMARY KEY,      -- the primary unit, e.g. shop-api.service
    kind       TEXT NOT NULL CHECK (kind IN ('service', 'job')),
    revision   INTEGER NOT NULL,      -- the revision currently installed
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE unit_file_revisions (
    name       TEXT NOT NULL REFERENCES unit_files (name) ON DELETE CASCADE,
    revision   INTEGER NOT NULL,
    spec       TEXT NOT NULL,         -- the spec as JSON
    files      TEXT NOT NULL,         -- {"file name": "text"} as JSON
    created_at TEXT NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (name, revision)
) STRICT;
