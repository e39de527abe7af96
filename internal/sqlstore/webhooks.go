package sqlstore

import (
	"context"
	"database/sql"
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

// Webhook is an app's webhook settings.
type Webhook struct {
	URL      string
	Secret   lipa.Secret
	PausedAt time.Time // zero unless deliveries failed for the whole retry span
}

// SetAppWebhook sets (or with an empty url, removes) the app's webhook URL
// and signing secret, and resumes its deliveries.
func (t *Tx) SetAppWebhook(ctx context.Context, id lipa.AppID, url string, secret lipa.Secret, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET webhook_url = ?, webhook_secret = ?, webhook_paused_at = NULL, updated_at = ? WHERE id = ?",
		url, secret.Reveal(), dbTime(now), id)
	if err != nil {
		return fmt.Errorf("set webhook: %w", err)
	}
	return nil
}

// AppWebhook returns the app's webhook settings (an empty URL when none).
func (t *Tx) AppWebhook(ctx context.Context, id lipa.AppID) (*Webhook, error) {
	var w Webhook
	var secret string
	var paused sql.NullTime
	err := t.queryRow(ctx, "SELECT webhook_url, webhook_secret, webhook_paused_at FROM apps WHERE id = ?", id).Scan(&w.URL, &secret, &paused)
	if err != nil {
		return nil, notFound(err, "app_not_found", "no such app")
	}
	w.Secret, w.PausedAt = lipa.Secret(secret), fromNull(paused)
	return &w, nil
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

// PauseWebhook stops deliveries to the app until its webhook is set again or
// an operator redelivers.
func (t *Tx) PauseWebhook(ctx context.Context, id lipa.AppID, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET webhook_paused_at = ? WHERE id = ? AND webhook_paused_at IS NULL", dbTime(now), id)
	if err != nil {
		return fmt.Errorf("pause webhook: %w", err)
	}
	return nil
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

// ClaimDueDeliveries leases up to limit pending deliveries due at now, for
// apps whose webhook is set and not paused, taking for each payment only
// its earliest pending event (so one payment's events go out in order), and
// moves their next attempt to leaseUntil so another replica skips them (FOR
// UPDATE SKIP LOCKED on PostgreSQL). Fairness: no app gets more than
// perApp deliveries in flight, counting busy (its deliveries already under
// way in this process), so one app's slow or hanging receiver cannot take
// every slot.
func (t *Tx) ClaimDueDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perApp int, busy map[lipa.AppID]int) ([]Delivery, error) {
	q := `SELECT e.seq, e.id, e.app_id, e.type, e.payment_id, e.payload, e.created_at, a.webhook_url, a.webhook_secret, d.attempts, d.created_at
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq JOIN apps a ON a.id = d.app_id
		WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND a.webhook_url <> '' AND a.webhook_paused_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.state = 'pending' AND o.app_id = d.app_id
			AND o.payment_id = d.payment_id AND o.event_seq < d.event_seq)
		ORDER BY d.event_seq LIMIT ?`
	if t.backend == Postgres {
		q += " FOR UPDATE OF d SKIP LOCKED"
	}
	rows, err := t.query(ctx, q, dbTime(now), min(limit*8, 400))
	if err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	var out []Delivery
	taken := map[lipa.AppID]int{}
	for rows.Next() {
		var d Delivery
		var secret string
		if err := rows.Scan(&d.Seq, &d.ID, &d.AppID, &d.Type, &d.PaymentID, &d.Payload, &d.CreatedAt, &d.URL, &secret, &d.Attempts, &d.QueuedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		d.Secret, d.CreatedAt, d.QueuedAt = lipa.Secret(secret), d.CreatedAt.UTC(), d.QueuedAt.UTC()
		if len(out) < limit && busy[d.AppID]+taken[d.AppID] < perApp {
			taken[d.AppID]++
			out = append(out, d)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range out {
		if _, err := t.exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE event_seq = ?", dbTime(leaseUntil), d.Seq); err != nil {
			return nil, fmt.Errorf("lease delivery: %w", err)
		}
	}
	return out, nil
}

// Attempt is one try at delivering an event.
type Attempt struct {
	EventSeq    int64
	AttemptedAt time.Time
	URL         string
	StatusCode  int // 0 when no HTTP answer came
	Latency     time.Duration
	Error       string
}

// RecordAttempt logs one delivery attempt and sets the delivery's new
// state: "delivered", "pending" (retry at next) or "failed".
func (t *Tx) RecordAttempt(ctx context.Context, a Attempt, state string, next time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO webhook_attempts (event_seq, attempted_at, url, status_code, latency_ms, error) VALUES (?, ?, ?, ?, ?, ?)`,
		a.EventSeq, dbTime(a.AttemptedAt), a.URL, a.StatusCode, a.Latency.Milliseconds(), a.Error)
	if err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	var delivered any
	if state == "delivered" {
		delivered = dbTime(a.AttemptedAt)
	}
	_, err = t.exec(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, delivered_at = ?, last_error = ?
		WHERE event_seq = ?`, state, dbTime(next), delivered, a.Error, a.EventSeq)
	if err != nil {
		return fmt.Errorf("update delivery: %w", err)
	}
	return nil
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

// Attempts lists the attempts made to deliver one event, oldest first.
func (t *Tx) Attempts(ctx context.Context, seq int64) ([]Attempt, error) {
	rows, err := t.query(ctx, `SELECT event_seq, attempted_at, url, status_code, latency_ms, error FROM webhook_attempts
		WHERE event_seq = ? ORDER BY id`, seq)
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var ms int64
		if err := rows.Scan(&a.EventSeq, &a.AttemptedAt, &a.URL, &a.StatusCode, &ms, &a.Error); err != nil {
			return nil, fmt.Errorf("scan attempt: %w", err)
		}
		a.Latency, a.AttemptedAt = time.Duration(ms)*time.Millisecond, a.AttemptedAt.UTC()
		out = append(out, a)
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
