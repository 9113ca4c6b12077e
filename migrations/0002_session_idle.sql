-- Sessions end after a while without use (the idle timeout) as well as at `expires_at`.
-- `last_seen` is Unix seconds; sessions open at the upgrade count as seen now.
ALTER TABLE sessions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen = CAST(strftime('%s', 'now') AS INTEGER);
