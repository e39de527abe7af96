-- +goose Up
ALTER TABLE payments ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN check_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN next_check_at TIMESTAMP;
CREATE INDEX payments_pending_check ON payments (next_check_at) WHERE status = 'PENDING';
CREATE INDEX payments_pending_phone ON payments (phone_number, created_at) WHERE status = 'PENDING';

CREATE TABLE idempotency_keys (
    app_id          TEXT NOT NULL REFERENCES apps (id),
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    response_status INTEGER,
    response_body   BLOB,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP INDEX payments_pending_phone;
DROP INDEX payments_pending_check;
ALTER TABLE payments DROP COLUMN next_check_at;
ALTER TABLE payments DROP COLUMN check_attempts;
ALTER TABLE payments DROP COLUMN resolved_by;
