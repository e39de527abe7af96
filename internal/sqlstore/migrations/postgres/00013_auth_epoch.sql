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
CREATE FUNCTION lipa_bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER apps_auth_epoch AFTER UPDATE OF key_hash, prev_key_hash, prev_key_expires_at, disabled OR DELETE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION lipa_bump_auth_epoch();

-- +goose Down
DROP TRIGGER apps_auth_epoch ON apps;
DROP FUNCTION lipa_bump_auth_epoch();
DROP TABLE auth_epoch;
