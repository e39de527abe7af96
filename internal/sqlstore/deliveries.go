package sqlstore

// This file holds the webhook_deliveries table: one row per event to
// deliver, leased by the delivery worker.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Delivery is a webhook delivery due for an attempt.
type Delivery struct {
	Event
	URL       string
	Secret    lipa.Secret
	Attempts  int
	QueuedAt  time.Time
	State     string // pending, delivered or failed
	LastError string
}

// DeliveryApps returns, in ID order, the apps with a webhook URL set and not
// paused that have at least one pending delivery due at now: the apps a
// delivery pass leases for, one at a time, so each gets its share.
func (t *Tx) DeliveryApps(ctx context.Context, now time.Time) ([]lipa.AppID, error) {
	rows, err := t.query(ctx, `SELECT a.id FROM apps a WHERE a.webhook_url <> '' AND a.webhook_paused_at IS NULL
		AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.app_id = a.id AND d.state = 'pending' AND d.next_attempt_at <= ?)
		ORDER BY a.id`, dbTime(now))
	if err != nil {
		return nil, fmt.Errorf("apps with due deliveries: %w", err)
	}
	defer rows.Close()
	var out []lipa.AppID
	for rows.Next() {
		var id lipa.AppID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan app: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// LeaseDeliveries leases up to limit of the app's pending deliveries due at
// now, earliest due first, while its webhook is set and not paused: it moves
// their next attempt to leaseUntil, so that no other pass, here or on
// another replica, takes them until then (FOR UPDATE SKIP LOCKED on
// PostgreSQL; SQLite runs one write transaction at a time). Of each
// payment, only its earliest pending event is taken, so one payment's
// events go out in order. The delivery worker records each attempt, which
// ends the lease; a lease that runs out (a crash) makes the delivery due
// again: at least once.
func (t *Tx) LeaseDeliveries(ctx context.Context, app lipa.AppID, now, leaseUntil time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT e.seq, e.id, e.app_id, e.type, e.payment_id, e.payload, e.created_at, a.webhook_url, a.webhook_secret, d.attempts, d.created_at
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq JOIN apps a ON a.id = d.app_id
		WHERE d.app_id = ? AND d.state = 'pending' AND d.next_attempt_at <= ? AND a.webhook_url <> '' AND a.webhook_paused_at IS NULL
		AND d.event_seq = (SELECT min(o.event_seq) FROM webhook_deliveries o
			WHERE o.payment_id = d.payment_id AND o.app_id || '' = d.app_id AND o.state || '' = 'pending')
		ORDER BY d.next_attempt_at, d.event_seq LIMIT ?`
	// The payment's earliest pending event is a scalar subquery, run once
	// per row, that can use only the index on payment_id (a payment has a
	// handful of events): app_id and state are compared as expressions so
	// that no index on them qualifies. Given one, a planner without
	// statistics (right after a burst) scanned the app's whole backlog for
	// every row.
	if t.backend == Postgres {
		q += " FOR UPDATE OF d SKIP LOCKED"
	}
	rows, err := t.query(ctx, q, app, dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var secret string
		if err := rows.Scan(&d.Seq, &d.ID, &d.AppID, &d.Type, &d.PaymentID, &d.Payload, &d.CreatedAt, &d.URL, &secret, &d.Attempts, &d.QueuedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		d.Secret, d.CreatedAt, d.QueuedAt, d.State = lipa.Secret(secret), d.CreatedAt.UTC(), d.QueuedAt.UTC(), "pending"
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(out)+1)
	args = append(args, dbTime(leaseUntil))
	for _, d := range out {
		args = append(args, d.Seq)
	}
	if _, err := t.exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE event_seq IN ("+placeholders(len(out))+")", args...); err != nil {
		return nil, fmt.Errorf("lease deliveries: %w", err)
	}
	return out, nil
}

// placeholders returns n comma-separated ? placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// PendingDeliveries returns how many deliveries are pending across all apps:
// due now, waiting for a retry, or under way.
func (t *Tx) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := t.queryRow(ctx, "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'").Scan(&n); err != nil {
		return 0, fmt.Errorf("delivery backlog: %w", err)
	}
	return n, nil
}

// Deliveries lists the app's webhook deliveries, newest first, at most
// limit.
func (t *Tx) Deliveries(ctx context.Context, app lipa.AppID, limit int) ([]Delivery, error) {
	rows, err := t.query(ctx, `SELECT e.seq, e.id, e.app_id, e.type, e.payment_id, e.created_at, d.state, d.attempts, d.created_at, d.last_error
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.app_id = ? ORDER BY d.event_seq DESC LIMIT ?`, app, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.Seq, &d.ID, &d.AppID, &d.Type, &d.PaymentID, &d.CreatedAt, &d.State, &d.Attempts, &d.QueuedAt, &d.LastError); err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Redeliver queues the app's deliveries again, due at now, with a fresh
// retry span: the one for event id when id is not empty (creating it for an
// event recorded before the app had a webhook), else every failed one. It
// resumes the app's paused webhook and returns how many were queued.
func (t *Tx) Redeliver(ctx context.Context, app lipa.AppID, id string, now time.Time) (int64, error) {
	if id != "" {
		_, err := t.exec(ctx, `INSERT INTO webhook_deliveries (event_seq, app_id, payment_id, state, next_attempt_at, created_at)
			SELECT seq, app_id, payment_id, 'failed', ?, ? FROM events WHERE id = ? AND app_id = ? ON CONFLICT (event_seq) DO NOTHING`,
			dbTime(now), dbTime(now), id, app)
		if err != nil {
			return 0, fmt.Errorf("queue delivery: %w", err)
		}
	}
	q := `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, created_at = ?, last_error = ''
		WHERE app_id = ? AND state = 'failed'`
	args := []any{dbTime(now), dbTime(now), app}
	if id != "" {
		q = `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, created_at = ?, last_error = ''
			WHERE app_id = ? AND event_seq = (SELECT seq FROM events WHERE id = ? AND app_id = ?)`
		args = append(args, id, app)
	}
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return n, err
	}
	if _, err := t.exec(ctx, "UPDATE apps SET webhook_paused_at = NULL WHERE id = ?", app); err != nil {
		return 0, fmt.Errorf("resume webhook: %w", err)
	}
	return n, nil
}
