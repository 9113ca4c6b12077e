-- Notifications (issue 17): where to send them, what was sent, and what started the runs
-- the journal cannot tell apart (a timer's, or unitdeck's own "Run now").

CREATE TABLE notification_channels (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy', 'slack')),
    url        TEXT NOT NULL,                 -- a secret: shown to admins only
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    events     TEXT NOT NULL,                 -- JSON array of event names
    units      TEXT NOT NULL,                 -- JSON array of unit names; empty = every unit
    cooldown_s INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- A delivery outlives its channel: the channel's name is kept with it.
CREATE TABLE notification_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id    INTEGER,
    channel_name  TEXT NOT NULL,
    event         TEXT NOT NULL,
    unit          TEXT,
    invocation_id TEXT,
    time          TEXT NOT NULL,              -- when the first attempt was made
    status        TEXT NOT NULL CHECK (status IN ('sending', 'delivered', 'failed', 'dropped')),
    http_status   INTEGER,
    attempts      INTEGER NOT NULL,
    error         TEXT
) STRICT;

CREATE TABLE run_triggers (
    invocation_id TEXT PRIMARY KEY,
    unit          TEXT NOT NULL,
    trigger       TEXT NOT NULL CHECK (trigger IN ('timer', 'manual')),
    recorded_at   TEXT NOT NULL
) STRICT;
