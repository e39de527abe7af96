package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// StatRow counts the payments created in a time range that share an app,
// type, status, failure reason and what settled them.
type StatRow struct {
	App           lipa.AppID // "" for the intake pool
	Type          lipa.PaymentType
	Status        lipa.Status
	FailureReason lipa.FailureReason
	ResolvedBy    string
	Payments      int64
	Amount        lipa.Amount // the sum of their amounts
}

// PaymentStats groups the payments created in [from, before) by app, type,
// status, failure reason and resolved_by. It reads only that range, through the
// (created_at, id) index.
func (t *Tx) PaymentStats(ctx context.Context, from, before time.Time) ([]StatRow, error) {
	rows, err := t.query(ctx, `SELECT COALESCE(app_id, ''), payment_type, status, failure_reason, resolved_by, COUNT(*), COALESCE(SUM(amount_cents), 0)
		FROM payments WHERE created_at >= ? AND created_at < ?
		GROUP BY COALESCE(app_id, ''), payment_type, status, failure_reason, resolved_by`, dbTime(from), dbTime(before))
	if err != nil {
		return nil, fmt.Errorf("payment stats: %w", err)
	}
	defer rows.Close()
	var out []StatRow
	for rows.Next() {
		var r StatRow
		if err := rows.Scan(&r.App, &r.Type, &r.Status, &r.FailureReason, &r.ResolvedBy, &r.Payments, &r.Amount); err != nil {
			return nil, fmt.Errorf("scan payment stats: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PendingCounts returns how many payments are PENDING now, per app ("" for
// none), through the partial index on PENDING payments.
func (t *Tx) PendingCounts(ctx context.Context) (map[lipa.AppID]int64, error) {
	rows, err := t.query(ctx, `SELECT COALESCE(app_id, ''), COUNT(*) FROM payments WHERE status = 'PENDING' GROUP BY COALESCE(app_id, '')`)
	if err != nil {
		return nil, fmt.Errorf("pending counts: %w", err)
	}
	defer rows.Close()
	out := map[lipa.AppID]int64{}
	for rows.Next() {
		var app lipa.AppID
		var n int64
		if err := rows.Scan(&app, &n); err != nil {
			return nil, fmt.Errorf("scan pending count: %w", err)
		}
		out[app] = n
	}
	return out, rows.Err()
}

// CallbackLag is how long after its payment was created an STK callback
// arrived and was applied.
type CallbackLag struct {
	App lipa.AppID
	Lag time.Duration
}

// CallbackLags returns the lag of the latest applied STK callbacks received
// in [from, before), newest first, at most limit of them.
func (t *Tx) CallbackLags(ctx context.Context, from, before time.Time, limit int) ([]CallbackLag, error) {
	rows, err := t.query(ctx, `SELECT COALESCE(p.app_id, ''), m.received_at, p.created_at FROM inbound_messages m JOIN payments p ON p.id = m.payment_id
		WHERE m.received_at >= ? AND m.received_at < ? AND m.kind = 'stk_callback' AND m.outcome = 'applied'
		ORDER BY m.received_at DESC LIMIT ?`, dbTime(from), dbTime(before), limit)
	if err != nil {
		return nil, fmt.Errorf("callback lags: %w", err)
	}
	defer rows.Close()
	var out []CallbackLag
	for rows.Next() {
		var l CallbackLag
		var got, created time.Time
		if err := rows.Scan(&l.App, &got, &created); err != nil {
			return nil, fmt.Errorf("scan callback lag: %w", err)
		}
		l.Lag = max(got.Sub(created), 0)
		out = append(out, l)
	}
	return out, rows.Err()
}

// BacklogRow counts an app's webhook deliveries in one state.
type BacklogRow struct {
	App        lipa.AppID
	State      string // pending or failed
	Deliveries int64
}

// DeliveryBacklog counts the webhook deliveries still to send (pending) or
// given up on (failed), per app, through the (state, app_id) index.
func (t *Tx) DeliveryBacklog(ctx context.Context) ([]BacklogRow, error) {
	rows, err := t.query(ctx, `SELECT app_id, state, COUNT(*) FROM webhook_deliveries WHERE state IN ('pending', 'failed') GROUP BY app_id, state`)
	if err != nil {
		return nil, fmt.Errorf("delivery backlog: %w", err)
	}
	defer rows.Close()
	var out []BacklogRow
	for rows.Next() {
		var r BacklogRow
		if err := rows.Scan(&r.App, &r.State, &r.Deliveries); err != nil {
			return nil, fmt.Errorf("scan delivery backlog: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// StoredDay is a day's figures as kept once the day can no longer change:
// its counts, and per app the sampled callback lags.
type StoredDay struct {
	Counts []StatRow
	Lags   map[lipa.AppID][]time.Duration
}

// StoredDayStats returns the kept figures of day (a Kenya date,
// YYYY-MM-DD), and false when they were never stored.
func (t *Tx) StoredDayStats(ctx context.Context, day string) (*StoredDay, bool, error) {
	var n int
	if err := t.queryRow(ctx, "SELECT COUNT(*) FROM payment_days WHERE day = ?", day).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("stored day: %w", err)
	}
	if n == 0 {
		return nil, false, nil
	}
	out := &StoredDay{Lags: map[lipa.AppID][]time.Duration{}}
	rows, err := t.query(ctx, `SELECT app_id, payment_type, status, failure_reason, resolved_by, payments, amount_cents
		FROM payment_day_counts WHERE day = ?`, day)
	if err != nil {
		return nil, false, fmt.Errorf("stored day counts: %w", err)
	}
	for rows.Next() {
		var r StatRow
		if err := rows.Scan(&r.App, &r.Type, &r.Status, &r.FailureReason, &r.ResolvedBy, &r.Payments, &r.Amount); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("scan stored day counts: %w", err)
		}
		out.Counts = append(out.Counts, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	rows, err = t.query(ctx, "SELECT app_id, lags_ms FROM payment_day_lags WHERE day = ?", day)
	if err != nil {
		return nil, false, fmt.Errorf("stored day lags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var app lipa.AppID
		var list string
		if err := rows.Scan(&app, &list); err != nil {
			return nil, false, fmt.Errorf("scan stored day lags: %w", err)
		}
		for _, f := range strings.Split(list, ",") {
			if ms, err := strconv.ParseInt(f, 10, 64); err == nil {
				out.Lags[app] = append(out.Lags[app], time.Duration(ms)*time.Millisecond)
			}
		}
	}
	return out, true, rows.Err()
}

// StoreDayStats keeps a day's figures for later views. A day stored
// already (by another replica) is left as it is.
func (t *Tx) StoreDayStats(ctx context.Context, day string, d *StoredDay, now time.Time) error {
	res, err := t.exec(ctx, "INSERT INTO payment_days (day, computed_at) VALUES (?, ?) ON CONFLICT (day) DO NOTHING", day, dbTime(now))
	if err != nil {
		return fmt.Errorf("store day: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	for _, r := range d.Counts {
		if _, err := t.exec(ctx, `INSERT INTO payment_day_counts (day, app_id, payment_type, status, failure_reason, resolved_by, payments, amount_cents)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, day, r.App, r.Type, r.Status, r.FailureReason, r.ResolvedBy, r.Payments, int64(r.Amount)); err != nil {
			return fmt.Errorf("store day counts: %w", err)
		}
	}
	for app, lags := range d.Lags {
		ms := make([]string, len(lags))
		for i, l := range lags {
			ms[i] = strconv.FormatInt(l.Milliseconds(), 10)
		}
		if _, err := t.exec(ctx, "INSERT INTO payment_day_lags (day, app_id, lags_ms) VALUES (?, ?, ?)", day, app, strings.Join(ms, ",")); err != nil {
			return fmt.Errorf("store day lags: %w", err)
		}
	}
	return nil
}
