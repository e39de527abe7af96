package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// PaymentFilter selects payments across every app, for operators. Empty
// fields do not filter. Every filter is backed by an index that also gives
// the newest-first order (migration 00010), so a page never reads more than
// it shows plus what the other filters skip.
type PaymentFilter struct {
	App     lipa.AppID // the app's payments (claimed intake payments included)
	Status  lipa.Status
	Type    lipa.PaymentType
	Claimed *bool
	From    time.Time // created at or after (UTC)
	Before  time.Time // created before (UTC)
	// Match, when not nil, keeps the payments that match any of its
	// non-empty fields exactly.
	Match *PaymentMatch
}

// PaymentMatch is what one search box may mean: a payment is kept when it
// matches any non-empty field exactly.
type PaymentMatch struct {
	ID                lipa.PaymentID
	Receipt           string
	Reference         string
	CheckoutRequestID string
	Phones            []string // phone_number values (an MSISDN, or the SHA-256 hex Safaricom may send instead in C2B)
}

func (f PaymentFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v ...any) { conds = append(conds, cond); args = append(args, v...) }
	if f.App != "" {
		add("p.app_id = ?", f.App)
	}
	if f.Status != "" {
		add("p.status = ?", f.Status)
	}
	if f.Type != "" {
		add("p.payment_type = ?", f.Type)
	}
	if f.Claimed != nil {
		add("p.claimed = ?", *f.Claimed)
	}
	if !f.From.IsZero() {
		add("p.created_at >= ?", dbTime(f.From))
	}
	if !f.Before.IsZero() {
		add("p.created_at < ?", dbTime(f.Before))
	}
	if m := f.Match; m != nil {
		var or []string
		orAdd := func(cond string, v any) { or = append(or, cond); args = append(args, v) }
		if m.ID != "" {
			orAdd("p.id = ?", m.ID)
		}
		if m.Receipt != "" {
			orAdd("p.mpesa_receipt_number = ?", m.Receipt)
		}
		if m.Reference != "" {
			orAdd("p.reference = ?", m.Reference)
		}
		if m.CheckoutRequestID != "" {
			orAdd("p.checkout_request_id = ?", m.CheckoutRequestID)
		}
		for _, ph := range m.Phones {
			orAdd("p.phone_number = ?", ph)
		}
		if len(or) == 0 {
			or = append(or, "FALSE")
		}
		conds = append(conds, "("+strings.Join(or, " OR ")+")")
	}
	if len(conds) == 0 {
		return "", args
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// SearchPayments returns the payments matching f, newest first, starting
// after the cursor when one is given, at most limit of them.
func (t *Tx) SearchPayments(ctx context.Context, f PaymentFilter, after *Cursor, limit int) ([]lipa.Payment, error) {
	where, args := f.where()
	if after != nil {
		if where == "" {
			where = "WHERE "
		} else {
			where += " AND "
		}
		where += "(p.created_at < ? OR (p.created_at = ? AND p.id < ?))"
		args = append(args, dbTime(after.CreatedAt), dbTime(after.CreatedAt), after.ID)
	}
	args = append(args, limit)
	return t.queryPayments(ctx, "search payments", "SELECT "+paymentColumns+paymentFrom+where+" ORDER BY p.created_at DESC, p.id DESC LIMIT ?", args...)
}

// IntakePayments returns the unclaimed C2B payments of the shared intake
// pool (no app yet), oldest first, starting after the cursor when one is
// given, at most limit of them.
func (t *Tx) IntakePayments(ctx context.Context, after *Cursor, limit int) ([]lipa.Payment, error) {
	where, args := "WHERE p.app_id IS NULL AND p.payment_type = 'C2B'", []any{}
	if after != nil {
		where += " AND (p.created_at > ? OR (p.created_at = ? AND p.id > ?))"
		args = append(args, dbTime(after.CreatedAt), dbTime(after.CreatedAt), after.ID)
	}
	args = append(args, limit)
	return t.queryPayments(ctx, "intake payments", "SELECT "+paymentColumns+paymentFrom+where+" ORDER BY p.created_at, p.id LIMIT ?", args...)
}
