-- +goose Up
-- Lookups by payment (merging a C2B copy into its STK payment, audits).
CREATE INDEX inbound_payment ON inbound_messages (payment_id);
CREATE INDEX events_payment ON events (payment_id);
CREATE INDEX webhook_deliveries_payment_all ON webhook_deliveries (payment_id);

-- +goose Down
DROP INDEX webhook_deliveries_payment_all;
DROP INDEX events_payment;
DROP INDEX inbound_payment;
