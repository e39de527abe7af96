package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

// ClaimDuePending picks up to limit PENDING STK payments created at or
// before createdBefore whose next check is due at now, and leases them until
// leaseUntil (their next_check_at moves there), so that another replica's
// reconciler running at the same moment skips them: on PostgreSQL the rows
// are locked with FOR UPDATE SKIP LOCKED; SQLite has one writer. The caller
// commits the lease at once and does the slow work (Daraja calls) outside the
// transaction.
func (t *Tx) ClaimDuePending(ctx context.Context, createdBefore, now, leaseUntil time.Time, limit int) ([]lipa.Payment, error) {
	q := "SELECT " + paymentColumns + paymentFrom + `WHERE p.status = 'PENDING' AND p.payment_type = 'STK'
		AND p.created_at <= ? AND (p.next_check_at IS NULL OR p.next_check_at <= ?)
		ORDER BY p.created_at LIMIT ?`
	if t.backend == Postgres {
		q += " FOR UPDATE OF p SKIP LOCKED"
	}
	rows, err := t.query(ctx, q, dbTime(createdBefore), dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due pending payments: %w", err)
	}
	var out []lipa.Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan payment: %w", err)
		}
		out = append(out, *p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, p := range out {
		if _, err := t.exec(ctx, "UPDATE payments SET next_check_at = ? WHERE id = ?", dbTime(leaseUntil), p.ID); err != nil {
			return nil, fmt.Errorf("lease payment %s: %w", p.ID, err)
		}
	}
	return out, nil
}

// ScheduleCheck sets when the reconciler next looks at a PENDING payment,
// and how many times it has looked.
func (t *Tx) ScheduleCheck(ctx context.Context, id lipa.PaymentID, at time.Time, attempts int) error {
	_, err := t.exec(ctx, "UPDATE payments SET next_check_at = ?, check_attempts = ? WHERE id = ?", dbTime(at), attempts, id)
	if err != nil {
		return fmt.Errorf("schedule check of %s: %w", id, err)
	}
	return nil
}

// CheckAttempts returns how many times the reconciler has looked at a
// payment.
func (t *Tx) CheckAttempts(ctx context.Context, id lipa.PaymentID) (int, error) {
	var n int
	err := t.queryRow(ctx, "SELECT check_attempts FROM payments WHERE id = ?", id).Scan(&n)
	return n, notFound(err, "payment_not_found", "no such payment")
}

// PendingPushSince returns the newest PENDING STK payment to that phone
// created at or after since, or a NotFound error when there is none.
func (t *Tx) PendingPushSince(ctx context.Context, phone string, since time.Time) (*lipa.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+`WHERE p.status = 'PENDING' AND p.phone_number = ?
		AND p.payment_type = 'STK' AND p.created_at >= ? ORDER BY p.created_at DESC LIMIT 1`, phone, dbTime(since)))
	return p, notFound(err, "payment_not_found", "no pending push to this phone")
}

// IdempotencyRecord is what Lipa remembers of a request made with an
// Idempotency-Key.
type IdempotencyRecord struct {
	RequestHash    string
	PaymentID      lipa.PaymentID
	ResponseStatus int    // 0 while the first request is still being answered
	ResponseBody   []byte // the first answer, as sent
	CreatedAt      time.Time
}

// ReserveIdempotencyKey records that the app's key now belongs to a request
// with that hash and payment. When the key was reserved before, it returns
// the earlier record and reserved false; the caller then must not act again.
func (t *Tx) ReserveIdempotencyKey(ctx context.Context, app lipa.AppID, key, hash string, payment lipa.PaymentID, now time.Time) (*IdempotencyRecord, bool, error) {
	res, err := t.exec(ctx, `INSERT INTO idempotency_keys (app_id, key, request_hash, payment_id, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, key) DO NOTHING`, app, key, hash, payment, dbTime(now))
	if err != nil {
		return nil, false, fmt.Errorf("reserve idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil, true, nil
	}
	rec, err := t.IdempotencyKey(ctx, app, key)
	return rec, false, err
}

// IdempotencyKey returns the record of the app's key, or a NotFound error.
func (t *Tx) IdempotencyKey(ctx context.Context, app lipa.AppID, key string) (*IdempotencyRecord, error) {
	var r IdempotencyRecord
	var status sql.NullInt64
	err := t.queryRow(ctx, `SELECT request_hash, payment_id, response_status, response_body, created_at
		FROM idempotency_keys WHERE app_id = ? AND key = ?`, app, key).Scan(&r.RequestHash, &r.PaymentID, &status, &r.ResponseBody, &r.CreatedAt)
	if err != nil {
		return nil, notFound(err, "idempotency_key_not_found", "no such idempotency key")
	}
	r.ResponseStatus = int(status.Int64)
	return &r, nil
}

// SaveIdempotentResponse stores the first answer given for the app's key,
// once, and only if the key was reserved for that payment.
func (t *Tx) SaveIdempotentResponse(ctx context.Context, app lipa.AppID, key string, payment lipa.PaymentID, status int, body []byte) error {
	_, err := t.exec(ctx, `UPDATE idempotency_keys SET response_status = ?, response_body = ?
		WHERE app_id = ? AND key = ? AND payment_id = ? AND response_status IS NULL`, status, body, app, key, payment)
	if err != nil {
		return fmt.Errorf("save idempotent response: %w", err)
	}
	return nil
}

// DeleteIdempotencyKeysBefore forgets keys created before t and returns how
// many.
func (t *Tx) DeleteIdempotencyKeysBefore(ctx context.Context, before time.Time) (int64, error) {
	res, err := t.exec(ctx, "DELETE FROM idempotency_keys WHERE created_at < ?", dbTime(before))
	if err != nil {
		return 0, fmt.Errorf("delete old idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// OrphanPushes returns (at most two) PENDING STK payments to phone for
// amount, created at or after since, that have no CheckoutRequestID: pushes
// whose answer from Daraja was lost. On PostgreSQL their rows are locked
// until the transaction ends.
func (t *Tx) OrphanPushes(ctx context.Context, phone string, amount lipa.Amount, since time.Time) ([]lipa.Payment, error) {
	q := "SELECT " + paymentColumns + paymentFrom + `WHERE p.status = 'PENDING' AND p.phone_number = ?
		AND p.payment_type = 'STK' AND p.checkout_request_id IS NULL AND p.amount_cents = ? AND p.created_at >= ?
		ORDER BY p.created_at LIMIT 2`
	if t.backend == Postgres {
		q += " FOR UPDATE OF p" // see PaymentForUpdate
	}
	return t.queryPayments(ctx, "orphan pushes", q, phone, int64(amount), dbTime(since))
}

// MergePayment removes payment from, a duplicate record of the M-Pesa
// transaction that payment into records, after pointing the stored
// Safaricom payloads and events that named it at into: nothing received is
// lost, and one transaction stays one payment.
func (t *Tx) MergePayment(ctx context.Context, from, into lipa.PaymentID) error {
	for _, q := range []string{
		"UPDATE inbound_messages SET payment_id = ? WHERE payment_id = ?",
		"UPDATE events SET payment_id = ? WHERE payment_id = ?",
		"UPDATE webhook_deliveries SET payment_id = ? WHERE payment_id = ?",
	} {
		if _, err := t.exec(ctx, q, into, from); err != nil {
			return fmt.Errorf("merge payment %s into %s: %w", from, into, err)
		}
	}
	if _, err := t.exec(ctx, "DELETE FROM payments WHERE id = ?", from); err != nil {
		return fmt.Errorf("merge payment %s into %s: %w", from, into, err)
	}
	return nil
}
