-- +goose Up
-- Refunds: one row per request to reverse a payment (Daraja's Reversal).
-- A refund is a fact about its payment; it never changes the payment.
CREATE TABLE refunds (
    id                         TEXT PRIMARY KEY,
    payment_id                 TEXT NOT NULL REFERENCES payments (id),
    app_id                     TEXT NOT NULL REFERENCES apps (id),
    status                     TEXT NOT NULL,
    amount_cents               BIGINT NOT NULL,
    reason                     TEXT NOT NULL,
    receipt                    TEXT NOT NULL,
    originator_conversation_id TEXT UNIQUE,
    conversation_id            TEXT UNIQUE,
    result_code                TEXT NOT NULL DEFAULT '',
    result_desc                TEXT NOT NULL DEFAULT '',
    failure_reason             TEXT NOT NULL DEFAULT '',
    reversal_receipt           TEXT NOT NULL DEFAULT '',
    resolved_by                TEXT NOT NULL DEFAULT '',
    approval_required          BOOLEAN NOT NULL DEFAULT FALSE,
    decided_by                 TEXT NOT NULL DEFAULT '',
    decision_reason            TEXT NOT NULL DEFAULT '',
    decided_at                 TIMESTAMP,
    -- When the reversal was (or may have been) sent; NULL: not sent yet,
    -- or provably never reached Daraja.
    sent_at                    TIMESTAMP,
    -- A replica sending or checking it holds it until then.
    lease_until                TIMESTAMP,
    check_attempts             INTEGER NOT NULL DEFAULT 0,
    next_check_at              TIMESTAMP,
    completed_at               TIMESTAMP,
    created_at                 TIMESTAMP NOT NULL,
    updated_at                 TIMESTAMP NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_app_status ON refunds (app_id, status);
CREATE INDEX refunds_status ON refunds (status, created_at);
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE status = 'PENDING';
-- At most one refund of a payment is under way or done.
CREATE UNIQUE INDEX refunds_one_live ON refunds (payment_id) WHERE status IN ('AWAITING_APPROVAL', 'PENDING', 'SUCCESS');

-- Transaction Status requests: what was asked, why, and M-Pesa's answer
-- (which arrives later, at Lipa's result URL).
CREATE TABLE status_queries (
    id                         TEXT PRIMARY KEY,
    purpose                    TEXT NOT NULL,
    receipt                    TEXT NOT NULL DEFAULT '',
    original_conversation_id   TEXT NOT NULL DEFAULT '',
    refund_id                  TEXT NOT NULL DEFAULT '',
    payment_id                 TEXT NOT NULL DEFAULT '',
    app_id                     TEXT NOT NULL DEFAULT '',
    inbound_id                 BIGINT,
    originator_conversation_id TEXT UNIQUE,
    conversation_id            TEXT UNIQUE,
    state                      TEXT NOT NULL,
    result_code                TEXT NOT NULL DEFAULT '',
    result_desc                TEXT NOT NULL DEFAULT '',
    result_inbound_id          BIGINT,
    created_at                 TIMESTAMP NOT NULL,
    answered_at                TIMESTAMP
);
CREATE INDEX status_queries_receipt ON status_queries (receipt, created_at);
CREATE INDEX status_queries_refund ON status_queries (refund_id);

-- +goose Down
DROP TABLE status_queries;
DROP TABLE refunds;
