package sqlstore

// This file holds the webhook_attempts table: every try at a delivery.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Attempt is one try at delivering an event.
type Attempt struct {
	EventSeq    int64
	AttemptedAt time.Time
	URL         string
	StatusCode  int // 0 when no HTTP answer came
	Latency     time.Duration
	Error       string
}

// AttemptResult is one finished attempt and the state it leaves its
// delivery in: "delivered", "pending" (tried again at Next) or "failed"
// (given up; the app's webhook is paused).
type AttemptResult struct {
	Attempt
	AppID lipa.AppID
	State string
	Next  time.Time
}

// RecordAttempt records one attempt; see RecordAttempts.
func (t *Tx) RecordAttempt(ctx context.Context, a Attempt, state string, next time.Time) error {
	return t.RecordAttempts(ctx, []AttemptResult{{Attempt: a, State: state, Next: next}})
}

// RecordAttempts stores finished attempts in webhook_attempts (one
// statement for all of them) and moves each delivery to its new state,
// which ends its lease; a delivery that failed for good pauses its app's
// webhook (see PauseWebhook) when AppID is set.
func (t *Tx) RecordAttempts(ctx context.Context, rs []AttemptResult) error {
	if len(rs) == 0 {
		return nil
	}
	args := make([]any, 0, 6*len(rs))
	for _, r := range rs {
		args = append(args, r.EventSeq, dbTime(r.AttemptedAt), r.URL, r.StatusCode, r.Latency.Milliseconds(), r.Error)
	}
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(rs)), ", ")
	if _, err := t.exec(ctx, "INSERT INTO webhook_attempts (event_seq, attempted_at, url, status_code, latency_ms, error) VALUES "+values, args...); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	// Every delivery's new state in one UPDATE … FROM (VALUES …): a VALUES
	// list's columns are column1, column2, … on both databases; PostgreSQL
	// needs the parameters' types.
	row := "(?, ?, ?, ?, ?)"
	if t.backend == Postgres {
		row = "(?::bigint, ?::text, ?::timestamptz, ?::timestamptz, ?::text)"
	}
	args = args[:0]
	for _, r := range rs {
		var delivered any
		if r.State == "delivered" {
			delivered = dbTime(r.AttemptedAt)
		}
		args = append(args, r.EventSeq, r.State, dbTime(r.Next), delivered, r.Error)
	}
	_, err := t.exec(ctx, `UPDATE webhook_deliveries SET state = v.column2, attempts = webhook_deliveries.attempts + 1,
		next_attempt_at = v.column3, delivered_at = v.column4, last_error = v.column5
		FROM (VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", len(rs)), ", ")+`) AS v
		WHERE webhook_deliveries.event_seq = v.column1`, args...)
	if err != nil {
		return fmt.Errorf("update deliveries: %w", err)
	}
	for _, r := range rs {
		if r.State == "failed" && r.AppID != "" {
			if err := t.PauseWebhook(ctx, r.AppID, r.AttemptedAt); err != nil {
				return err
			}
		}
	}
	return nil
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
