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

// ErrAppExists is the cause of CreateApp's "app_exists" error; callers
// decide on it with errors.Is, never on the error's code.
var ErrAppExists = errors.New("app name taken")

// CreateApp inserts an app with the hash of its API key and a short hint of
// the key for operators (its prefix). A name already taken is a Conflict
// error with code "app_exists" wrapping ErrAppExists.
func (t *Tx) CreateApp(ctx context.Context, a *lipa.App, keyHash, keyHint string) error {
	res, err := t.exec(ctx, `INSERT INTO apps (id, name, key_hash, key_hint, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		a.ID, a.Name, keyHash, keyHint, a.Disabled, dbTime(a.CreatedAt), dbTime(a.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert app: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lipa.Errorf(lipa.Conflict, "app_exists", "an app named %q already exists", a.Name).Wrap(ErrAppExists)
	}
	return nil
}

// AppForKey returns the app whose current API key hashes to keyHash, or
// whose previous key does and is still within its rotation grace period at
// now, and until when that key is valid: zero for the current key, the end
// of the grace period for the previous one. No such app is a NotFound
// error.
func (t *Tx) AppForKey(ctx context.Context, keyHash string, now time.Time) (*lipa.App, time.Time, error) {
	var a lipa.App
	var current bool
	var until sql.NullTime
	err := t.queryRow(ctx, "SELECT "+appColumns+`, key_hash = ?, prev_key_expires_at FROM apps
		WHERE key_hash = ? OR (prev_key_hash = ? AND prev_key_expires_at > ?) LIMIT 1`, keyHash, keyHash, keyHash, dbTime(now)).
		Scan(&a.ID, &a.Name, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &current, &until)
	if err != nil {
		return nil, time.Time{}, notFound(err, "app_not_found", "no app has this API key")
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	if current {
		return &a, time.Time{}, nil
	}
	return &a, fromNull(until), nil
}

// AuthEpoch returns a number that changes whenever any app's keys or
// enabled state change (a trigger on apps counts every such UPDATE and
// every DELETE, whoever makes it): what was read about API keys under one
// epoch holds as long as the epoch is the same.
func (t *Tx) AuthEpoch(ctx context.Context) (int64, error) {
	var e int64
	if err := t.queryRow(ctx, "SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&e); err != nil {
		return 0, fmt.Errorf("auth epoch: %w", err)
	}
	return e, nil
}

// TouchApp records that the app's key was used at now.
func (t *Tx) TouchApp(ctx context.Context, id lipa.AppID, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET last_used_at = ? WHERE id = ?", dbTime(now), id)
	if err != nil {
		return fmt.Errorf("touch app: %w", err)
	}
	return nil
}

// Setting returns a stored setting's value, or "" when it is not set.
func (t *Tx) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := t.queryRow(ctx, "SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, err)
	}
	return v, nil
}

// EnsureSetting stores value under name unless a value is there already,
// and returns the value that is stored.
func (t *Tx) EnsureSetting(ctx context.Context, name, value string) (string, error) {
	if _, err := t.exec(ctx, "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, value); err != nil {
		return "", fmt.Errorf("store setting %s: %w", name, err)
	}
	return t.Setting(ctx, name)
}

// PutSetting stores value under name, replacing any value there.
func (t *Tx) PutSetting(ctx context.Context, name, value string) error {
	if _, err := t.exec(ctx, "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value); err != nil {
		return fmt.Errorf("store setting %s: %w", name, err)
	}
	return nil
}

// AppByName returns the app with that name, or a NotFound error.
func (t *Tx) AppByName(ctx context.Context, name string) (*lipa.App, error) {
	a, err := scanApp(t.queryRow(ctx, "SELECT "+appColumns+" FROM apps WHERE name = ?", name))
	return a, notFound(err, "app_not_found", fmt.Sprintf("no app is named %q", name))
}

// AppKeyUsage returns the stored hint (prefix) of the app's API key and
// when a key of the app was last used (zero if never).
func (t *Tx) AppKeyUsage(ctx context.Context, id lipa.AppID) (string, time.Time, error) {
	var hint string
	var used sql.NullTime
	err := t.queryRow(ctx, "SELECT key_hint, last_used_at FROM apps WHERE id = ?", id).Scan(&hint, &used)
	return hint, fromNull(used), notFound(err, "app_not_found", "no such app")
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

// SetAppKey replaces the app's API key hash and hint. The key it replaces
// stays valid until graceUntil (not at all when graceUntil is not after now).
func (t *Tx) SetAppKey(ctx context.Context, id lipa.AppID, keyHash, keyHint string, graceUntil, now time.Time) error {
	_, err := t.exec(ctx, `UPDATE apps SET prev_key_hash = CASE WHEN ? THEN key_hash ELSE NULL END, prev_key_expires_at = ?,
		key_hash = ?, key_hint = ?, updated_at = ? WHERE id = ?`,
		graceUntil.After(now), dbTime(graceUntil), keyHash, keyHint, dbTime(now), id)
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
