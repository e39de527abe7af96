-- +goose Up
-- A delivery pass leases each app's due deliveries, earliest due first
-- (LeaseDeliveries), and asks which apps have any (DeliveryApps).
CREATE INDEX webhook_deliveries_app_due ON webhook_deliveries (app_id, next_attempt_at, event_seq) WHERE state = 'pending';

-- +goose Down
DROP INDEX webhook_deliveries_app_due;
