package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// ReceiveSTKCallback stores an STK callback raw and then, in the same
// transaction, applies it to the payment with its CheckoutRequestID
// (docs/daraja.md "STK callback"). A repeat changes nothing; a callback contradicting
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
		g.log.WarnContext(ctx, "malformed stk callback stored", "inbound_id", msg.ID, "source", in.SourceAddr, "err", perr)
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
		var p *lipa.Payment
		var err error = lipa.Errorf(lipa.NotFound, "payment_not_found", "no payment can have this CheckoutRequestID")
		if daraja.ValidCheckoutRequestID(cb.CheckoutRequestID) {
			p, err = tx.PaymentByCheckoutRequestID(ctx, cb.CheckoutRequestID)
			if lipa.ErrorKind(err) == lipa.NotFound {
				p, err = g.adoptOrphanTx(ctx, tx, cb)
			}
		}
		if lipa.ErrorKind(err) == lipa.NotFound {
			g.log.WarnContext(ctx, "stk callback for an unknown CheckoutRequestID stored as unmatched",
				"checkout_request_id", cb.CheckoutRequestID, "result_code", cb.ResultCode, "inbound_id", msg.ID)
			return g.flagTx(ctx, tx, sqlstore.OutcomeUnmatched, reviewCause{Reason: ReviewUnmatchedCallback, InboundID: msg.ID,
				CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber, Note: "no payment has this CheckoutRequestID yet"})
		}
		if err != nil {
			return err
		}
		if p.Status == lipa.StatusPending {
			lag := msg.ReceivedAt.Sub(p.CreatedAt)
			tx.AfterCommit(func() { g.metrics.CallbackLag(lag) })
		}
		confirm, err = g.applyCallbackTx(ctx, tx, p, cb, msg.ID, false)
		return err
	})
	if err != nil {
		// Keep the payload even when applying it failed.
		g.log.ErrorContext(ctx, "stk callback not applied", "checkout_request_id", cb.CheckoutRequestID, "err", err)
		msg.Note = "not applied: " + err.Error()
		if serr := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); serr != nil {
			g.log.ErrorContext(ctx, "stk callback lost: could not store it", "checkout_request_id", cb.CheckoutRequestID, "err", serr)
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
	g.log.WarnContext(ctx, "C2B copy of an STK payment merged into it (one M-Pesa transaction, two channels)",
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
	g.log.WarnContext(ctx, "callback matched to a push whose Daraja answer was lost (same phone and amount)",
		"payment_id", p.ID, "checkout_request_id", cb.CheckoutRequestID, "app", p.AppName)
	return p, nil
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
			log.WarnContext(ctx, "stk callback flagged", "reason", note)
			return g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: reason, InboundID: inboundID, PaymentID: p.ID,
				CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber, Note: note})
		}
		if !daraja.ValidReceipt(cb.MpesaReceiptNumber) {
			// Never recorded as mpesa_receipt_number: Daraja's receipts
			// are upper-case letters and digits (docs/daraja.md "Receipt and
			// ID shapes").
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
		log.InfoContext(ctx, "stk callback stored; confirming it with an STK push query before applying it")
		return true, tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeUnconfirmed, p.ID, "awaiting STK push query")
	}
	before := *p
	switch p.Settle(o, g.clock()) {
	case lipa.DecisionDuplicate:
		log.InfoContext(ctx, "repeated stk callback ignored")
		return false, tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeDuplicate, p.ID, "")
	case lipa.DecisionConflict:
		note := fmt.Sprintf("callback says %s (ResultCode %s) but the payment is already %s", o.Status, cb.ResultCode, before.Status)
		log.WarnContext(ctx, "stk callback contradicts a settled payment; stored, not applied", "status", before.Status)
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
			log.WarnContext(ctx, "stk callback receipt belongs to another payment; stored, not applied", "receipt", cb.MpesaReceiptNumber)
			return false, g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: ReviewReceiptConflict, InboundID: inboundID,
				PaymentID: p.ID, CheckoutRequestID: cb.CheckoutRequestID, Receipt: cb.MpesaReceiptNumber,
				Note: duplicateReceiptNote + taken.Error() + "; not applied"})
		}
		err = tx.UpdatePayment(ctx, p)
	}
	if err != nil {
		return false, err
	}
	if ev := settledEvent(before.Status, p); ev != "" {
		if err := g.emitTx(ctx, tx, p, ev); err != nil {
			return false, err
		}
	}
	log.InfoContext(ctx, "stk callback applied", "status", p.Status, "failure_reason", p.FailureReason, "receipt", p.MpesaReceiptNumber)
	return false, tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeApplied, p.ID, "")
}
