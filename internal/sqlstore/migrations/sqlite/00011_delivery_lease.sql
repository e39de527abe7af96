-- +goose Up
-- A delivery pass leases each app's due deliveries, earliest due first
-- (LeaseDeliveries), and asks which apps have any (DeliveryApps). The
-- "next_attempt_at IS NOT NULL" (always true) keeps the index out of the
-- lease's per-payment lookup, which must use webhook_deliveries_payment: a
-- planner without statistics (right after a burst) could otherwise pick
-- this one there and scan the app's whole backlog for every row.
CREATE INDEX webhook_deliveries_app_due ON webhook_deliveries (app_id, next_attempt_at, event_seq)
    WHERE state = 'pending' AND next_attempt_at IS NOT NULL;

-- +goose Down
DROP INDEX webhook_deliveries_app_due;
