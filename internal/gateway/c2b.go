package gateway

import (
	"context"
	"fmt"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// C2BAnswer is Lipa's reply to a C2B validation request (docs/daraja.md
// "C2B"): ResultCode "0" accepts the payment; C2B00011–C2B00016 reject it.
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
	g.log.InfoContext(ctx, "c2b validation answered", "trans_id", msg.TransID, "result_code", ans.ResultCode, "inbound_id", msg.ID)
	return ans, nil
}

// validateC2B applies the configured C2B validation rules (codes of
// docs/daraja.md "C2B"): the account number must match C2BAccountPattern
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
		g.log.WarnContext(ctx, "malformed c2b confirmation stored", "inbound_id", msg.ID, "err", perr)
		return lipa.Errorf(lipa.Invalid, "malformed_confirmation", "the body is not a C2B confirmation: %v", perr)
	}
	msg.TransID = n.TransID
	var p *lipa.Payment
	held := false
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, "receipt:"+n.TransID); err != nil {
			return err
		}
		if err := tx.InsertInbound(ctx, msg); err != nil {
			return err
		}
		review := func(outcome sqlstore.InboundOutcome, reason ReviewReason, paymentID lipa.PaymentID, note string) error {
			g.log.ErrorContext(ctx, "c2b confirmation not taken as a payment; stored for review", "trans_id", reviewText(n.TransID),
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
		existing, err := tx.PaymentByReceipt(ctx, n.TransID)
		if err == nil && existing.Amount != amount {
			return review(sqlstore.OutcomeConflict, ReviewDuplicateOtherAmount, existing.ID,
				fmt.Sprintf("TransID %s is already payment %s for %s; this confirmation says %s", n.TransID, existing.ID, existing.Amount, amount))
		}
		if err == nil {
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeDuplicate, existing.ID, "")
		}
		if lipa.ErrorKind(err) != lipa.NotFound {
			return err
		}
		if g.confirmC2BByStatus() {
			held = true
			return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeUnconfirmed, "", "awaiting Transaction Status (LIPA_CONFIRM_BY_QUERY)")
		}
		p = g.newC2BPayment(n, amount, lipa.ResolvedByConfirmation, "C2B confirmation")
		if err := tx.InsertPayment(ctx, p); err != nil {
			return err
		}
		if err := g.emitTx(ctx, tx, p, EventC2BReceived); err != nil {
			return err
		}
		return tx.SetInboundOutcome(ctx, msg.ID, sqlstore.OutcomeApplied, p.ID, "")
	})
	if err != nil {
		g.log.ErrorContext(ctx, "c2b confirmation not applied", "trans_id", n.TransID, "err", err)
		msg.Note = "not applied: " + err.Error()
		if serr := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); serr != nil {
			g.log.ErrorContext(ctx, "c2b confirmation lost: could not store it", "trans_id", n.TransID, "err", serr)
		}
		return err
	}
	if held {
		g.log.Info("c2b confirmation held until Transaction Status confirms it", "trans_id", n.TransID, "inbound_id", msg.ID)
		g.confirmC2BLater(msg.ID, n.TransID)
		return nil
	}
	if p != nil {
		g.log.InfoContext(ctx, "c2b payment recorded in the intake pool", "payment_id", p.ID, "trans_id", n.TransID,
			"amount", p.Amount.String(), "bill_ref", n.BillRefNumber, "shortcode", n.BusinessShortCode)
	} else {
		g.log.InfoContext(ctx, "c2b confirmation already recorded", "trans_id", n.TransID)
	}
	return nil
}

// newC2BPayment is the SUCCESS intake payment (no app) that C2B
// notification n records, for amount, settled by source (a ResolvedBy
// value) with result description desc.
func (g *Gateway) newC2BPayment(n *daraja.C2BNotification, amount lipa.Amount, source, desc string) *lipa.Payment {
	now := g.clock()
	txDate, _ := lipa.ParseDarajaTime(n.TransTime)
	return &lipa.Payment{
		ID: lipa.PaymentID(newID("pay_")), Type: lipa.TypeC2B, Status: lipa.StatusSuccess,
		PhoneNumber: n.MSISDN, Amount: amount, Currency: "KES",
		Reference: n.BillRefNumber, AccountReference: n.BillRefNumber, Description: "C2B payment",
		ShortCode: n.BusinessShortCode, TransactionType: n.TransactionType,
		MpesaReceiptNumber: n.TransID, ResultCode: "0", ResultDesc: desc, ResolvedBy: source,
		TransactionDate: txDate, CreatedAt: now, UpdatedAt: now,
	}
}

// confirmC2BByStatus reports whether C2B confirmations wait for
// Transaction Status to confirm their receipt before they become payments:
// LIPA_CONFIRM_BY_QUERY with initiator credentials.
func (g *Gateway) confirmC2BByStatus() bool { return g.cfg.ConfirmByQuery && g.canInitiate() }

// confirmC2BLater asks Transaction Status, in the background, about the
// receipt of the held C2B confirmation inboundID; the answer (at the
// result URL) makes it a payment or a review item (confirmHeldC2BTx). A
// question Daraja refuses puts it in the review queue at once.
func (g *Gateway) confirmC2BLater(inboundID int64, receipt string) {
	g.spawn(func(ctx context.Context) {
		q, err := g.askStatus(ctx, &sqlstore.StatusQuery{Purpose: statusForReceipt, Receipt: receipt, InboundID: inboundID})
		if err == nil {
			return
		}
		g.log.Warn("held c2b confirmation not asked about; put in the review queue", "inbound_id", inboundID, "err", err)
		if q == nil {
			q = &sqlstore.StatusQuery{Purpose: statusForReceipt, Receipt: receipt, InboundID: inboundID}
		}
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
			return g.heldNotConfirmedTx(ctx, tx, q, "Transaction Status could not be asked: "+err.Error())
		}); err != nil {
			g.log.Error("held c2b confirmation not put in the review queue", "inbound_id", inboundID, "err", err)
		}
	})
}

// confirmHeldC2BTx acts on the Transaction Status answer m to query q about
// a held C2B confirmation: when M-Pesa has the receipt Completed for the
// confirmation's amount, the intake payment is created as the confirmation
// would have made it (c2b.received); otherwise the confirmation goes to the
// review queue (ReviewReceiptNotConfirmed).
func (g *Gateway) confirmHeldC2BTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, res *daraja.Result, q *sqlstore.StatusQuery) error {
	held, err := tx.InboundByID(ctx, q.InboundID)
	if err != nil {
		return err
	}
	if err := tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, "", "status query "+q.ID); err != nil {
		return err
	}
	if held.Outcome != sqlstore.OutcomeUnconfirmed {
		return nil
	}
	n, err := daraja.ParseC2BNotification(held.Body)
	if err != nil {
		return g.heldNotConfirmedTx(ctx, tx, q, "the held confirmation cannot be read")
	}
	amount, _ := lipa.ParseAmount(n.TransAmount)
	d := res.Status()
	switch {
	case res.Reason() == daraja.ResultNotFound:
		return g.heldNotConfirmedTx(ctx, tx, q, fmt.Sprintf("M-Pesa has no transaction %s (%s %s)", n.TransID, res.ResultCode, res.ResultDesc))
	case res.Reason() != daraja.ResultSucceeded:
		return g.heldNotConfirmedTx(ctx, tx, q, fmt.Sprintf("Transaction Status could not tell (%s %s)", res.ResultCode, res.ResultDesc))
	case d.ReceiptNo != "" && d.ReceiptNo != n.TransID:
		return g.heldNotConfirmedTx(ctx, tx, q, fmt.Sprintf("Transaction Status answered about receipt %s, not %s", reviewText(d.ReceiptNo), n.TransID))
	case d.Amount != amount:
		return g.heldNotConfirmedTx(ctx, tx, q, fmt.Sprintf("M-Pesa says %s was for %s shillings; the confirmation says %s", n.TransID, d.Amount, amount))
	}
	if err := tx.Lock(ctx, "receipt:"+n.TransID); err != nil {
		return err
	}
	if existing, err := tx.PaymentByReceipt(ctx, n.TransID); err == nil {
		return tx.SetInboundOutcome(ctx, held.ID, sqlstore.OutcomeDuplicate, existing.ID, "confirmed by Transaction Status; already recorded")
	} else if lipa.ErrorKind(err) != lipa.NotFound {
		return err
	}
	p := g.newC2BPayment(n, amount, lipa.ResolvedByConfirmation, "C2B confirmation, confirmed by Transaction Status")
	if err := tx.InsertPayment(ctx, p); err != nil {
		return err
	}
	if err := g.emitTx(ctx, tx, p, EventC2BReceived); err != nil {
		return err
	}
	g.log.Info("c2b payment recorded in the intake pool after Transaction Status confirmed it", "payment_id", p.ID, "trans_id", n.TransID)
	return tx.SetInboundOutcome(ctx, held.ID, sqlstore.OutcomeApplied, p.ID, "confirmed by Transaction Status "+q.ID)
}

// heldNotConfirmedTx puts the held C2B confirmation of query q in the
// review queue, with why.
func (g *Gateway) heldNotConfirmedTx(ctx context.Context, tx *sqlstore.Tx, q *sqlstore.StatusQuery, why string) error {
	return g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: ReviewReceiptNotConfirmed, InboundID: q.InboundID,
		Receipt: q.Receipt, Note: "C2B confirmation not confirmed, no payment made: " + why})
}
