package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

const appColumns = "id, name, disabled, created_at, updated_at"

func scanApp(row interface{ Scan(...any) error }) (*lipa.App, error) {
	var a lipa.App
	if err := row.Scan(&a.ID, &a.Name, &a.Disabled, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return &a, nil
}

// CreateApp inserts an app with the hash of its API key and a short hint of
// the key for operators (its prefix). A name already taken is a Conflict
// error with code "app_exists".
func (t *Tx) CreateApp(ctx context.Context, a *lipa.App, keyHash, keyHint string) error {
	res, err := t.exec(ctx, `INSERT INTO apps (id, name, key_hash, key_hint, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		a.ID, a.Name, keyHash, keyHint, a.Disabled, dbTime(a.CreatedAt), dbTime(a.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert app: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lipa.Errorf(lipa.Conflict, "app_exists", "an app named %q already exists", a.Name)
	}
	return nil
}

// AppByKeyHash returns the app whose current API key hashes to keyHash, or a
// NotFound error.
func (t *Tx) AppByKeyHash(ctx context.Context, keyHash string) (*lipa.App, error) {
	a, err := scanApp(t.queryRow(ctx, "SELECT "+appColumns+" FROM apps WHERE key_hash = ?", keyHash))
	return a, notFound(err, "app_not_found", "no app has this API key")
}

// AppByName returns the app with that name, or a NotFound error.
func (t *Tx) AppByName(ctx context.Context, name string) (*lipa.App, error) {
	a, err := scanApp(t.queryRow(ctx, "SELECT "+appColumns+" FROM apps WHERE name = ?", name))
	return a, notFound(err, "app_not_found", fmt.Sprintf("no app is named %q", name))
}

// AppKeyHint returns the stored hint (prefix) of the app's API key.
func (t *Tx) AppKeyHint(ctx context.Context, id lipa.AppID) (string, error) {
	var hint string
	err := t.queryRow(ctx, "SELECT key_hint FROM apps WHERE id = ?", id).Scan(&hint)
	return hint, notFound(err, "app_not_found", "no such app")
}

// Apps returns every app, by name.
func (t *Tx) Apps(ctx context.Context) ([]lipa.App, error) {
	rows, err := t.query(ctx, "SELECT "+appColumns+" FROM apps ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var apps []lipa.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("scan app: %w", err)
		}
		apps = append(apps, *a)
	}
	return apps, rows.Err()
}

// SetAppKey replaces the app's API key hash and hint.
func (t *Tx) SetAppKey(ctx context.Context, id lipa.AppID, keyHash, keyHint string, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET key_hash = ?, key_hint = ?, updated_at = ? WHERE id = ?", keyHash, keyHint, dbTime(now), id)
	if err != nil {
		return fmt.Errorf("update app key: %w", err)
	}
	return nil
}

// SetAppDisabled disables or enables the app.
func (t *Tx) SetAppDisabled(ctx context.Context, id lipa.AppID, disabled bool, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET disabled = ?, updated_at = ? WHERE id = ?", disabled, dbTime(now), id)
	if err != nil {
		return fmt.Errorf("update app: %w", err)
	}
	return nil
}

// CountApps returns how many apps exist.
func (t *Tx) CountApps(ctx context.Context) (int, error) {
	var n int
	if err := t.queryRow(ctx, "SELECT COUNT(*) FROM apps").Scan(&n); err != nil {
		return 0, fmt.Errorf("count apps: %w", err)
	}
	return n, nil
}

// notFound turns sql.ErrNoRows into a lipa NotFound error with the given
// code and message, and wraps any other error.
func notFound(err error, code, msg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return lipa.Errorf(lipa.NotFound, code, "%s", msg)
	}
	return fmt.Errorf("query: %w", err)
}
