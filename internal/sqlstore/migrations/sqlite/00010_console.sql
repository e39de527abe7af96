-- +goose Up
-- Operators of the web console and their server-side sessions. A session
-- is found by the SHA-256 of its cookie token, never by the token itself.
CREATE TABLE operators (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    last_sign_in_at TIMESTAMP,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

CREATE TABLE operator_sessions (
    token_hash   TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    source_addr  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);

-- The dashboard's figures of days that can no longer change (no PENDING
-- payment left, past the pending expiry), kept once computed: day is the
-- Kenya date (YYYY-MM-DD), app_id '' the intake pool.
CREATE TABLE payment_days (
    day         TEXT PRIMARY KEY,
    computed_at TIMESTAMP NOT NULL
);
CREATE TABLE payment_day_counts (
    day            TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    payment_type   TEXT NOT NULL,
    status         TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    resolved_by    TEXT NOT NULL,
    payments       BIGINT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    PRIMARY KEY (day, app_id, payment_type, status, failure_reason, resolved_by)
);
CREATE TABLE payment_day_lags (
    day     TEXT NOT NULL,
    app_id  TEXT NOT NULL,
    lags_ms TEXT NOT NULL,
    PRIMARY KEY (day, app_id)
);

-- The console's filters and search, newest first, each behind an index
-- that also gives the order (created_at, id).
DROP INDEX payments_status_created;
CREATE INDEX payments_status_created ON payments (status, created_at, id);
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_type_created ON payments (payment_type, created_at, id);
CREATE INDEX payments_claimed_created ON payments (claimed, created_at, id);
CREATE INDEX payments_phone_created ON payments (phone_number, created_at, id);
CREATE INDEX payments_intake ON payments (created_at, id) WHERE app_id IS NULL;
CREATE INDEX inbound_trans ON inbound_messages (trans_id);
CREATE INDEX webhook_deliveries_state ON webhook_deliveries (state, event_seq);
CREATE INDEX webhook_deliveries_state_app ON webhook_deliveries (state, app_id);

-- +goose Down
DROP INDEX webhook_deliveries_state_app;
DROP INDEX webhook_deliveries_state;
DROP INDEX inbound_trans;
DROP INDEX payments_intake;
DROP INDEX payments_phone_created;
DROP INDEX payments_claimed_created;
DROP INDEX payments_type_created;
DROP INDEX payments_created;
DROP INDEX payments_status_created;
CREATE INDEX payments_status_created ON payments (status, created_at);
DROP TABLE payment_day_lags;
DROP TABLE payment_day_counts;
DROP TABLE payment_days;
DROP TABLE operator_sessions;
DROP TABLE operators;
