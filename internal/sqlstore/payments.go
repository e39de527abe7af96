package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

const paymentColumns = `p.id, COALESCE(p.app_id, ''), COALESCE(a.name, ''), p.payment_type, p.status, p.phone_number,
	p.amount_cents, p.currency, p.reference, p.account_reference, p.description, p.shortcode, p.transaction_type,
	COALESCE(p.mpesa_receipt_number, ''), COALESCE(p.checkout_request_id, ''), p.merchant_request_id, p.customer_message,
	p.result_code, p.result_desc, p.failure_reason, p.resolved_by, p.claimed, p.claimed_at, COALESCE(p.claimed_by, ''),
	p.transaction_date, p.created_at, p.updated_at`

const paymentFrom = " FROM payments p LEFT JOIN apps a ON a.id = p.app_id "

// visibleTo is the condition under which an app may see a payment: its own,
// or an unclaimed C2B payment in the shared intake pool (no app yet).
const visibleTo = "(p.app_id = ? OR (p.app_id IS NULL AND p.payment_type = 'C2B'))"

func scanPayment(row interface{ Scan(...any) error }) (*lipa.Payment, error) {
	var p lipa.Payment
	var claimedAt, txDate sql.NullTime
	err := row.Scan(&p.ID, &p.AppID, &p.AppName, &p.Type, &p.Status, &p.PhoneNumber,
		&p.Amount, &p.Currency, &p.Reference, &p.AccountReference, &p.Description, &p.ShortCode, &p.TransactionType,
		&p.MpesaReceiptNumber, &p.CheckoutRequestID, &p.MerchantRequestID, &p.CustomerMessage,
		&p.ResultCode, &p.ResultDesc, &p.FailureReason, &p.ResolvedBy, &p.Claimed, &claimedAt, &p.ClaimedBy,
		&txDate, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, err
	}
	p.ClaimedAt, p.TransactionDate = fromNull(claimedAt), fromNull(txDate)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

func nullIfEmpty[T ~string](s T) any {
	if s == "" {
		return nil
	}
	return string(s)
}

// ErrPaymentExists is the cause of InsertPayment's "duplicate_payment"
// error; callers decide on it with errors.Is, never on the error's code.
var ErrPaymentExists = errors.New("a payment with this receipt or CheckoutRequestID exists")

// InsertPayment stores a new payment. A receipt number or CheckoutRequestID
// that another payment already has is a Conflict error with code
// "duplicate_payment" wrapping ErrPaymentExists; nothing is written then.
func (t *Tx) InsertPayment(ctx context.Context, p *lipa.Payment) error {
	res, err := t.exec(ctx, `INSERT INTO payments (id, app_id, payment_type, status, phone_number, amount_cents, currency,
		reference, account_reference, description, shortcode, transaction_type, mpesa_receipt_number, checkout_request_id,
		merchant_request_id, customer_message, result_code, result_desc, failure_reason, resolved_by, transaction_date, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		p.ID, nullIfEmpty(p.AppID), p.Type, p.Status, p.PhoneNumber, int64(p.Amount), p.Currency,
		p.Reference, p.AccountReference, p.Description, p.ShortCode, p.TransactionType,
		nullIfEmpty(p.MpesaReceiptNumber), nullIfEmpty(p.CheckoutRequestID),
		p.MerchantRequestID, p.CustomerMessage, p.ResultCode, p.ResultDesc, p.FailureReason, p.ResolvedBy,
		dbTime(p.TransactionDate), dbTime(p.CreatedAt), dbTime(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lipa.Errorf(lipa.Conflict, "duplicate_payment", "a payment with this receipt or CheckoutRequestID already exists").Wrap(ErrPaymentExists)
	}
	return nil
}

// ReceiptTakenError is the cause of UpdatePayment's "duplicate_receipt"
// error: the receipt already belongs to payment PaymentID. Callers decide
// on it with errors.As, never on the error's code.
type ReceiptTakenError struct {
	Receipt   string
	PaymentID lipa.PaymentID
}

func (e *ReceiptTakenError) Error() string {
	return fmt.Sprintf("receipt %s already belongs to payment %s", e.Receipt, e.PaymentID)
}

// UpdatePayment writes the fields that Daraja's answers and reports change
// (status, result, receipt, Daraja's request IDs, phone, transaction date,
// updated_at). Claim fields are written only by ClaimPayment. A receipt
// that another payment already has is a Conflict error with code
// "duplicate_receipt" wrapping a *ReceiptTakenError.
func (t *Tx) UpdatePayment(ctx context.Context, p *lipa.Payment) error {
	q := `UPDATE payments SET status = ?, phone_number = ?, mpesa_receipt_number = ?, checkout_request_id = ?,
		merchant_request_id = ?, customer_message = ?, result_code = ?, result_desc = ?, failure_reason = ?, resolved_by = ?,
		transaction_date = ?, updated_at = ? WHERE id = ?`
	args := []any{p.Status, p.PhoneNumber, nullIfEmpty(p.MpesaReceiptNumber), nullIfEmpty(p.CheckoutRequestID),
		p.MerchantRequestID, p.CustomerMessage, p.ResultCode, p.ResultDesc, p.FailureReason, p.ResolvedBy,
		dbTime(p.TransactionDate), dbTime(p.UpdatedAt), p.ID}
	if p.MpesaReceiptNumber != "" {
		// The receipt check is part of the UPDATE: it changes nothing
		// when another payment has the receipt, which is then looked up.
		q += " AND NOT EXISTS (SELECT 1 FROM payments o WHERE o.mpesa_receipt_number = ? AND o.id <> ?)"
		args = append(args, p.MpesaReceiptNumber, p.ID)
	}
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("update payment %s: %w", p.ID, err)
	}
	if p.MpesaReceiptNumber == "" {
		return nil
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var other string
	err = t.queryRow(ctx, "SELECT id FROM payments WHERE mpesa_receipt_number = ? AND id <> ?", p.MpesaReceiptNumber, p.ID).Scan(&other)
	switch {
	case err == nil:
		return lipa.Errorf(lipa.Conflict, "duplicate_receipt", "receipt %s already belongs to payment %s", p.MpesaReceiptNumber, other).
			With("payment_id", other).Wrap(&ReceiptTakenError{Receipt: p.MpesaReceiptNumber, PaymentID: lipa.PaymentID(other)})
	case errors.Is(err, sql.ErrNoRows):
		return nil // no payment p.ID: nothing to update, as before
	}
	return fmt.Errorf("check receipt: %w", err)
}

// PaymentForApp returns the payment with that ID if the app may see it (its
// own, or an unclaimed C2B intake payment); otherwise a NotFound error with
// code "payment_not_found".
func (t *Tx) PaymentForApp(ctx context.Context, app lipa.AppID, id lipa.PaymentID) (*lipa.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+"WHERE p.id = ? AND "+visibleTo, id, app))
	return p, notFound(err, "payment_not_found", fmt.Sprintf("no payment %q is visible to this app", id))
}

// PaymentByID returns any payment by ID, whatever its app (for Safaricom's
// callbacks and operators), or a NotFound error.
func (t *Tx) PaymentByID(ctx context.Context, id lipa.PaymentID) (*lipa.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+"WHERE p.id = ?", id))
	return p, notFound(err, "payment_not_found", fmt.Sprintf("no payment %q", id))
}

// PaymentForUpdate returns any payment by ID, like PaymentByID, and on
// PostgreSQL locks its row until the transaction ends, so a read-then-write
// never overwrites a concurrent change (SQLite transactions are serial).
func (t *Tx) PaymentForUpdate(ctx context.Context, id lipa.PaymentID) (*lipa.Payment, error) {
	q := "SELECT " + paymentColumns + paymentFrom + "WHERE p.id = ?"
	if t.backend == Postgres {
		q += " FOR UPDATE OF p"
	}
	p, err := scanPayment(t.queryRow(ctx, q, id))
	return p, notFound(err, "payment_not_found", fmt.Sprintf("no payment %q", id))
}

// PaymentByCheckoutRequestID returns the STK payment Daraja knows by that
// CheckoutRequestID, or a NotFound error.
func (t *Tx) PaymentByCheckoutRequestID(ctx context.Context, checkoutRequestID string) (*lipa.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+"WHERE p.checkout_request_id = ?", checkoutRequestID))
	return p, notFound(err, "payment_not_found", fmt.Sprintf("no payment has CheckoutRequestID %q", checkoutRequestID))
}

// PaymentByReceipt returns the payment with that M-Pesa receipt number
// (MpesaReceiptNumber or C2B TransID), whatever its app, or a NotFound error.
func (t *Tx) PaymentByReceipt(ctx context.Context, receipt string) (*lipa.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+"WHERE p.mpesa_receipt_number = ?", receipt))
	return p, notFound(err, "payment_not_found", fmt.Sprintf("no payment has receipt %q", receipt))
}

// Lookup selects the payments one app asks about. App is required; empty
// fields do not filter.
type Lookup struct {
	App       lipa.AppID
	Receipt   string
	Reference string
	Phone     string
	Status    lipa.Status
	Claimed   *bool
}

func (l Lookup) where() (string, []any) {
	conds := []string{visibleTo}
	args := []any{l.App}
	add := func(cond string, v any) { conds = append(conds, cond); args = append(args, v) }
	if l.Receipt != "" {
		add("p.mpesa_receipt_number = ?", l.Receipt)
	}
	if l.Reference != "" {
		add("p.reference = ?", l.Reference)
	}
	if l.Phone != "" {
		add("p.phone_number = ?", l.Phone)
	}
	if l.Status != "" {
		add("p.status = ?", l.Status)
	}
	if l.Claimed != nil {
		add("p.claimed = ?", *l.Claimed)
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// Rank orders the payments a Lookup matches when one must be chosen. Floor is
// what the reference costs (the amount of the app's newest STK payment under
// it, see ReferencePrice; zero when there is none, so every amount reaches
// it); a payment "covers" when its amount is at least Floor. Exact is the
// amount preferred among unclaimed SUCCESS payments that cover (zero: none).
type Rank struct {
	Floor lipa.Amount
	Exact lipa.Amount
}

// BestPayment returns the payment matching l that an app most likely means
// when several match (a reference reused after a failed attempt, a paybill
// payment under the same account number), in this order: a SUCCESS unclaimed
// one that covers r.Floor, then a SUCCESS claimed one that covers it, then
// PENDING, then FAILED, then a SUCCESS one that falls short of r.Floor
// (unclaimed first). Within the first group one of amount r.Exact comes
// first; within every group the app's own payments come before intake ones,
// then the newest. No match is a NotFound error with code
// "payment_not_found".
func (t *Tx) BestPayment(ctx context.Context, l Lookup, r Rank) (*lipa.Payment, error) {
	where, args := l.where()
	if l.Receipt != "" {
		// A receipt is unique: one payment at most, nothing to rank.
		p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+where, args...))
		return p, notFound(err, "payment_not_found", "no payment matches")
	}
	args = append(args, int64(r.Floor), int64(r.Floor), int64(r.Exact))
	p, err := scanPayment(t.queryRow(ctx, "SELECT "+paymentColumns+paymentFrom+where+`
		ORDER BY CASE WHEN p.status = 'SUCCESS' AND p.amount_cents >= ? AND p.claimed = FALSE THEN 0
		WHEN p.status = 'SUCCESS' AND p.amount_cents >= ? THEN 1 WHEN p.status = 'PENDING' THEN 2
		WHEN p.status = 'FAILED' THEN 3 WHEN p.claimed = FALSE THEN 4 ELSE 5 END,
		CASE WHEN p.status = 'SUCCESS' AND p.claimed = FALSE AND p.amount_cents = ? THEN 0 ELSE 1 END,
		CASE WHEN p.app_id IS NULL THEN 1 ELSE 0 END, p.created_at DESC, p.id DESC LIMIT 1`, args...))
	return p, notFound(err, "payment_not_found", "no payment matches")
}

// ReferencePrice returns what reference costs the app: the amount of the
// app's newest STK payment under it, whatever that payment's status (the
// app's latest word on the price; a push for a new amount under a reused
// reference changes it). It is zero when the app has no STK payment under
// the reference (STK amounts are at least one shilling, so zero is never a
// price).
func (t *Tx) ReferencePrice(ctx context.Context, app lipa.AppID, reference string) (lipa.Amount, error) {
	var a lipa.Amount
	err := t.queryRow(ctx, `SELECT amount_cents FROM payments WHERE app_id = ? AND payment_type = 'STK' AND reference = ?
		ORDER BY created_at DESC, id DESC LIMIT 1`, app, reference).Scan(&a)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reference price: %w", err)
	}
	return a, nil
}

// UnclaimedTotal returns the sum of the SUCCESS, unclaimed payments matching
// l (its Status and Claimed are ignored), zero when there are none.
func (t *Tx) UnclaimedTotal(ctx context.Context, l Lookup) (lipa.Amount, error) {
	unclaimed := false
	l.Status, l.Claimed = lipa.StatusSuccess, &unclaimed
	where, args := l.where()
	var a lipa.Amount
	if err := t.queryRow(ctx, "SELECT CAST(COALESCE(SUM(p.amount_cents), 0) AS BIGINT) FROM payments p "+where, args...).Scan(&a); err != nil {
		return 0, fmt.Errorf("unclaimed total: %w", err)
	}
	return a, nil
}

// Cursor marks a position in a newest-first list of payments.
type Cursor struct {
	CreatedAt time.Time
	ID        lipa.PaymentID
}

// Payments lists the payments matching l, newest first, starting after the
// cursor when one is given, at most limit of them.
func (t *Tx) Payments(ctx context.Context, l Lookup, after *Cursor, limit int) ([]lipa.Payment, error) {
	where, args := l.where()
	if after != nil {
		where += " AND (p.created_at < ? OR (p.created_at = ? AND p.id < ?))"
		args = append(args, dbTime(after.CreatedAt), dbTime(after.CreatedAt), after.ID)
	}
	args = append(args, limit)
	return t.queryPayments(ctx, "list payments", "SELECT "+paymentColumns+paymentFrom+where+" ORDER BY p.created_at DESC, p.id DESC LIMIT ?", args...)
}

// queryPayments runs query, which selects paymentColumns, and returns
// the payments it reads in order; what names the query in errors.
func (t *Tx) queryPayments(ctx context.Context, what, query string, args ...any) ([]lipa.Payment, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []lipa.Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, fmt.Errorf("scan payment: %w", err)
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// claimUpdate is the claim's conditional UPDATE, up to the column that
// names the payment: it changes a row only if the payment is SUCCESS,
// unclaimed and visible to the app (its own, or in the intake pool), and
// moves an intake payment to the app.
const claimUpdate = `UPDATE payments SET claimed = TRUE, claimed_at = ?, claimed_by = ?, app_id = COALESCE(app_id, ?), updated_at = ?
		WHERE status = 'SUCCESS' AND claimed = FALSE AND (app_id = ? OR (app_id IS NULL AND payment_type = 'C2B')) AND `

// paymentReturning is paymentColumns as an UPDATE's RETURNING clause reads
// them: the row as the UPDATE left it, without the app's name (that needs a
// join; the caller knows it).
const paymentReturning = ` RETURNING id, COALESCE(app_id, ''), '', payment_type, status, phone_number,
	amount_cents, currency, reference, account_reference, description, shortcode, transaction_type,
	COALESCE(mpesa_receipt_number, ''), COALESCE(checkout_request_id, ''), merchant_request_id, customer_message,
	result_code, result_desc, failure_reason, resolved_by, claimed, claimed_at, COALESCE(claimed_by, ''),
	transaction_date, created_at, updated_at`

// ClaimPayment marks a SUCCESS, unclaimed payment visible to the app as
// claimed by it, in one conditional UPDATE: of any number of concurrent
// calls for one payment exactly one returns true. An intake payment (no app)
// becomes the claiming app's. When amount is not zero the payment's amount
// must equal it. false means nothing changed; the caller reads the payment to
// say why.
func (t *Tx) ClaimPayment(ctx context.Context, app lipa.AppID, id lipa.PaymentID, amount lipa.Amount, now time.Time) (bool, error) {
	q := claimUpdate + "id = ?"
	args := []any{dbTime(now), app, app, dbTime(now), app, id}
	if amount != 0 {
		q += " AND amount_cents = ?"
		args = append(args, int64(amount))
	}
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("claim payment %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim payment %s: %w", id, err)
	}
	return n == 1, nil
}

// ClaimKey names the payment a claim takes: by ID or by M-Pesa receipt.
// Exactly one of the two is set.
type ClaimKey struct {
	ID      lipa.PaymentID
	Receipt string
}

// ClaimPaymentByKey is ClaimPayment for the payment k names, returning the
// payment as the claim left it (AppName empty: the claiming app's own name
// is the caller's to fill in), in the same one conditional UPDATE, so
// exactly one of any number of concurrent claims gets a payment. It
// returns nil and no error when nothing changed (no such payment visible
// to the app, not SUCCESS, already claimed, or another amount); the caller
// reads the payment to say why.
func (t *Tx) ClaimPaymentByKey(ctx context.Context, app lipa.AppID, k ClaimKey, amount lipa.Amount, now time.Time) (*lipa.Payment, error) {
	q, key := claimUpdate+"id = ?", any(k.ID)
	if k.ID == "" {
		q, key = claimUpdate+"mpesa_receipt_number = ?", k.Receipt
	}
	args := []any{dbTime(now), app, app, dbTime(now), app, key}
	if amount != 0 {
		q += " AND amount_cents = ?"
		args = append(args, int64(amount))
	}
	p, err := scanPayment(t.queryRow(ctx, q+paymentReturning, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim payment: %w", err)
	}
	return p, nil
}
