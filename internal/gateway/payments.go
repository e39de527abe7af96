package gateway

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// Payment returns the app's payment (or an unclaimed C2B intake payment) by
// ID; anything else is NotFound "payment_not_found".
func (g *Gateway) Payment(ctx context.Context, app *lipa.App, id lipa.PaymentID) (*lipa.Payment, error) {
	var p *lipa.Payment
	err := g.db.Read(ctx, func(tx *sqlstore.Tx) (err error) { p, err = tx.PaymentForApp(ctx, app.ID, id); return err })
	return p, err
}

// VerifyQuery asks whether a payment was made, by M-Pesa receipt or by the
// app's reference, optionally narrowed to the payer's phone.
type VerifyQuery struct {
	Receipt   string
	Reference string
	Phone     string
}

// Verification is Verify's answer: the payment the query matched, and
// whether it pays what the app asked about.
type Verification struct {
	*lipa.Payment

	// Paid is true when the payment is SUCCESS and, for a query naming a
	// reference, its amount is at least AmountExpected.
	Paid bool
	// AmountExpected is what the reference costs: the amount of the app's
	// newest STK payment under it (sqlstore.Tx.ReferencePrice). Zero when
	// the query names no reference or the app has no STK payment under it
	// (a pure paybill reference): then any SUCCESS payment is paid.
	AmountExpected lipa.Amount
	// AmountPaid is the sum of the SUCCESS unclaimed payments the query
	// matches, for information: payments that only together reach
	// AmountExpected (instalments) do not make the reference paid.
	AmountPaid lipa.Amount
	// FromIntake is true when the payment arrived in the shared C2B intake
	// pool (today every C2B payment), whether or not an app has claimed it
	// since; false for the app's own STK pushes.
	FromIntake bool
}

// Verify finds the payment an app asks about: by receipt (which also finds
// unclaimed C2B intake payments), else by reference. A reference under which
// the app has an STK payment costs that payment's amount, and only one
// payment of at least that amount is paid; when a reference matches several
// payments the answer is about the one sqlstore.Tx.BestPayment ranks first
// with that amount as floor (the one a claim by reference takes, or the
// reason it refuses). Neither receipt nor reference is Invalid
// "missing_parameter"; a bad phone is Invalid "invalid_phone_number"; no
// match is NotFound "payment_not_found".
func (g *Gateway) Verify(ctx context.Context, app *lipa.App, q VerifyQuery) (*Verification, error) {
	l := sqlstore.Lookup{App: app.ID, Receipt: strings.TrimSpace(q.Receipt), Reference: strings.TrimSpace(q.Reference)}
	if l.Receipt == "" && l.Reference == "" {
		return nil, lipa.InvalidField("missing_parameter", "receipt", "give a receipt or a reference to verify")
	}
	if q.Phone != "" {
		ph, err := lipa.ParsePhone(q.Phone)
		if err != nil {
			return nil, lipa.InvalidField("invalid_phone_number", "phone", "phone is not a Kenyan mobile number; use a form such as 0712345678 or 254712345678")
		}
		l.Phone = string(ph)
	}
	var v Verification
	err := g.db.Read(ctx, func(tx *sqlstore.Tx) (err error) {
		if l.Reference != "" {
			if v.AmountExpected, err = tx.ReferencePrice(ctx, app.ID, l.Reference); err != nil {
				return err
			}
		}
		if v.Payment, err = tx.BestPayment(ctx, l, sqlstore.Rank{Floor: v.AmountExpected, Exact: v.AmountExpected}); err != nil {
			return err
		}
		if l.Receipt != "" { // a receipt matches one payment at most
			if v.Status == lipa.StatusSuccess && !v.Claimed {
				v.AmountPaid = v.Amount
			}
		} else if v.AmountPaid, err = tx.UnclaimedTotal(ctx, l); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.Paid = v.Status == lipa.StatusSuccess && v.Amount >= v.AmountExpected
	v.FromIntake = v.Type == lipa.TypeC2B
	return &v, nil
}

// ClaimRequest names the payment to claim: by PaymentID, Receipt or
// Reference (when several are given, the payment found by the first of
// those must match the others). Amount, when not empty, is the amount in
// shillings the app expects ("100", "100.50").
type ClaimRequest struct {
	PaymentID lipa.PaymentID
	Receipt   string
	Reference string
	Amount    string
}

// Claim marks a SUCCESS payment as used by the app, exactly once: one
// conditional UPDATE decides, so of any number of concurrent claims one
// wins. Claiming a C2B intake payment moves it to the app.
//
// A claim that names a Reference under which the app has an STK payment
// never takes a payment worth less than that payment's amount (what the
// reference costs, see Verify): by reference alone it takes the payment
// Verify describes when that one is SUCCESS, unclaimed and covers the price
// (preferring one of exactly Amount, or of exactly the price when Amount is
// empty). Payments that only together cover the price are not claimed.
// Amount, when given, must equal the payment's amount exactly, as before.
//
// Errors: Invalid "missing_parameter" (no selector), "invalid_amount";
// NotFound "payment_not_found" (no such payment visible to the app); Conflict
// "already_claimed" (details: claimed_at), "payment_not_successful"
// (details: status, failure_reason); Unprocessable "amount_mismatch"
// (details: expected, actual): Amount is not the payment's amount, or no
// single SUCCESS unclaimed payment under the reference covers its price.
func (g *Gateway) Claim(ctx context.Context, app *lipa.App, r ClaimRequest) (*lipa.Payment, error) {
	r.Receipt, r.Reference = strings.TrimSpace(r.Receipt), strings.TrimSpace(r.Reference)
	if r.PaymentID == "" && r.Receipt == "" && r.Reference == "" {
		return nil, lipa.InvalidField("missing_parameter", "payment_id", "give a payment_id, receipt or reference to claim")
	}
	var want lipa.Amount
	if strings.TrimSpace(r.Amount) != "" {
		a, err := lipa.ParseAmount(r.Amount)
		if err != nil || a == 0 {
			return nil, lipa.InvalidField("invalid_amount", "amount", "amount %q is not a positive number of shillings", r.Amount)
		}
		want = a
	}
	var claimed *lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if r.Reference == "" && (r.PaymentID == "") != (r.Receipt == "") {
			// Named by ID or receipt alone: the conditional UPDATE finds,
			// claims and returns the payment at once; only a claim that
			// changed nothing reads the payment below to say why.
			p, err := tx.ClaimPaymentByKey(ctx, app.ID, sqlstore.ClaimKey{ID: r.PaymentID, Receipt: r.Receipt}, want, g.clock())
			if err != nil {
				return err
			}
			if p != nil {
				p.AppName = app.Name // the claim made it the app's
				claimed = p
				return g.emitTx(ctx, tx, p, EventPaymentClaimed)
			}
		}
		var price lipa.Amount
		if r.Reference != "" {
			var err error
			if price, err = tx.ReferencePrice(ctx, app.ID, r.Reference); err != nil {
				return err
			}
		}
		p, err := g.claimTarget(ctx, tx, app, r, want, price)
		if err != nil {
			return err
		}
		// A payment's amount never changes, so checking the price here
		// holds for the UPDATE below.
		if p.Amount < price {
			return whyNotClaimed(p, want, price)
		}
		now := g.clock()
		ok, err := tx.ClaimPayment(ctx, app.ID, p.ID, want, now)
		if err != nil {
			return err
		}
		if !ok {
			return whyNotClaimed(p, want, price)
		}
		// The row as the claim left it (a callback may have attached a
		// receipt between our read and our update).
		if p, err = tx.PaymentByID(ctx, p.ID); err != nil {
			return err
		}
		claimed = p
		return g.emitTx(ctx, tx, p, EventPaymentClaimed)
	})
	if err != nil {
		g.log.InfoContext(ctx, "claim refused", "app", app.Name, "code", lipa.ErrorCode(err), "payment_id", string(r.PaymentID), "receipt", r.Receipt, "reference", r.Reference)
		return nil, err
	}
	g.log.InfoContext(ctx, "payment claimed", "app", app.Name, "payment_id", claimed.ID, "receipt", claimed.MpesaReceiptNumber, "amount", claimed.Amount.String())
	return claimed, nil
}

// claimTarget finds the payment a claim names. By reference alone it is the
// payment Verify would describe, except that when that one is PENDING or
// FAILED while SUCCESS unclaimed payments under the reference fall short of
// price, the first-ranked of those is the target, so the claim is refused
// as amount_mismatch rather than payment_not_successful.
func (g *Gateway) claimTarget(ctx context.Context, tx *sqlstore.Tx, app *lipa.App, r ClaimRequest, want, price lipa.Amount) (*lipa.Payment, error) {
	var p *lipa.Payment
	var err error
	switch {
	case r.PaymentID != "":
		p, err = tx.PaymentForApp(ctx, app.ID, r.PaymentID)
	case r.Receipt != "":
		p, err = tx.BestPayment(ctx, sqlstore.Lookup{App: app.ID, Receipt: r.Receipt}, sqlstore.Rank{})
	default:
		exact := want
		if exact == 0 {
			exact = price
		}
		rank := sqlstore.Rank{Floor: price, Exact: exact}
		l := sqlstore.Lookup{App: app.ID, Reference: r.Reference}
		if p, err = tx.BestPayment(ctx, l, rank); err != nil || p.Status == lipa.StatusSuccess {
			break
		}
		unclaimed := false
		l.Status, l.Claimed = lipa.StatusSuccess, &unclaimed
		short, serr := tx.BestPayment(ctx, l, rank)
		if serr == nil {
			p = short
		} else if lipa.ErrorKind(serr) != lipa.NotFound {
			err = serr
		}
	}
	if err != nil {
		return nil, err
	}
	if (r.Receipt != "" && p.MpesaReceiptNumber != r.Receipt) || (r.Reference != "" && p.Reference != r.Reference) {
		return nil, lipa.Errorf(lipa.NotFound, "payment_not_found", "no payment matches all of payment_id, receipt and reference as given")
	}
	return p, nil
}

// whyNotClaimed explains a claim that changed nothing, or that would take a
// payment worth less than price (what the claim's reference costs; zero
// when it has none), from the payment as read in the same transaction.
func whyNotClaimed(p *lipa.Payment, want, price lipa.Amount) error {
	switch {
	case p.Status != lipa.StatusSuccess:
		e := lipa.Errorf(lipa.Conflict, "payment_not_successful", "payment %s is %s, not SUCCESS; only a successful payment can be claimed", p.ID, p.Status).
			With("payment_id", string(p.ID)).With("status", string(p.Status))
		if p.FailureReason != "" {
			e = e.With("failure_reason", string(p.FailureReason))
		}
		return e
	case p.Claimed:
		return lipa.Errorf(lipa.Conflict, "already_claimed", "payment %s was already claimed at %s", p.ID, p.ClaimedAt.Format(time.RFC3339)).
			With("payment_id", string(p.ID)).With("claimed_at", p.ClaimedAt.Format(time.RFC3339))
	case p.Amount < price:
		return lipa.Errorf(lipa.Unprocessable, "amount_mismatch",
			"reference %s costs %s shillings (this app's STK push under it) and no single successful unclaimed payment under it covers that; payment %s is for %s shillings",
			p.Reference, price, p.ID, p.Amount).
			With("payment_id", string(p.ID)).With("expected", price).With("actual", p.Amount)
	case want != 0 && want != p.Amount:
		return lipa.Errorf(lipa.Unprocessable, "amount_mismatch", "payment %s is for %s shillings, not %s", p.ID, p.Amount, want).
			With("payment_id", string(p.ID)).With("expected", want).With("actual", p.Amount)
	}
	// Claimed by a concurrent request between our read and our update.
	return lipa.Errorf(lipa.Conflict, "already_claimed", "payment %s was already claimed", p.ID).With("payment_id", string(p.ID))
}

// ListQuery filters an app's payment list. Status is PENDING, SUCCESS or
// FAILED; Claimed is "true" or "false"; Limit is 1–200 (default 50); Cursor
// is the next_cursor of the previous page.
type ListQuery struct {
	Status    string
	Reference string
	Claimed   string
	Limit     string
	Cursor    string
}

// Payments lists the payments the app can see, newest first, and returns the
// cursor of the next page ("" on the last page). Bad filters are Invalid
// with codes invalid_status, invalid_claimed, invalid_limit, invalid_cursor.
func (g *Gateway) Payments(ctx context.Context, app *lipa.App, q ListQuery) ([]lipa.Payment, string, error) {
	l := sqlstore.Lookup{App: app.ID, Reference: strings.TrimSpace(q.Reference)}
	switch s := lipa.Status(strings.ToUpper(q.Status)); s {
	case "", lipa.StatusPending, lipa.StatusSuccess, lipa.StatusFailed:
		l.Status = s
	default:
		return nil, "", lipa.InvalidField("invalid_status", "status", "status must be PENDING, SUCCESS or FAILED")
	}
	if q.Claimed != "" {
		b, err := strconv.ParseBool(q.Claimed)
		if err != nil {
			return nil, "", lipa.InvalidField("invalid_claimed", "claimed", "claimed must be true or false")
		}
		l.Claimed = &b
	}
	limit := 50
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > 200 {
			return nil, "", lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 200")
		}
		limit = n
	}
	var after *sqlstore.Cursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", lipa.InvalidField("invalid_cursor", "cursor", "cursor is not one Lipa gave; pass next_cursor from the previous page")
		}
		after = c
	}
	var page []lipa.Payment
	err := g.db.Read(ctx, func(tx *sqlstore.Tx) (err error) { page, err = tx.Payments(ctx, l, after, limit+1); return err })
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

func encodeCursor(c sqlstore.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "|" + string(c.ID)))
}

func decodeCursor(s string) (*sqlstore.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || !strings.HasPrefix(id, "pay_") || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return nil, strconv.ErrSyntax
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, err
	}
	return &sqlstore.Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: lipa.PaymentID(id)}, nil
}
