package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// InboundForPayment returns every stored message about a payment, oldest
// first: those linked to it, those naming its CheckoutRequestID (STK
// callbacks, Daraja's answers) and those naming its receipt as TransID
// (C2B validation and confirmation). Empty checkoutRequestID or receipt
// are not looked up. Each lookup is an indexed equality.
func (t *Tx) InboundForPayment(ctx context.Context, id lipa.PaymentID, checkoutRequestID, receipt string) ([]Inbound, error) {
	conds, args := []string{"payment_id = ?"}, []any{id}
	if checkoutRequestID != "" {
		conds, args = append(conds, "checkout_request_id = ?"), append(args, checkoutRequestID)
	}
	if receipt != "" {
		conds, args = append(conds, "trans_id = ?"), append(args, receipt)
	}
	return t.inbound(ctx, "WHERE "+strings.Join(conds, " OR ")+" ORDER BY received_at, id", args...)
}

// EventsForPayment returns every event about a payment (one per recipient
// app), oldest first.
func (t *Tx) EventsForPayment(ctx context.Context, id lipa.PaymentID) ([]Event, error) {
	rows, err := t.query(ctx, `SELECT seq, id, app_id, type, payment_id, payload, created_at FROM events WHERE payment_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("events of payment: %w", err)
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

// DeliveryFilter selects webhook deliveries for operators; empty fields do
// not filter.
type DeliveryFilter struct {
	App       lipa.AppID
	State     string // pending, delivered or failed
	PaymentID lipa.PaymentID
	BeforeSeq int64 // only deliveries of events before this one (a page cursor); 0: from the newest
}

// DeliveryList returns the webhook deliveries matching f, newest event
// first, at most limit. Each filter is behind an index ordered by event.
func (t *Tx) DeliveryList(ctx context.Context, f DeliveryFilter, limit int) ([]Delivery, error) {
	var conds []string
	var args []any
	if f.App != "" {
		conds, args = append(conds, "d.app_id = ?"), append(args, f.App)
	}
	if f.State != "" {
		conds, args = append(conds, "d.state = ?"), append(args, f.State)
	}
	if f.PaymentID != "" {
		conds, args = append(conds, "d.payment_id = ?"), append(args, f.PaymentID)
	}
	if f.BeforeSeq > 0 {
		conds, args = append(conds, "d.event_seq < ?"), append(args, f.BeforeSeq)
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := t.query(ctx, `SELECT e.seq, e.id, e.app_id, e.type, e.payment_id, e.created_at, d.state, d.attempts, d.created_at, d.last_error, a.webhook_url
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq JOIN apps a ON a.id = d.app_id `+where+`
		ORDER BY d.event_seq DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.Seq, &d.ID, &d.AppID, &d.Type, &d.PaymentID, &d.CreatedAt, &d.State, &d.Attempts, &d.QueuedAt, &d.LastError, &d.URL); err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		d.CreatedAt, d.QueuedAt = d.CreatedAt.UTC(), d.QueuedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// AttemptsOf returns the delivery attempts of the given events, oldest
// first, grouped by event sequence number.
func (t *Tx) AttemptsOf(ctx context.Context, seqs []int64) (map[int64][]Attempt, error) {
	out := map[int64][]Attempt{}
	if len(seqs) == 0 {
		return out, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(seqs)), ", ")
	args := make([]any, len(seqs))
	for i, s := range seqs {
		args[i] = s
	}
	rows, err := t.query(ctx, `SELECT event_seq, attempted_at, url, status_code, latency_ms, error FROM webhook_attempts
		WHERE event_seq IN (`+marks+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var ms int64
		if err := rows.Scan(&a.EventSeq, &a.AttemptedAt, &a.URL, &a.StatusCode, &ms, &a.Error); err != nil {
			return nil, fmt.Errorf("scan attempt: %w", err)
		}
		a.Latency, a.AttemptedAt = time.Duration(ms)*time.Millisecond, a.AttemptedAt.UTC()
		out[a.EventSeq] = append(out[a.EventSeq], a)
	}
	return out, rows.Err()
}

// ResumeWebhook lifts the pause of the app's webhook (set after deliveries
// failed for the whole retry span), so its pending deliveries go out again.
// It reports whether the webhook was paused.
func (t *Tx) ResumeWebhook(ctx context.Context, app lipa.AppID, now time.Time) (bool, error) {
	res, err := t.exec(ctx, "UPDATE apps SET webhook_paused_at = NULL, updated_at = ? WHERE id = ? AND webhook_paused_at IS NOT NULL", dbTime(now), app)
	if err != nil {
		return false, fmt.Errorf("resume webhook: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InboundSTKPushAnswer is the kind of a stored answer Daraja gave to an
// STK push that it accepted (its CheckoutRequestID and MerchantRequestID),
// kept so that a payment's timeline shows Daraja's own words.
const InboundSTKPushAnswer InboundKind = "stk_push"
