-- +goose Up
-- SQLite runs one write transaction at a time, so events commit in seq
-- order and need no transaction id (the PostgreSQL migration adds one).
SELECT 1;

-- +goose Down
SELECT 1;
