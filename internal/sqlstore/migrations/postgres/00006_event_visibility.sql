-- +goose Up
-- The transaction that wrote each event: the feed shows an event only once
-- every transaction older than the oldest one still running has finished,
-- so a reader paging by seq never skips an event committed late.
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- +goose Down
ALTER TABLE events DROP COLUMN txid;
