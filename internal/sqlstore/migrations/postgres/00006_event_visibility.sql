-- +goose Up
-- The transaction that wrote each event (kept for audits; the feed relies on
-- InsertEvent taking an advisory lock, so events commit in seq order).
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- +goose Down
ALTER TABLE events DROP COLUMN txid;
