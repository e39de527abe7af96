package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
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
// a settled payment, or whose amount differs from the payment's, is stored
// and flagged as a conflict, never applied; a callback for a
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
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
			return err
		}
		g.log.Warn("malformed stk callback stored", "inbound_id", msg.ID, "source", in.SourceAddr, "err", perr)
		return lipa.Errorf(lipa.Invalid, "malformed_callback", "the body is not an STK callback: %v", perr)
	}
	msg.CheckoutRequestID = cb.CheckoutRequestID
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, cb.CheckoutRequestID); err != nil {
			return err
		}
		if err := tx.InsertInbound(ctx, msg); err != nil {
			return err
		}
		p, err := tx.PaymentByCheckoutRequestID(ctx, cb.CheckoutRequestID)
		if lipa.ErrorKind(err) == lipa.NotFound {
			g.log.Warn("stk callback for an unknown CheckoutRequestID stored as unmatched",
				"checkout_request_id", cb.CheckoutRequestID, "result_code", cb.ResultCode, "inbound_id", msg.ID)
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeUnmatched, "", "no payment has this CheckoutRequestID yet")
		}
		if err != nil {
			return err
		}
		return g.applyCallbackTx(ctx, tx, p, cb, msg.ID)
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
	return nil
}

// applyCallbackTx applies a parsed callback, stored as inbound message
// inboundID, to payment p inside tx, and records the outcome.
func (g *Gateway) applyCallbackTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment, cb *daraja.STKCallback, inboundID int64) error {
	log := g.log.With("app", p.AppName, "payment_id", p.ID, "checkout_request_id", cb.CheckoutRequestID, "result_code", cb.ResultCode)
	o := lipa.Outcome{Status: lipa.StatusFailed, ResultCode: cb.ResultCode, ResultDesc: cb.ResultDesc,
		FailureReason: lipa.ReasonForResultCode(cb.ResultCode), Source: lipa.ResolvedByCallback}
	if cb.ResultCode == "0" {
		o = lipa.Outcome{Status: lipa.StatusSuccess, ResultCode: "0", ResultDesc: cb.ResultDesc, Receipt: cb.MpesaReceiptNumber,
			Amount: cb.Amount, PhoneNumber: cb.PhoneNumber, TransactionDate: cb.TransactionDate, Source: lipa.ResolvedByCallback}
		if cb.Amount != 0 && cb.Amount != p.Amount {
			note := fmt.Sprintf("callback amount %s differs from the payment's %s; not applied", cb.Amount, p.Amount)
			log.Warn("stk callback flagged", "reason", note)
			return tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeConflict, p.ID, note)
		}
	}
	before := *p
	switch p.Settle(o, g.clock()) {
	case lipa.DecisionDuplicate:
		log.Info("repeated stk callback ignored")
		return tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeDuplicate, p.ID, "")
	case lipa.DecisionConflict:
		note := fmt.Sprintf("callback says %s (ResultCode %s) but the payment is already %s", o.Status, cb.ResultCode, before.Status)
		log.Warn("stk callback contradicts a settled payment; stored, not applied", "status", before.Status)
		return tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeConflict, p.ID, note)
	}
	if err := tx.UpdatePayment(ctx, p); err != nil {
		var le *lipa.Error
		if errors.As(err, &le) && le.Code == "duplicate_receipt" {
			*p = before
			log.Warn("stk callback receipt belongs to another payment; stored, not applied", "receipt", cb.MpesaReceiptNumber)
			return tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeConflict, p.ID, le.Message)
		}
		return err
	}
	log.Info("stk callback applied", "status", p.Status, "failure_reason", p.FailureReason, "receipt", p.MpesaReceiptNumber)
	return tx.SetInboundOutcome(ctx, inboundID, sqlstore.OutcomeApplied, p.ID, "")
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
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
		return C2BAnswer{}, err
	}
	g.log.Info("c2b validation accepted", "trans_id", msg.TransID, "inbound_id", msg.ID)
	return C2BAnswer{ResultCode: "0", ResultDesc: "Accepted"}, nil
}

// ReceiveC2BConfirmation stores a C2B confirmation raw and records it as a
// SUCCESS C2B payment in the shared intake pool (no app until one claims
// it), in the same transaction. It is idempotent on TransID: a repeat, or a
// TransID that is already the receipt of any payment (one M-Pesa transaction
// is one payment), is acknowledged and changes nothing. MSISDN and
// TransAmount are stored as given; a masked or hashed MSISDN is normal.
//
// It returns nil whenever the payload is stored. A body that is not a JSON
// object, or has no TransID, is stored and returns Invalid
// "malformed_confirmation"; an unreadable TransAmount is stored for an
// operator and acknowledged (nil), never refused.
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
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
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
		amount, err := lipa.ParseAmount(n.TransAmount)
		if err != nil {
			g.log.Error("c2b confirmation with an unreadable TransAmount stored for review", "trans_id", n.TransID, "inbound_id", msg.ID)
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeMalformed, "", fmt.Sprintf("TransAmount %q is not a decimal amount", n.TransAmount))
		}
		existing, err := tx.PaymentByReceipt(ctx, n.TransID)
		if err == nil {
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeDuplicate, existing.ID, "")
		}
		if lipa.ErrorKind(err) != lipa.NotFound {
			return err
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
		if err := tx.InsertPayment(ctx, p); err != nil {
			return err
		}
		return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeApplied, p.ID, "")
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
