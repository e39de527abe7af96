-- +goose Up
ALTER TABLE apps ADD COLUMN webhook_url TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN webhook_paused_at TIMESTAMP;

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    app_id     TEXT NOT NULL REFERENCES apps (id),
    type       TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_app_seq ON events (app_id, seq);

CREATE TABLE webhook_deliveries (
    event_seq       BIGINT PRIMARY KEY REFERENCES events (seq),
    app_id          TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_payment ON webhook_deliveries (app_id, payment_id, event_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, event_seq);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq    BIGINT NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    url          TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    latency_ms   BIGINT NOT NULL,
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_seq);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE events;
ALTER TABLE apps DROP COLUMN webhook_paused_at;
ALTER TABLE apps DROP COLUMN webhook_secret;
ALTER TABLE apps DROP COLUMN webhook_url;
