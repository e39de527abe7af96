-- +goose Up
-- The operators' audit log: one row per operator action, written in the
-- action's own transaction. Rows are only ever inserted.
CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- The review queue: what Lipa could not settle by itself, for a person.
CREATE TABLE review_items (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason              TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'open',
    inbound_id          BIGINT,
    payment_id          TEXT NOT NULL DEFAULT '',
    checkout_request_id TEXT NOT NULL DEFAULT '',
    receipt             TEXT NOT NULL DEFAULT '',
    note                TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL,
    resolution          TEXT NOT NULL DEFAULT '',
    resolution_reason   TEXT NOT NULL DEFAULT '',
    resolved_by_kind    TEXT NOT NULL DEFAULT '',
    resolved_by         TEXT NOT NULL DEFAULT '',
    resolved_at         TIMESTAMPTZ,
    result_payment_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX review_items_open ON review_items (id) WHERE state = 'open';
CREATE INDEX review_items_payment ON review_items (payment_id, reason);
CREATE INDEX review_items_inbound ON review_items (inbound_id);

-- Payloads stored before the queue existed that were not applied cleanly
-- become open items, so an upgrade leaves nothing unseen.
INSERT INTO review_items (reason, inbound_id, payment_id, checkout_request_id, receipt, note, created_at)
SELECT CASE
        WHEN outcome = 'unmatched' THEN 'unmatched_callback'
        WHEN kind = 'stk_query' THEN 'query_contradicts_callback'
        WHEN note LIKE 'duplicate receipt:%' THEN 'receipt_conflict'
        WHEN note LIKE 'callback amount%' THEN 'amount_mismatch'
        WHEN note LIKE 'callback phone%' THEN 'phone_mismatch'
        WHEN outcome = 'conflict' THEN 'status_conflict'
        WHEN note LIKE 'TransAmount%' THEN 'invalid_amount'
        ELSE 'malformed_payload' END,
    id, payment_id, checkout_request_id, trans_id, note, received_at
FROM inbound_messages
WHERE outcome IN ('unmatched', 'conflict', 'malformed')
  AND kind IN ('stk_callback', 'c2b_confirmation', 'stk_query');

-- +goose Down
DROP TABLE review_items;
DROP TABLE audit_log;
