package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// InboundKind names what Safaricom sent to a Safaricom-facing endpoint.
type InboundKind = sqlstore.InboundKind

// The kinds of inbound request the API layer passes on.
const (
	KindSTKCallback     = sqlstore.InboundSTKCallback
	KindC2BValidation   = sqlstore.InboundC2BValidation
	KindC2BConfirmation = sqlstore.InboundC2BConfirmation
)

// Inbound is one HTTP request from Safaricom as the API layer received it.
type Inbound struct {
	Path       string
	SourceAddr string // the peer address (ip:port)
	Body       []byte // raw, as received
}

// ReceiveSTKCallback stores an STK callback raw and then, in the same
// transaction, applies it to the payment with its CheckoutRequestID
// (Daraja reference §5). A repeat changes nothing; a callback contradicting
// a settled payment, or a success whose amount differs from the payment's
// or whose PhoneNumber is missing or differs (see callbackPhoneMismatch),
// is stored and flagged as a conflict, never applied; a callback for a
// CheckoutRequestID not yet saved is stored as unmatched and applied when
// the push's answer is saved.
//
// It returns nil whenever the callback is stored, whatever was done with it
// (Safaricom gets its acknowledgement). A body that is not an STK callback
// is stored too and returns Invalid "malformed_callback".
func (g *Gateway) ReceiveSTKCallback(ctx context.Context, in Inbound) error {
	ctx = context.WithoutCancel(ctx) // once received, finish storing it
	msg := &sqlstore.Inbound{Kind: sqlstore.InboundSTKCallback, Path: in.Path, SourceAddr: in.SourceAddr,
		ReceivedAt: g.clock(), Body: in.Body, Outcome: sqlstore.OutcomeReceived}
	cb, perr := daraja.ParseSTKCallback(in.Body)
	if perr != nil {
		msg.Outcome, msg.Note = sqlstore.OutcomeMalformed, perr.Error()
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
			if err := tx.InsertInbound(ctx, msg); err != nil {
				return err
			}
			return g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewMalformedPayload, InboundID: msg.ID, Note: msg.Note})
		}); err != nil {
			return err
		}
		g.log.Warn("malformed stk callback stored", "inbound_id", msg.ID, "source", in.SourceAddr, "err", perr)
		return lipa.Errorf(lipa.Invalid, "malformed_callback", "the body is not an STK callback: %v", perr)
	}
	msg.CheckoutRequestID = cb.CheckoutRequestID
	confirm := false
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, cb.CheckoutRequestID); err != nil {
			return err
		}
		if err := tx.InsertInbound(ctx, msg); err != nil {
			return err
		}
		p, err := tx.PaymentByCheckoutRequestID(ctx, cb.CheckoutRequestID)
		if lipa.ErrorKind(err) == lipa.NotFound {
			p, err = g.adoptOrphanTx(ctx, tx, cb)
		}
		if lipa.ErrorKind(err) == lipa.NotFound {
			g.log.Warn("stk callback for an unknown CheckoutRequestID stored as unmatched",
				"checkout_request_id", cb.CheckoutRequestID, "result_code", cb.ResultCode, "inbound_id", msg.ID)
			return g.flagTx(ctx, tx, sqlstore.OutcomeUnmatched, reviewCause{Reason: ReviewUnmatchedCallback, InboundID: msg.ID,
				CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber, Note: "no payment has this CheckoutRequestID yet"})
		}
		if err != nil {
			return err
		}
		confirm, err = g.applyCallbackTx(ctx, tx, p, cb, msg.ID, false)
		return err
	})
	if err != nil {
		// Keep the payload even when applying it failed.
		g.log.Error("stk callback not applied", "checkout_request_id", cb.CheckoutRequestID, "err", err)
		msg.Note = "not applied: " + err.Error()
		if serr := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); serr != nil {
			g.log.Error("stk callback lost: could not store it", "checkout_request_id", cb.CheckoutRequestID, "err", serr)
		}
		return err
	}
	if confirm {
		g.confirmLater(msg.ID)
	}
	return nil
}

// duplicateReceiptNote starts the note of a callback flagged because its
// receipt already belongs to another payment (review reason
// ReviewReceiptConflict, on which the reconciler decides).
const duplicateReceiptNote = "duplicate receipt: "

// mergeC2BCopyTx handles an STK callback whose receipt is already recorded
// as a C2B payment: on a paybill with C2B URLs registered, Safaricom may
// report an STK payment as a C2B confirmation too, sometimes first. When
// that copy is still an unclaimed intake payment for the same amount, it is
// the same M-Pesa transaction: the copy is removed (its stored confirmation
// now points at p) and the callback applies to p. Otherwise (claimed, or
// another amount) it reports false and the callback is flagged for an
// operator.
func (g *Gateway) mergeC2BCopyTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment, dup *sqlstore.ReceiptTakenError) (bool, error) {
	other, err := tx.PaymentForUpdate(ctx, dup.PaymentID)
	if err != nil {
		return false, err
	}
	if other.Type != lipa.TypeC2B || other.AppID != "" || other.Claimed || other.Amount != p.Amount {
		return false, nil
	}
	if err := tx.MergePayment(ctx, other.ID, p.ID); err != nil {
		return false, err
	}
	g.log.Warn("C2B copy of an STK payment merged into it (one M-Pesa transaction, two channels)",
		"payment_id", p.ID, "c2b_payment_id", other.ID, "receipt", other.MpesaReceiptNumber)
	return true, nil
}

// orphanWindow is how far back a callback looks for the push whose answer
// was lost: longer than any prompt lives.
const orphanWindow = 10 * time.Minute

// adoptOrphanTx finds the payment of a SUCCESS callback whose
// CheckoutRequestID Lipa never saved because Daraja's answer to the push was
// lost (a timeout, a garbled body): the one PENDING STK payment without a
// CheckoutRequestID, to the callback's phone, for its amount, created within
// orphanWindow. One prompt per phone at a time makes it unique; when it is
// not (or the callback carries no phone and amount: failures do not), it
// returns NotFound and the callback stays unmatched for an operator. The
// payment takes the callback's IDs, so the callback then applies to it as
// usual.
func (g *Gateway) adoptOrphanTx(ctx context.Context, tx *sqlstore.Tx, cb *daraja.STKCallback) (*lipa.Payment, error) {
	none := lipa.Errorf(lipa.NotFound, "payment_not_found", "no payment for this callback")
	if cb.ResultCode != "0" || !isMSISDN(cb.PhoneNumber) || cb.Amount == 0 {
		return nil, none
	}
	cands, err := tx.OrphanPushes(ctx, cb.PhoneNumber, cb.Amount, g.clock().Add(-orphanWindow))
	if err != nil {
		return nil, err
	}
	if len(cands) != 1 {
		return nil, none
	}
	p := &cands[0]
	p.CheckoutRequestID, p.MerchantRequestID, p.UpdatedAt = cb.CheckoutRequestID, cb.MerchantRequestID, g.clock()
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return nil, err
	}
	g.log.Warn("callback matched to a push whose Daraja answer was lost (same phone and amount)",
		"payment_id", p.ID, "checkout_request_id", cb.CheckoutRequestID, "app", p.AppName)
	return p, nil
}

// maxRejectedBody is how much of a refused request's body is kept: enough
// to see what it was, not enough to fill the disk for whoever sends it.
const maxRejectedBody = 2048

// RejectInbound stores a payload from an unauthenticated caller that failed
// a callback check (path token, source address) with the reason; it
// changes no payment, and logs only a failure to store (the caller logs
// the refusal). Only the first 2 KiB of the body are stored,
// with the full length and SHA-256 in the note.
func (g *Gateway) RejectInbound(ctx context.Context, kind InboundKind, in Inbound, reason string) {
	body := in.Body
	if len(body) > maxRejectedBody {
		sum := sha256.Sum256(body)
		reason = fmt.Sprintf("%s; body of %d bytes (sha256 %x) cut to %d", reason, len(body), sum, maxRejectedBody)
		body = body[:maxRejectedBody]
	}
	msg := &sqlstore.Inbound{Kind: kind, Path: in.Path, SourceAddr: in.SourceAddr, ReceivedAt: g.clock(), Body: body,
		Outcome: sqlstore.OutcomeRejected, Note: reason}
	if kind == sqlstore.InboundSTKCallback {
		if cb, err := daraja.ParseSTKCallback(in.Body); err == nil {
			msg.CheckoutRequestID = cb.CheckoutRequestID
		}
	}
	ctx = context.WithoutCancel(ctx)
	// The caller logs the refusal (under its own limits); only a failure
	// to keep the record is logged here.
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
		g.log.Error("rejected Safaricom-facing request not stored", "kind", kind, "source", in.SourceAddr, "reason", reason, "err", err)
	}
}

// applyCallbackTx applies a parsed callback, stored as inbound message
// inboundID, to payment p inside tx, and records the outcome. In
// confirm-by-query mode a SUCCESS callback that is not yet confirmed is only
// marked "unconfirmed", and applyCallbackTx returns true: the caller starts
// its confirmation once the transaction commits.
func (g *Gateway) applyCallbackTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment, cb *daraja.STKCallback, inboundID int64, confirmed bool) (bool, error) {
	log := g.log.With("app", p.AppName, "payment_id", p.ID, "checkout_request_id", cb.CheckoutRequestID, "result_code", cb.ResultCode)
	o := lipa.Outcome{Status: lipa.StatusFailed, ResultCode: cb.ResultCode, ResultDesc: cb.ResultDesc,
		FailureReason: lipa.ReasonForResultCode(cb.ResultCode), Source: lipa.ResolvedByCallback}
	if cb.ResultCode == "0" {
		o = lipa.Outcome{Status: lipa.StatusSuccess, ResultCode: "0", ResultDesc: cb.ResultDesc, Receipt: cb.MpesaReceiptNumber,
			Amount: cb.Amount, PhoneNumber: cb.PhoneNumber, TransactionDate: cb.TransactionDate, Source: lipa.ResolvedByCallback}
		flag := func(reason ReviewReason, note string) error {
			log.Warn("stk callback flagged", "reason", note)
			return g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: reason, InboundID: inboundID, PaymentID: p.ID,
				CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber, Note: note})
		}
		if !daraja.ValidReceipt(cb.MpesaReceiptNumber) {
			// Never recorded as mpesa_receipt_number: Daraja's receipts
			// are upper-case letters and digits (Daraja reference §4.4).
			return false, flag(ReviewInvalidReceipt, fmt.Sprintf("callback receipt %q is not an M-Pesa receipt number; not applied", reviewText(cut(cb.MpesaReceiptNumber, 40))))
		}
		if cb.Amount != p.Amount {
			return false, flag(ReviewAmountMismatch, fmt.Sprintf("callback amount %s differs from the payment's %s; not applied", cb.Amount, p.Amount))
		}
		if note := g.callbackPhoneMismatch(cb.PhoneNumber, p.PhoneNumber); note != "" {
			return false, flag(ReviewPhoneMismatch, note)
		}
	}
	if g.cfg.ConfirmByQuery && !confirmed && p.Status == lipa.StatusPending {
		// Neither a SUCCESS nor a FAILED report is taken on the callback's
		// word alone: a forged failure would fail a payment being paid.
		log.Info("stk callback stored; confirming it with an STK push query before applying it")
		return true, tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeUnconfirmed, p.ID, "awaiting STK push query")
	}
	before := *p
	switch p.Settle(o, g.clock()) {
	case lipa.DecisionDuplicate:
		log.Info("repeated stk callback ignored")
		return false, tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeDuplicate, p.ID, "")
	case lipa.DecisionConflict:
		note := fmt.Sprintf("callback says %s (ResultCode %s) but the payment is already %s", o.Status, cb.ResultCode, before.Status)
		log.Warn("stk callback contradicts a settled payment; stored, not applied", "status", before.Status)
		reason := ReviewStatusConflict
		if before.ResolvedBy == lipa.ResolvedByQuery {
			reason = ReviewQueryContradicts
			note = fmt.Sprintf("callback says %s (ResultCode %s) but Daraja's STK push query settled the payment %s", o.Status, cb.ResultCode, before.Status)
		}
		return false, g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: reason, InboundID: inboundID, PaymentID: p.ID,
			CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber, Note: note})
	}
	err := tx.UpdatePayment(ctx, p)
	var taken *sqlstore.ReceiptTakenError
	if errors.As(err, &taken) {
		merged, merr := g.mergeC2BCopyTx(ctx, tx, p, taken)
		if merr != nil {
			return false, merr
		}
		if !merged {
			*p = before
			log.Warn("stk callback receipt belongs to another payment; stored, not applied", "receipt", cb.MpesaReceiptNumber)
			return false, g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: ReviewReceiptConflict, InboundID: inboundID,
				PaymentID: p.ID, CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber,
				Note: duplicateReceiptNote + taken.Error() + "; not applied"})
		}
		err = tx.UpdatePayment(ctx, p)
	}
	if err != nil {
		return false, err
	}
	if err := tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeApplied, p.ID, ""); err != nil {
		return false, err
	}
	// The event last: on PostgreSQL it holds the events feed's ordering
	// lock until the commit (sqlstore.Tx.InsertEvent).
	if ev := settledEvent(before.Status, p); ev != "" {
		if err := g.emitTx(ctx, tx, p, ev); err != nil {
			return false, err
		}
	}
	log.Info("stk callback applied", "status", p.Status, "failure_reason", p.FailureReason, "receipt", p.MpesaReceiptNumber)
	return false, nil
}

// C2BAnswer is Lipa's reply to a C2B validation request (Daraja reference
// §7.5): ResultCode "0" accepts the payment; C2B00011–C2B00016 reject it.
type C2BAnswer struct {
	ResultCode string
	ResultDesc string
}

// ReceiveC2BValidation stores a C2B validation request and answers it.
// Every payment is accepted for now (validation rules are a later
// addition); an unreadable body is stored and accepted too, since Safaricom
// then applies the registered ResponseType anyway.
func (g *Gateway) ReceiveC2BValidation(ctx context.Context, in Inbound) (C2BAnswer, error) {
	ctx = context.WithoutCancel(ctx)
	msg := &sqlstore.Inbound{Kind: sqlstore.InboundC2BValidation, Path: in.Path, SourceAddr: in.SourceAddr,
		ReceivedAt: g.clock(), Body: in.Body, Outcome: sqlstore.OutcomeAnswered}
	n, err := daraja.ParseC2BNotification(in.Body)
	if err != nil {
		msg.Outcome, msg.Note = sqlstore.OutcomeMalformed, err.Error()
	} else {
		msg.TransID = n.TransID
	}
	ans := C2BAnswer{ResultCode: "0", ResultDesc: "Accepted"}
	if n != nil {
		ans = g.validateC2B(n)
	}
	if ans.ResultCode != "0" {
		msg.Note = "rejected: " + ans.ResultCode
	}
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
		return C2BAnswer{}, err
	}
	g.log.Info("c2b validation answered", "trans_id", msg.TransID, "result_code", ans.ResultCode, "inbound_id", msg.ID)
	return ans, nil
}

// validateC2B applies the configured C2B validation rules (Daraja
// reference §7.5 codes): the account number must match C2BAccountPattern
// (C2B00012), the amount must lie within C2BMinAmount–C2BMaxAmount
// (C2B00013).
func (g *Gateway) validateC2B(n *daraja.C2BNotification) C2BAnswer {
	reject := func(code string) C2BAnswer { return C2BAnswer{ResultCode: code, ResultDesc: "Rejected"} }
	if re := g.cfg.C2BAccountPattern; re != nil && !re.MatchString(n.BillRefNumber) {
		return reject("C2B00012")
	}
	if g.cfg.C2BMinAmount != 0 || g.cfg.C2BMaxAmount != 0 {
		a, err := lipa.ParseAmount(n.TransAmount)
		if err != nil || (g.cfg.C2BMinAmount != 0 && a < g.cfg.C2BMinAmount) || (g.cfg.C2BMaxAmount != 0 && a > g.cfg.C2BMaxAmount) {
			return reject("C2B00013")
		}
	}
	return C2BAnswer{ResultCode: "0", ResultDesc: "Accepted"}
}

// isMSISDN reports whether s is a plain 2547/2541 phone number (not a mask
// or a hash), which a cross-check can compare.
func isMSISDN(s string) bool {
	if len(s) != 12 || !strings.HasPrefix(s, "254") {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ReceiveC2BConfirmation stores a C2B confirmation raw and records it as a
// SUCCESS C2B payment in the shared intake pool (no app until one claims
// it), in the same transaction. It is idempotent on TransID: a repeat, or a
// TransID that is already the receipt of a payment for the same amount (one
// M-Pesa transaction is one payment), is acknowledged and changes nothing.
// MSISDN is stored as given; a masked or hashed MSISDN is normal.
//
// A confirmation Lipa cannot take as a payment is stored, put in the review
// queue and acknowledged (nil: Safaricom has moved the money already and
// does not resend): a JSON key given twice (ReviewRepeatedKey), a TransID
// not of Daraja's shape (ReviewInvalidReceipt), a TransAmount that is zero,
// negative or unreadable (ReviewInvalidAmount), no MSISDN or no
// BusinessShortCode (ReviewMissingFields), a TransID already recorded for
// another amount (ReviewDuplicateOtherAmount). None becomes a claimable
// payment.
//
// A body that is not a JSON object, or has no TransID, is stored, put in
// the review queue (ReviewMalformedPayload) and returns Invalid
// "malformed_confirmation".
func (g *Gateway) ReceiveC2BConfirmation(ctx context.Context, in Inbound) error {
	ctx = context.WithoutCancel(ctx)
	msg := &sqlstore.Inbound{Kind: sqlstore.InboundC2BConfirmation, Path: in.Path, SourceAddr: in.SourceAddr,
		ReceivedAt: g.clock(), Body: in.Body, Outcome: sqlstore.OutcomeReceived}
	n, perr := daraja.ParseC2BNotification(in.Body)
	if perr == nil && n.TransID == "" {
		perr = fmt.Errorf("%w: no TransID", daraja.ErrMalformed)
	}
	if perr != nil {
		msg.Outcome, msg.Note = sqlstore.OutcomeMalformed, perr.Error()
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
			if err := tx.InsertInbound(ctx, msg); err != nil {
				return err
			}
			return g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewMalformedPayload, InboundID: msg.ID, Note: msg.Note})
		}); err != nil {
			return err
		}
		g.log.Warn("malformed c2b confirmation stored", "inbound_id", msg.ID, "err", perr)
		return lipa.Errorf(lipa.Invalid, "malformed_confirmation", "the body is not a C2B confirmation: %v", perr)
	}
	msg.TransID = n.TransID
	var p *lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, "receipt:"+n.TransID); err != nil {
			return err
		}
		if err := tx.InsertInbound(ctx, msg); err != nil {
			return err
		}
		review := func(outcome sqlstore.InboundOutcome, reason ReviewReason, paymentID lipa.PaymentID, note string) error {
			g.log.Error("c2b confirmation not taken as a payment; stored for review", "trans_id", reviewText(n.TransID),
				"inbound_id", msg.ID, "reason", reason)
			return g.flagTx(ctx, tx, outcome, reviewCause{Reason: reason, InboundID: msg.ID, PaymentID: paymentID, Receipt: n.TransID, Note: note})
		}
		if key, ok := daraja.RepeatedKey(in.Body); ok {
			return review(sqlstore.OutcomeMalformed, ReviewRepeatedKey, "", fmt.Sprintf("the confirmation names %q twice", reviewText(cut(key, 40))))
		}
		if !daraja.ValidReceipt(n.TransID) {
			return review(sqlstore.OutcomeMalformed, ReviewInvalidReceipt, "", fmt.Sprintf("TransID %q is not an M-Pesa receipt number (1-%d upper-case letters and digits)",
				reviewText(cut(n.TransID, 40)), daraja.MaxReceiptLength))
		}
		amount, err := lipa.ParseAmount(n.TransAmount)
		if err != nil || amount <= 0 {
			return review(sqlstore.OutcomeMalformed, ReviewInvalidAmount, "", fmt.Sprintf("TransAmount %q is not an amount above zero", reviewText(cut(n.TransAmount, 40))))
		}
		if n.MSISDN == "" || n.BusinessShortCode == "" {
			return review(sqlstore.OutcomeMalformed, ReviewMissingFields, "", "the confirmation has no MSISDN or no BusinessShortCode")
		}
		now := g.clock()
		txDate, _ := lipa.ParseDarajaTime(n.TransTime)
		p = &lipa.Payment{
			ID: lipa.PaymentID(newID("pay_")), Type: lipa.TypeC2B, Status: lipa.StatusSuccess,
			PhoneNumber: n.MSISDN, Amount: amount, Currency: "KES",
			Reference: n.BillRefNumber, AccountReference: n.BillRefNumber, Description: "C2B payment",
			ShortCode: n.BusinessShortCode, TransactionType: n.TransactionType,
			MpesaReceiptNumber: n.TransID, ResultCode: "0", ResultDesc: "C2B confirmation", ResolvedBy: lipa.ResolvedByConfirmation,
			TransactionDate: txDate, CreatedAt: now, UpdatedAt: now,
		}
		// The insert is also the check for a repeat: it writes nothing
		// when a payment has the receipt already (one M-Pesa transaction
		// is one payment), which is then read to compare amounts.
		if err := tx.InsertPayment(ctx, p); errors.Is(err, sqlstore.ErrPaymentExists) {
			p = nil
			existing, err := tx.PaymentByReceipt(ctx, n.TransID)
			if err != nil {
				return err
			}
			if existing.Amount != amount {
				return review(sqlstore.OutcomeConflict, ReviewDuplicateOtherAmount, existing.ID,
					fmt.Sprintf("TransID %s is already payment %s for %s; this confirmation says %s", n.TransID, existing.ID, existing.Amount, amount))
			}
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeDuplicate, existing.ID, "")
		} else if err != nil {
			return err
		}
		if err := tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeApplied, p.ID, ""); err != nil {
			return err
		}
		// The events last: on PostgreSQL they hold the events feed's
		// ordering lock until the commit (sqlstore.Tx.InsertEvent).
		return g.emitTx(ctx, tx, p, EventC2BReceived)
	})
	if err != nil {
		g.log.Error("c2b confirmation not applied", "trans_id", n.TransID, "err", err)
		msg.Note = "not applied: " + err.Error()
		if serr := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); serr != nil {
			g.log.Error("c2b confirmation lost: could not store it", "trans_id", n.TransID, "err", serr)
		}
		return err
	}
	if p != nil {
		g.log.Info("c2b payment recorded in the intake pool", "payment_id", p.ID, "trans_id", n.TransID,
			"amount", p.Amount.String(), "bill_ref", n.BillRefNumber, "shortcode", n.BusinessShortCode)
	} else {
		g.log.Info("c2b confirmation already recorded", "trans_id", n.TransID)
	}
	return nil
}
