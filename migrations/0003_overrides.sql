-- Overrides of units unitdeck did not create: one drop-in each (UNIT.d/50-unitdeck.conf),
-- with its history. A removal is a revision too (settings and text NULL), so that a
-- rollback can bring the override back, or take it away again.
CREATE TABLE overrides (
    unit       TEXT PRIMARY KEY,      -- the unit's own name (an alias is resolved first)
    revision   INTEGER NOT NULL,      -- the revision currently installed
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE override_revisions (
    unit       TEXT NOT NULL REFERENCES overrides (unit) ON DELETE CASCADE,
    revision   INTEGER NOT NULL,
    settings   TEXT,                  -- the override spec as JSON; NULL: removed
    text       TEXT,                  -- the drop-in as written; NULL: removed
    restart    INTEGER NOT NULL,      -- 1: a running unit needed a restart to apply it
    created_at TEXT NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (unit, revision),
    CHECK ((settings IS NULL) = (text IS NULL))
) STRICT;
