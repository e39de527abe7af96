package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// PaymentQuery is an operator's search over every app's payments, with
// values as typed in the console's form or the CLI's flags. Empty fields do
// not filter.
type PaymentQuery struct {
	App     string // an app's name
	Status  string // PENDING, SUCCESS or FAILED (any case)
	Type    string // STK or C2B (any case)
	Claimed string // "true" or "false"
	From    string // first day, YYYY-MM-DD in Kenya time
	To      string // last day (included), YYYY-MM-DD in Kenya time
	// Q finds a payment by one value, matched exactly: its receipt (any
	// case), its reference, its CheckoutRequestID, its id, or its payer's
	// phone in any Kenyan form (also matching a C2B payment whose MSISDN
	// Safaricom sent as the SHA-256 of the 2547… number).
	Q      string
	Cursor string // the next cursor of the previous page
	Limit  int    // 1–200; 0 means 50
}

// ExportPageSize is how many payments ExportPayments reads per
// transaction: the export holds at most this many in memory, and no
// transaction stays open while the caller writes.
const ExportPageSize = 500

// filter turns a PaymentQuery into the store's filter. Errors: Invalid
// "invalid_parameter" (not UTF-8, or a NUL), "invalid_app", "invalid_status", "invalid_type", "invalid_claimed",
// "invalid_date".
func (g *Gateway) filter(ctx context.Context, tx *sqlstore.Tx, q PaymentQuery) (sqlstore.PaymentFilter, error) {
	var f sqlstore.PaymentFilter
	for _, v := range []string{q.App, q.Status, q.Type, q.Claimed, q.From, q.To, q.Q} {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return f, lipa.Errorf(lipa.Invalid, "invalid_parameter", "a filter is not valid UTF-8 or contains a NUL character")
		}
	}
	if name := strings.TrimSpace(q.App); name != "" {
		app, err := tx.AppByName(ctx, name)
		if lipa.ErrorKind(err) == lipa.NotFound {
			return f, lipa.InvalidField("invalid_app", "app", "no app is named %q", name)
		}
		if err != nil {
			return f, err
		}
		f.App = app.ID
	}
	switch s := lipa.Status(strings.ToUpper(strings.TrimSpace(q.Status))); s {
	case "", lipa.StatusPending, lipa.StatusSuccess, lipa.StatusFailed:
		f.Status = s
	default:
		return f, lipa.InvalidField("invalid_status", "status", "status must be PENDING, SUCCESS or FAILED")
	}
	switch t := lipa.PaymentType(strings.ToUpper(strings.TrimSpace(q.Type))); t {
	case "", lipa.TypeSTK, lipa.TypeC2B:
		f.Type = t
	default:
		return f, lipa.InvalidField("invalid_type", "type", "type must be STK or C2B")
	}
	if c := strings.TrimSpace(q.Claimed); c != "" {
		b, err := strconv.ParseBool(c)
		if err != nil {
			return f, lipa.InvalidField("invalid_claimed", "claimed", "claimed must be true or false")
		}
		f.Claimed = &b
	}
	var err error
	if f.From, err = kenyaDay(q.From, "from"); err != nil {
		return f, err
	}
	var to time.Time
	if to, err = kenyaDay(q.To, "to"); err != nil {
		return f, err
	}
	if !to.IsZero() {
		f.Before = to.AddDate(0, 0, 1)
	}
	if !f.From.IsZero() && !f.Before.IsZero() && !f.From.Before(f.Before) {
		return f, lipa.InvalidField("invalid_date", "to", "the last day is before the first day")
	}
	f.Match = matchFor(q.Q)
	return f, nil
}

// kenyaDay reads a YYYY-MM-DD date as the start of that day in Kenya time,
// in UTC; an empty string is the zero time.
func kenyaDay(s, field string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation("2006-01-02", s, lipa.NairobiTime)
	if err != nil {
		return time.Time{}, lipa.InvalidField("invalid_date", field, "%s %q is not a date in the form 2026-12-31", field, s)
	}
	return d.UTC(), nil
}

// matchFor is what one search value may mean; nil for an empty value.
func matchFor(q string) *sqlstore.PaymentMatch {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil
	}
	m := &sqlstore.PaymentMatch{Receipt: strings.ToUpper(q), Reference: q, CheckoutRequestID: q}
	if strings.HasPrefix(q, "pay_") {
		m.ID = lipa.PaymentID(q)
	}
	if ph, err := lipa.ParsePhone(q); err == nil {
		sum := sha256.Sum256([]byte(ph))
		m.Phones = []string{string(ph), hex.EncodeToString(sum[:])}
	}
	return m
}

// SearchPayments lists the payments of every app that match q, newest
// first, a page at a time, and returns the cursor of the next page ("" on
// the last). Operators see every app's payments and the intake pool.
// Errors: those of PaymentQuery's fields (Invalid), Invalid
// "invalid_limit", "invalid_cursor".
func (g *Gateway) SearchPayments(ctx context.Context, q PaymentQuery) ([]lipa.Payment, string, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 200 {
		return nil, "", lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 200")
	}
	var after *sqlstore.Cursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", lipa.InvalidField("invalid_cursor", "cursor", "cursor is not one Lipa gave; start from the first page")
		}
		after = c
	}
	var page []lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		f, err := g.filter(ctx, tx, q)
		if err != nil {
			return err
		}
		page, err = tx.SearchPayments(ctx, f, after, limit+1)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		last := page[limit-1]
		next = encodeCursor(sqlstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return page, next, nil
}

// ExportPayments calls fn with every payment that matches q (Cursor and
// Limit ignored), newest first, and returns how many there were. It reads
// ExportPageSize payments per short transaction, so an export of a month
// of payments never holds them all in memory nor keeps a transaction open
// while fn writes them out; payments created during the export after it
// began are not included. An error from fn stops the export and is
// returned.
//
// An export of customers' payments (phone numbers included) is an
// operator action: once the first page is read, it is audited
// (payments.export, target "payments") with its filters, how many rows
// went out and whether it was cut short. Errors: Invalid "invalid_actor",
// the filters' (Invalid), fn's.
func (g *Gateway) ExportPayments(ctx context.Context, actor Actor, q PaymentQuery, fn func(*lipa.Payment) error) (n int, err error) {
	if err := checkActor(actor); err != nil {
		return 0, err
	}
	var after *sqlstore.Cursor
	started := false
	defer func() {
		if !started {
			return
		}
		doc := map[string]any{"rows": n, "complete": err == nil, "filters": map[string]string{"app": q.App, "status": q.Status,
			"type": q.Type, "claimed": q.Claimed, "from": q.From, "to": q.To, "q": q.Q}}
		actx := context.WithoutCancel(ctx) // a download cut short is recorded too
		if aerr := g.db.InTx(actx, func(tx *sqlstore.Tx) error {
			return g.recordAuditTx(actx, tx, actor, AuditPaymentsExport, "payments", "", nil, doc)
		}); aerr != nil && err == nil {
			err = aerr
		}
	}()
	for {
		var page []lipa.Payment
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
			f, err := g.filter(ctx, tx, q)
			if err != nil {
				return err
			}
			page, err = tx.SearchPayments(ctx, f, after, ExportPageSize)
			return err
		})
		if err != nil {
			return n, err
		}
		started = true
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return n, err
			}
			n++
		}
		if len(page) < ExportPageSize {
			break
		}
		last := page[len(page)-1]
		after = &sqlstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	g.log.Info("payments exported", "by", actor.String(), "rows", n, "app", q.App, "status", q.Status, "type", q.Type,
		"claimed", q.Claimed, "from", q.From, "to", q.To, "q_given", q.Q != "")
	return n, nil
}

// Intake lists the unclaimed C2B payments of the shared intake pool, oldest
// first (the longest waiting on top), a page of at most limit (1–200, 0
// means 50) at a time, and returns the cursor of the next page ("" on the
// last). Errors: Invalid "invalid_limit", "invalid_cursor".
func (g *Gateway) Intake(ctx context.Context, cursor string, limit int) ([]lipa.Payment, string, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 200 {
		return nil, "", lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 200")
	}
	var after *sqlstore.Cursor
	if cursor != "" {
		c, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", lipa.InvalidField("invalid_cursor", "cursor", "cursor is not one Lipa gave; start from the first page")
		}
		after = c
	}
	var page []lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { page, err = tx.IntakePayments(ctx, after, limit+1); return err })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		last := page[limit-1]
		next = encodeCursor(sqlstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return page, next, nil
}
