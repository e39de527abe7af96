package sqlstore

// This file holds the events table: the outbox apps read as a feed.

import (
	"context"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Event is one notification to an app about one payment, kept for the
// events feed and delivered to the app's webhook URL when it has one.
type Event struct {
	Seq       int64 // order of events (per database); the feed pages by it
	ID        string
	AppID     lipa.AppID
	Type      string
	PaymentID lipa.PaymentID
	Payload   []byte // the JSON body sent to the app
	CreatedAt time.Time
}

// Recipient is an app an event goes to, and whether it has a webhook URL
// (then the event is also queued for delivery).
type Recipient struct {
	App        lipa.AppID
	HasWebhook bool
}

// EventRecipients returns, in one query, who hears about a payment: its
// app, or for an intake payment (app "") every enabled app.
func (t *Tx) EventRecipients(ctx context.Context, app lipa.AppID) ([]Recipient, error) {
	q, args := "SELECT id, webhook_url <> '' FROM apps WHERE id = ?", []any{app}
	if app == "" {
		q, args = "SELECT id, webhook_url <> '' FROM apps WHERE disabled = FALSE ORDER BY name", nil
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("event recipients: %w", err)
	}
	defer rows.Close()
	var out []Recipient
	for rows.Next() {
		var r Recipient
		if err := rows.Scan(&r.App, &r.HasWebhook); err != nil {
			return nil, fmt.Errorf("scan recipient: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InsertEvent stores an event and sets its Seq; when deliver is true it also
// queues its webhook delivery, due at once.
func (t *Tx) InsertEvent(ctx context.Context, e *Event, deliver bool) error {
	// Sequence numbers must follow commit order, or a reader paging the feed
	// by seq could pass an event committed later with a lower seq. On
	// PostgreSQL, event-writing transactions therefore take turns from their
	// first event to their commit (a short stretch); SQLite commits one
	// transaction at a time anyway.
	if err := t.Lock(ctx, "lipa:events"); err != nil {
		return err
	}
	err := t.queryRow(ctx, `INSERT INTO events (id, app_id, type, payment_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
		e.ID, e.AppID, e.Type, e.PaymentID, e.Payload, dbTime(e.CreatedAt)).Scan(&e.Seq)
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	if !deliver {
		return nil
	}
	_, err = t.exec(ctx, `INSERT INTO webhook_deliveries (event_seq, app_id, payment_id, state, next_attempt_at, created_at)
		VALUES (?, ?, ?, 'pending', ?, ?)`, e.Seq, e.AppID, e.PaymentID, dbTime(e.CreatedAt), dbTime(e.CreatedAt))
	if err != nil {
		return fmt.Errorf("queue webhook delivery: %w", err)
	}
	return nil
}

// Events returns the app's events after the one with sequence after (0 for
// the first), in order, at most limit. Events commit in seq order (see
// InsertEvent), so a reader paging by seq never skips one.
func (t *Tx) Events(ctx context.Context, app lipa.AppID, after int64, limit int) ([]Event, error) {
	rows, err := t.query(ctx, `SELECT seq, id, app_id, type, payment_id, payload, created_at FROM events
		WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?`, app, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Seq, &e.ID, &e.AppID, &e.Type, &e.PaymentID, &e.Payload, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e.CreatedAt = e.CreatedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventSeq returns the sequence number of the app's event with that ID, or a
// NotFound error.
func (t *Tx) EventSeq(ctx context.Context, app lipa.AppID, id string) (int64, error) {
	var seq int64
	err := t.queryRow(ctx, "SELECT seq FROM events WHERE app_id = ? AND id = ?", app, id).Scan(&seq)
	return seq, notFound(err, "event_not_found", fmt.Sprintf("no event %q for this app", id))
}
