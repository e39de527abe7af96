-- +goose Up
CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    key_hash   TEXT NOT NULL UNIQUE,
    key_hint   TEXT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE payments (
    id                   TEXT PRIMARY KEY,
    app_id               TEXT REFERENCES apps (id),
    payment_type         TEXT NOT NULL,
    status               TEXT NOT NULL,
    phone_number         TEXT NOT NULL DEFAULT '',
    amount_cents         BIGINT NOT NULL,
    currency             TEXT NOT NULL DEFAULT 'KES',
    reference            TEXT NOT NULL DEFAULT '',
    account_reference    TEXT NOT NULL DEFAULT '',
    description          TEXT NOT NULL DEFAULT '',
    shortcode            TEXT NOT NULL DEFAULT '',
    transaction_type     TEXT NOT NULL DEFAULT '',
    mpesa_receipt_number TEXT UNIQUE,
    checkout_request_id  TEXT UNIQUE,
    merchant_request_id  TEXT NOT NULL DEFAULT '',
    customer_message     TEXT NOT NULL DEFAULT '',
    result_code          TEXT NOT NULL DEFAULT '',
    result_desc          TEXT NOT NULL DEFAULT '',
    failure_reason       TEXT NOT NULL DEFAULT '',
    claimed              BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_at           TIMESTAMP,
    claimed_by           TEXT,
    transaction_date     TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
CREATE INDEX payments_app_created ON payments (app_id, created_at, id);
CREATE INDEX payments_reference ON payments (reference);
CREATE INDEX payments_status_created ON payments (status, created_at);

CREATE TABLE inbound_messages (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT NOT NULL,
    path                TEXT NOT NULL,
    source_addr         TEXT NOT NULL,
    received_at         TIMESTAMP NOT NULL,
    body                BLOB NOT NULL,
    checkout_request_id TEXT NOT NULL DEFAULT '',
    trans_id            TEXT NOT NULL DEFAULT '',
    payment_id          TEXT NOT NULL DEFAULT '',
    outcome             TEXT NOT NULL,
    note                TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inbound_unmatched ON inbound_messages (checkout_request_id) WHERE outcome = 'unmatched';
CREATE INDEX inbound_received ON inbound_messages (received_at);

-- +goose Down
DROP TABLE inbound_messages;
DROP TABLE payments;
DROP TABLE apps;
