-- +goose Up
ALTER TABLE apps ADD COLUMN prev_key_hash TEXT;
ALTER TABLE apps ADD COLUMN prev_key_expires_at TIMESTAMPTZ;
ALTER TABLE apps ADD COLUMN last_used_at TIMESTAMPTZ;
CREATE INDEX apps_prev_key_hash ON apps (prev_key_hash);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP INDEX apps_prev_key_hash;
ALTER TABLE apps DROP COLUMN last_used_at;
ALTER TABLE apps DROP COLUMN prev_key_expires_at;
ALTER TABLE apps DROP COLUMN prev_key_hash;
