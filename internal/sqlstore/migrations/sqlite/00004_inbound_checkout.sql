-- +goose Up
CREATE INDEX inbound_checkout ON inbound_messages (checkout_request_id, outcome);

-- +goose Down
DROP INDEX inbound_checkout;
