-- +goose Up
-- A counter that changes whenever any app's keys or enabled state change,
-- however they are changed (Lipa, the CLI, another replica, plain SQL):
-- API keys are resolved from memory while it stays the same.
CREATE TABLE auth_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER apps_auth_epoch_update AFTER UPDATE OF key_hash, prev_key_hash, prev_key_expires_at, disabled ON apps
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER apps_auth_epoch_delete AFTER DELETE ON apps
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER apps_auth_epoch_delete;
DROP TRIGGER apps_auth_epoch_update;
DROP TABLE auth_epoch;
