package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// DefaultRefundResultTimeout is how long a sent reversal waits for its
// Result before Transaction Status is asked, when Config names no other.
const DefaultRefundResultTimeout = 5 * time.Minute

// The event types of refunds (webhook.Type… for receivers): sent to the
// app that asked for the refund, with the payment and the refund.
const (
	EventRefundSucceeded = "refund.succeeded" // M-Pesa reversed the payment
	EventRefundFailed    = "refund.failed"    // the refund ended FAILED or REJECTED
)

// Reason limits of a refund: Daraja's Remarks take 2 to 100 characters
// (docs/daraja.md "Reversal").
const (
	MinRefundReasonLength = 2
	MaxRefundReasonLength = 100
)

// The review reasons of refunds (ReviewReason).
const (
	// ReviewRefundUnknown: a refund whose reversal was sent but whose
	// acknowledgement from Daraja was lost (a timeout, a crash), so Lipa has
	// nothing to ask Transaction Status by. It stays PENDING until an
	// operator settles it from the M-Pesa statement (SettleRefund).
	ReviewRefundUnknown ReviewReason = "refund_unknown"
	// ReviewRefundUnresolved: a refund PENDING for a day with no Result
	// and no Transaction Status answer. Lipa keeps asking, hourly.
	ReviewRefundUnresolved ReviewReason = "refund_unresolved"
	// ReviewRefundConflict: a Reversal Result or Transaction Status answer
	// that contradicts a settled refund; stored, not applied.
	ReviewRefundConflict ReviewReason = "refund_conflict"
)

// The audited refund decisions (AuditAction); target "refund:ID".
const (
	AuditRefundApprove AuditAction = "refund.approve" // ApproveRefund
	AuditRefundReject  AuditAction = "refund.reject"  // RejectRefund
	AuditRefundSettle  AuditAction = "refund.settle"  // SettleRefund
)

// refundCheckBatch is how many refunds one pass leases at a time.
const refundCheckBatch = 10

// refundUnresolvedAfter is how long a refund may stay PENDING before it is
// put in the review queue (it is still checked, hourly).
const refundUnresolvedAfter = 24 * time.Hour

// RefundApproval says which refunds wait in AWAITING_APPROVAL for an
// operator (LIPA_REFUND_APPROVAL). The zero value requires none.
type RefundApproval struct {
	// Required turns approval on.
	Required bool
	// Above, with Required, limits it to refunds of more than this amount;
	// zero means every refund.
	Above lipa.Amount
}

// Needed reports whether a refund of amount waits for an operator.
func (a RefundApproval) Needed(amount lipa.Amount) bool { return a.Required && amount > a.Above }

// String returns the setting as LIPA_REFUND_APPROVAL writes it.
func (a RefundApproval) String() string {
	switch {
	case !a.Required:
		return "never"
	case a.Above == 0:
		return "always"
	}
	return a.Above.String()
}

// ParseRefundApproval reads LIPA_REFUND_APPROVAL: "never" (or empty),
// "always", or an amount in shillings above which a refund waits for an
// operator ("5000"). Anything else is an error naming the setting.
func ParseRefundApproval(s string) (RefundApproval, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "never":
		return RefundApproval{}, nil
	case "always":
		return RefundApproval{Required: true}, nil
	default:
		a, err := lipa.ParseAmount(v)
		if err != nil {
			return RefundApproval{}, fmt.Errorf("LIPA_REFUND_APPROVAL %q must be never, always, or an amount in shillings above which refunds wait for approval", s)
		}
		return RefundApproval{Required: true, Above: a}, nil
	}
}

// RefundRequest is an app's request to refund one of its payments.
type RefundRequest struct {
	PaymentID lipa.PaymentID
	// Reason says why, 2–100 characters; M-Pesa keeps it as the
	// reversal's Remarks.
	Reason string
	// Amount, when not empty, is the amount in shillings the app expects
	// to refund; it must be the payment's (M-Pesa reverses whole
	// transactions).
	Amount string
	// IdempotencyKey, when not empty, makes the request safe to repeat, as
	// for STK pushes: a repeat with the same key and request gets the first
	// answer and asks for no second reversal.
	IdempotencyKey string
}

// RefundResult is what RequestRefund reports: the refund as it stands, or
// for a repeated Idempotency-Key the first answer as it was sent.
type RefundResult struct {
	Refund *lipa.Refund
	Replay *Replay
}

// canInitiate reports whether the initiator APIs (Reversal, Transaction
// Status) can be called.
func (g *Gateway) canInitiate() bool { return g.daraja != nil && g.daraja.HasInitiator() }

// refundHash identifies a refund request by what it asks for, to tell a
// true repeat of an Idempotency-Key from another request reusing it.
func refundHash(payment lipa.PaymentID, reason string) string {
	h := sha256.New()
	for _, f := range []string{"refund", string(payment), reason} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkRefundReason validates a refund's reason: 2–100 characters, no
// control characters (Invalid "invalid_reason").
func checkRefundReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	n := utf8.RuneCountInString(reason)
	if n < MinRefundReasonLength || n > MaxRefundReasonLength || hasControl(reason) || !hasVisible(reason) {
		return "", lipa.InvalidField("invalid_reason", "reason",
			"reason is required: %d to %d characters saying why, without control characters (M-Pesa keeps it as the reversal's remarks)",
			MinRefundReasonLength, MaxRefundReasonLength)
	}
	return reason, nil
}

// RequestRefund asks M-Pesa to give a payment's money back to its payer
// (Daraja's Reversal, docs/daraja.md "Reversal"). Only the app that owns
// the payment (its STK push, or a C2B payment it claimed) can refund it,
// and only a SUCCESS payment with an M-Pesa receipt. The refund is stored,
// then (unless it needs an operator's approval, see RefundApproval) the
// reversal is sent, outside any transaction; its outcome comes later, at
// the result URL, and is reported with refund.succeeded or refund.failed.
// A refund never changes the payment's status or claim.
//
// Errors, before anything is stored: NotConfigured "not_configured" (no
// initiator credentials); Invalid "invalid_reason", "invalid_amount";
// NotFound "payment_not_found" (not visible to the app); Conflict
// "payment_not_claimed" (an intake payment the app has not claimed),
// "payment_not_successful", "payment_has_no_receipt" (settled by an STK
// push query; Pull Transactions brings the receipt), "already_refunded"
// (a refund of it is under way or done, or M-Pesa said it was reversed
// already: details refund_id, status); Unprocessable
// "partial_refund_unsupported" (an amount other than the payment's),
// "idempotency_key_reused". Once the refund is stored, Daraja's answer is
// in the refund (FAILED "daraja_rejected" when Daraja refused the request;
// PENDING otherwise, sent again later when it provably was not sent).
func (g *Gateway) RequestRefund(ctx context.Context, app *lipa.App, r RefundRequest) (*RefundResult, error) {
	if !g.canInitiate() {
		return nil, darajaError(callReversal, daraja.ErrNoInitiator)
	}
	reason, err := checkRefundReason(r.Reason)
	if err != nil {
		return nil, err
	}
	var want lipa.Amount
	if strings.TrimSpace(r.Amount) != "" {
		a, err := lipa.ParseAmount(r.Amount)
		if err != nil || a <= 0 {
			return nil, lipa.InvalidField("invalid_amount", "amount", "amount %q is not a positive number of shillings", truncateText(r.Amount, 30))
		}
		want = a
	}
	now := g.clock()
	ref := &lipa.Refund{ID: lipa.RefundID(newID("ref_")), PaymentID: r.PaymentID, AppID: app.ID, Reason: reason,
		CreatedAt: now, UpdatedAt: now}
	hash := refundHash(r.PaymentID, reason)
	var earlier *sqlstore.IdempotencyRecord
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, "refund:"+string(r.PaymentID)); err != nil {
			return err
		}
		p, err := tx.PaymentForApp(ctx, app.ID, r.PaymentID)
		if err != nil {
			return err
		}
		if r.IdempotencyKey != "" {
			rec, reserved, err := tx.ReserveIdempotencyKey(ctx, app.ID, r.IdempotencyKey, hash, lipa.PaymentID(ref.ID), now)
			if err != nil {
				return err
			}
			if !reserved {
				earlier = rec
				return nil
			}
		}
		switch {
		case p.AppID != app.ID:
			return lipa.Errorf(lipa.Conflict, "payment_not_claimed",
				"payment %s is in the shared C2B intake pool; claim it before refunding it", p.ID).With("payment_id", string(p.ID))
		case p.Status != lipa.StatusSuccess:
			return lipa.Errorf(lipa.Conflict, "payment_not_successful", "payment %s is %s; only a successful payment can be refunded", p.ID, p.Status).
				With("payment_id", string(p.ID)).With("status", string(p.Status))
		case p.MpesaReceiptNumber == "":
			return lipa.Errorf(lipa.Conflict, "payment_has_no_receipt",
				"payment %s has no M-Pesa receipt yet (it was settled by an STK push query); it can be refunded once Lipa learns the receipt", p.ID).
				With("payment_id", string(p.ID))
		case want != 0 && want != p.Amount:
			return lipa.Errorf(lipa.Unprocessable, "partial_refund_unsupported",
				"M-Pesa reverses whole transactions: payment %s can only be refunded in full, %s shillings, not %s", p.ID, p.Amount, want).
				With("payment_id", string(p.ID)).With("expected", p.Amount).With("actual", want)
		}
		if err := refundableTx(ctx, tx, p.ID); err != nil {
			return err
		}
		ref.Amount, ref.Receipt = p.Amount, p.MpesaReceiptNumber
		w := sqlstore.RefundWork{}
		lease := time.Time{}
		if g.cfg.RefundApproval.Needed(p.Amount) {
			ref.Status, ref.ApprovalRequired = lipa.RefundAwaitingApproval, true
		} else {
			// Marked sent before Daraja is called: a crash in between
			// leaves a refund that is checked, never sent twice.
			ref.Status = lipa.RefundPending
			w = sqlstore.RefundWork{SentAt: now, NextCheckAt: now.Add(g.cfg.RefundResultTimeout)}
			lease = now.Add(g.sendLease())
		}
		return tx.InsertRefund(ctx, ref, w, lease)
	})
	if err != nil {
		return nil, err
	}
	if earlier != nil {
		return g.replayRefund(ctx, app, r.IdempotencyKey, hash, earlier)
	}
	g.log.Info("refund requested", "app", app.Name, "payment_id", ref.PaymentID, "refund_id", ref.ID, "amount", ref.Amount.String(),
		"status", ref.Status)
	if ref.Status == lipa.RefundPending {
		g.sendReversal(context.WithoutCancel(ctx), ref)
	}
	out, err := g.refundByID(context.WithoutCancel(ctx), ref.ID)
	if err != nil {
		return nil, err
	}
	return &RefundResult{Refund: out}, nil
}

// refundableTx refuses a second refund of a payment: one under way
// (AWAITING_APPROVAL, PENDING), one that succeeded, or one M-Pesa answered
// R000001 (already reversed). Conflict "already_refunded".
func refundableTx(ctx context.Context, tx *sqlstore.Tx, id lipa.PaymentID) error {
	rs, err := tx.RefundsOfPayment(ctx, id)
	if err != nil {
		return err
	}
	for _, x := range rs {
		if x.Status == lipa.RefundAwaitingApproval || x.Status == lipa.RefundPending || x.Status == lipa.RefundSucceeded ||
			x.FailureReason == lipa.RefundAlreadyReversed {
			return lipa.Errorf(lipa.Conflict, "already_refunded", "payment %s already has refund %s (%s); a payment is refunded once", id, x.ID, x.Status).
				With("payment_id", string(id)).With("refund_id", string(x.ID)).With("status", string(x.Status))
		}
	}
	return nil
}

// replayRefund answers a request that repeats an Idempotency-Key, as
// replay does for STK pushes.
func (g *Gateway) replayRefund(ctx context.Context, app *lipa.App, key, hash string, rec *sqlstore.IdempotencyRecord) (*RefundResult, error) {
	if rec.RequestHash != hash {
		return nil, lipa.Errorf(lipa.Unprocessable, "idempotency_key_reused",
			"Idempotency-Key %q was used for a different request; use a new key for a new refund", key)
	}
	rec, err := g.awaitIdempotentAnswer(ctx, app.ID, key, rec)
	if err != nil {
		return nil, err
	}
	g.log.Info("idempotent refund replayed", "app", app.Name, "refund_id", string(rec.PaymentID))
	if rec.ResponseStatus != 0 {
		return &RefundResult{Replay: &Replay{Status: rec.ResponseStatus, Body: rec.ResponseBody}}, nil
	}
	ref, err := g.Refund(ctx, app, lipa.RefundID(rec.PaymentID))
	if err != nil {
		return nil, err
	}
	return &RefundResult{Refund: ref}, nil
}

// SaveRefundResponse records the answer given to the request that reserved
// the app's Idempotency-Key for refund, for later repeats; see
// SaveIdempotentResponse.
func (g *Gateway) SaveRefundResponse(ctx context.Context, app *lipa.App, key string, refund lipa.RefundID, status int, body []byte) error {
	return g.SaveIdempotentResponse(ctx, app, key, lipa.PaymentID(refund), status, body)
}

// sendLease is how long a replica holds a refund while it calls Daraja.
func (g *Gateway) sendLease() time.Duration { return g.cfg.IdempotencyWait + time.Minute }

// Refund returns the app's refund by ID; another app's, or none, is
// NotFound "refund_not_found".
func (g *Gateway) Refund(ctx context.Context, app *lipa.App, id lipa.RefundID) (*lipa.Refund, error) {
	var r *lipa.Refund
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { r, err = tx.RefundForApp(ctx, app.ID, id); return err })
	return r, err
}

func (g *Gateway) refundByID(ctx context.Context, id lipa.RefundID) (*lipa.Refund, error) {
	var r *lipa.Refund
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { r, err = tx.RefundByID(ctx, id); return err })
	return r, err
}

// PaymentRefunds are a payment's refunds as its app sees them.
type PaymentRefunds struct {
	// Refunded is the amount of its SUCCESS refunds.
	Refunded lipa.Amount
	// Refunds are all of them, oldest first.
	Refunds []lipa.Refund
}

// RefundsOfPayment returns the refunds of a payment the app can see
// (Payment's rules; NotFound "payment_not_found" otherwise).
func (g *Gateway) RefundsOfPayment(ctx context.Context, app *lipa.App, id lipa.PaymentID) (*PaymentRefunds, error) {
	var out PaymentRefunds
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if _, err := tx.PaymentForApp(ctx, app.ID, id); err != nil {
			return err
		}
		rs, err := tx.RefundsOfPayment(ctx, id)
		out.Refunds = rs
		return err
	})
	for _, r := range out.Refunds {
		if r.Status == lipa.RefundSucceeded {
			out.Refunded += r.Amount
		}
	}
	return &out, err
}

// sendReversal asks Daraja to reverse refund r, whose row is marked sent
// and leased to this caller, and records what Daraja answered: the
// acknowledgement's IDs (the Result comes later); a refusal (FAILED
// "daraja_rejected"); a request that provably never reached Daraja
// (unmarked, sent again later by CheckRefunds); or nothing known (checked
// by CheckRefunds after RefundResultTimeout). It logs what it cannot
// record.
func (g *Gateway) sendReversal(ctx context.Context, r *lipa.Refund) {
	log := g.log.With("refund_id", r.ID, "payment_id", r.PaymentID)
	var shortCode string
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		p, err := tx.PaymentByID(ctx, r.PaymentID)
		if err == nil {
			shortCode = p.ShortCode
		}
		return err
	})
	if err != nil {
		log.Error("reversal not sent: payment unreadable", "err", err)
		return
	}
	if shortCode == "" {
		shortCode = g.cfg.ShortCode
	}
	ack, callErr := g.daraja.Reverse(ctx, daraja.ReversalRequest{
		TransactionID: r.Receipt, Amount: r.Amount, ReceiverParty: shortCode,
		ResultURL: g.cfg.ReversalResultURL, QueueTimeOutURL: g.cfg.ReversalTimeoutURL,
		Remarks: cut(r.Reason, MaxRefundReasonLength), Occasion: string(r.ID),
	})
	now := g.clock()
	var apiErr *daraja.APIError
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if callErr == nil {
			if err := lockConversationTx(ctx, tx, ack.ConversationID, ack.OriginatorConversationID); err != nil {
				return err
			}
		}
		cur, err := tx.RefundForUpdate(ctx, r.ID)
		if err != nil {
			return err
		}
		w, err := tx.RefundWorkOf(ctx, r.ID)
		if err != nil {
			return err
		}
		switch {
		case callErr == nil:
			cur.OriginatorConversationID, cur.ConversationID, cur.UpdatedAt = ack.OriginatorConversationID, ack.ConversationID, now
			if err := tx.UpdateRefund(ctx, cur); err != nil {
				return err
			}
			w.NextCheckAt = now.Add(g.cfg.RefundResultTimeout)
			if err := tx.ScheduleRefund(ctx, cur.ID, w); err != nil {
				return err
			}
			log.Info("reversal accepted by Daraja", "conversation_id", ack.ConversationID, "originator_conversation_id", ack.OriginatorConversationID)
			*r = *cur
			// A Result can beat the saving of the acknowledgement.
			return g.applyEarlyResultsTx(ctx, tx, []sqlstore.InboundKind{sqlstore.InboundReversalResult, sqlstore.InboundReversalTimeout},
				ack.ConversationID, ack.OriginatorConversationID)
		case provablyNotSent(callErr):
			w.SentAt, w.Attempts = time.Time{}, w.Attempts+1
			w.NextCheckAt = now.Add(g.backoff(w.Attempts))
			log.Warn("reversal not sent; sending again later", "next_attempt_at", w.NextCheckAt.Format(time.RFC3339), "err", callErr)
			return tx.ScheduleRefund(ctx, cur.ID, w)
		case errors.As(callErr, &apiErr):
			if apiErr.Class() == daraja.ClassConfiguration {
				log.Error("Daraja refused the reversal for Lipa's configuration; check MPESA_INITIATOR_NAME, MPESA_INITIATOR_PASSWORD, MPESA_CERTIFICATE_FILE and the result URLs", "err", callErr)
			}
			before := *cur
			if cur.Settle(lipa.RefundOutcome{Status: lipa.RefundFailed, ResultCode: apiErr.ErrorCode, ResultDesc: apiErr.ErrorMessage,
				FailureReason: lipa.RefundDarajaRejected, Source: lipa.RefundByRequest}, now) != lipa.DecisionApplied {
				return nil
			}
			*r = *cur
			log.Warn("reversal refused by Daraja", "err", callErr)
			return g.finishRefundTx(ctx, tx, &before, cur)
		default:
			// Unknown: it may have reached Daraja. Never sent again; the
			// check after RefundResultTimeout decides.
			log.Warn("reversal sent, answer unknown; it will be checked", "err", callErr)
			w.NextCheckAt = now.Add(g.cfg.RefundResultTimeout)
			return tx.ScheduleRefund(ctx, cur.ID, w)
		}
	})
	if err != nil {
		log.Error("record reversal answer", "err", err, "daraja_err", callErr)
	}
}

// backoff is the wait before the attempt-th retry of a refund's send or
// check: RefundResultTimeout doubling, at most an hour.
func (g *Gateway) backoff(attempt int) time.Duration {
	d := g.cfg.RefundResultTimeout
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(max(d, time.Second), time.Hour)
}

// finishRefundTx writes a refund that a report has just changed (before
// is how it was), and, when it has just become final, stops its checks and
// emits refund.succeeded or refund.failed.
func (g *Gateway) finishRefundTx(ctx context.Context, tx *sqlstore.Tx, before, r *lipa.Refund) error {
	if err := tx.UpdateRefund(ctx, r); err != nil {
		return err
	}
	if before.Status == r.Status {
		return nil
	}
	if r.Status.Final() {
		if err := tx.ScheduleRefund(ctx, r.ID, sqlstore.RefundWork{}); err != nil {
			return err
		}
		ev := EventRefundFailed
		if r.Status == lipa.RefundSucceeded {
			ev = EventRefundSucceeded
		}
		if err := g.emitRefundTx(ctx, tx, r, ev); err != nil {
			return err
		}
		g.log.Info("refund settled", "refund_id", r.ID, "payment_id", r.PaymentID, "status", r.Status,
			"failure_reason", r.FailureReason, "resolved_by", r.ResolvedBy, "reversal_receipt", r.ReversalReceipt)
	}
	return nil
}

// refundEventBody is the JSON of a refund event: the payment as GET
// /api/payments/{id}/ shows it, and the refund.
type refundEventBody struct {
	ID        string           `json:"id"`
	Type      string           `json:"type"`
	CreatedAt string           `json:"created_at"`
	Payment   lipa.PaymentView `json:"payment"`
	Refund    lipa.RefundView  `json:"refund"`
}

// emitRefundTx records a refund event for the refund's app in the
// caller's transaction (the outbox), queueing its webhook delivery when
// the app has a webhook URL.
func (g *Gateway) emitRefundTx(ctx context.Context, tx *sqlstore.Tx, r *lipa.Refund, typ string) error {
	p, err := tx.PaymentByID(ctx, r.PaymentID)
	if err != nil {
		return err
	}
	recipients, err := tx.EventRecipients(ctx, r.AppID)
	if err != nil {
		return err
	}
	now := g.clock()
	for _, rc := range recipients {
		if rc.App != r.AppID {
			continue
		}
		e := &sqlstore.Event{ID: newID("evt_"), AppID: rc.App, Type: typ, PaymentID: p.ID, CreatedAt: now}
		if e.Payload, err = json.Marshal(refundEventBody{ID: e.ID, Type: typ, CreatedAt: now.Format(time.RFC3339Nano),
			Payment: lipa.ViewOf(p), Refund: lipa.RefundViewOf(r)}); err != nil {
			return err
		}
		if err := tx.InsertEvent(ctx, e, rc.HasWebhook); err != nil {
			return err
		}
		if rc.HasWebhook {
			tx.AfterCommit(g.wakeDeliveries)
		}
	}
	return nil
}

// applyReversalResultTx applies a Reversal Result, stored as m, to refund
// r (locked): SUCCESS with the reversal's receipt, or FAILED with the
// reason its ResultCode gives (R000001 already_refunded, R000002
// transaction_not_found, 2001 initiator_rejected, 8006 credential_locked,
// others reversal_failed). A repeat changes nothing; a Result contradicting
// a final refund is flagged for the review queue.
func (g *Gateway) applyReversalResultTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, res *daraja.Result, r *lipa.Refund) error {
	o := lipa.RefundOutcome{Status: lipa.RefundFailed, ResultCode: res.ResultCode, ResultDesc: res.ResultDesc, Source: lipa.RefundByResult}
	switch res.Reason() {
	case daraja.ResultSucceeded:
		o.Status = lipa.RefundSucceeded
		if daraja.ValidReceipt(res.TransactionID) {
			o.ReversalReceipt = res.TransactionID
		}
	case daraja.ResultAlreadyReversed:
		o.FailureReason = lipa.RefundAlreadyReversed
	case daraja.ResultNotFound:
		o.FailureReason = lipa.RefundTransactionNotFound
	case daraja.ResultInitiatorRejected:
		o.FailureReason = lipa.RefundInitiatorRejected
		g.log.Error("Daraja refused the initiator; check MPESA_INITIATOR_NAME, MPESA_INITIATOR_PASSWORD and its role on the M-Pesa portal",
			"refund_id", r.ID, "result_code", res.ResultCode, "result_desc", res.ResultDesc)
	case daraja.ResultCredentialLocked:
		o.FailureReason = lipa.RefundCredentialLocked
		g.log.Error("the initiator's credential is locked; the Business Administrator must unlock it on the M-Pesa portal",
			"refund_id", r.ID, "result_code", res.ResultCode)
	default:
		o.FailureReason = lipa.RefundReversalFailed
	}
	return g.settleRefundTx(ctx, tx, m, r, o)
}

// settleRefundTx applies outcome o, reported by stored message m, to
// refund r (locked), records what was done with m, and flags a
// contradiction for the review queue.
func (g *Gateway) settleRefundTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, r *lipa.Refund, o lipa.RefundOutcome) error {
	before := *r
	switch r.Settle(o, g.clock()) {
	case lipa.DecisionDuplicate:
		return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeDuplicate, r.PaymentID, "refund "+string(r.ID))
	case lipa.DecisionConflict:
		note := fmt.Sprintf("M-Pesa says refund %s is %s (%s %s) but it is already %s", r.ID, o.Status, o.ResultCode, o.ResultDesc, before.Status)
		g.log.Warn("refund report contradicts a settled refund; stored, not applied", "refund_id", r.ID, "status", before.Status, "reported", o.Status)
		return g.flagTx(ctx, tx, sqlstore.OutcomeConflict, reviewCause{Reason: ReviewRefundConflict, InboundID: m.ID, PaymentID: r.PaymentID,
			Receipt: r.Receipt, Note: note})
	}
	if err := g.finishRefundTx(ctx, tx, &before, r); err != nil {
		return err
	}
	return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, r.PaymentID, "refund "+string(r.ID))
}

// RefundReport counts what one CheckRefunds pass did.
type RefundReport struct {
	Sent    int // reversals sent (approved, or not sent before)
	Checked int // Transaction Status queries sent for refunds without a Result
	Review  int // refunds put in the review queue: outcome unknown, or PENDING too long
}

// RefundCheckInterval is how often `lipa serve` runs CheckRefunds for a
// given RefundResultTimeout: a quarter of it, between 1 s and 30 s.
func RefundCheckInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/4, time.Second), 30*time.Second)
}

// CheckRefunds runs one pass over the PENDING refunds whose next look is
// due, each leased to this replica: a reversal not sent yet (approved, or
// provably not sent before) is sent; one sent more than
// RefundResultTimeout ago without a Result is asked about with Transaction
// Status, by its OriginatorConversationID, with backoff (the answer, at the
// result URL, settles it); one whose acknowledgement was lost (no IDs to
// ask by) goes to the review queue, as does one PENDING for a day. Safe on
// several replicas at once.
func (g *Gateway) CheckRefunds(ctx context.Context) (RefundReport, error) {
	var rep RefundReport
	if !g.canInitiate() {
		return rep, nil
	}
	for {
		now := g.clock()
		var rs []lipa.Refund
		var ws []sqlstore.RefundWork
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			rs, ws, err = tx.LeaseDueRefunds(ctx, now, now.Add(g.sendLease()), refundCheckBatch)
			return err
		})
		if err != nil {
			return rep, err
		}
		for i := range rs {
			if err := g.checkRefund(ctx, &rs[i], ws[i], &rep); err != nil {
				g.log.Error("check refund", "refund_id", rs[i].ID, "err", err)
			}
		}
		if len(rs) < refundCheckBatch || ctx.Err() != nil {
			break
		}
	}
	if rep != (RefundReport{}) {
		g.log.Info("refund pass", "sent", rep.Sent, "checked", rep.Checked, "review", rep.Review)
	}
	return rep, nil
}

// checkRefund handles one leased refund; see CheckRefunds.
func (g *Gateway) checkRefund(ctx context.Context, r *lipa.Refund, w sqlstore.RefundWork, rep *RefundReport) error {
	now := g.clock()
	if w.SentAt.IsZero() {
		var ok bool
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			ok, err = tx.MarkRefundSent(ctx, r.ID, now)
			return err
		})
		if err != nil || !ok {
			return err
		}
		rep.Sent++
		g.sendReversal(ctx, r)
		return nil
	}
	next := sqlstore.RefundWork{SentAt: w.SentAt, Attempts: w.Attempts + 1}
	next.NextCheckAt = now.Add(g.backoff(next.Attempts))
	var review *reviewCause
	switch {
	case r.OriginatorConversationID == "":
		// Daraja's acknowledgement was lost: there is nothing to ask by.
		review = &reviewCause{Reason: ReviewRefundUnknown, PaymentID: r.PaymentID, Receipt: r.Receipt,
			Note: fmt.Sprintf("refund %s: the reversal of %s was sent at %s but Daraja's answer was lost; check the M-Pesa statement, then settle the refund (lipa refunds settle)",
				r.ID, r.Receipt, w.SentAt.Format(time.RFC3339))}
		next.NextCheckAt = now.Add(time.Hour)
	default:
		if now.Sub(w.SentAt) >= refundUnresolvedAfter {
			review = &reviewCause{Reason: ReviewRefundUnresolved, PaymentID: r.PaymentID, Receipt: r.Receipt,
				Note: fmt.Sprintf("refund %s: no Result and no Transaction Status answer for the reversal of %s since %s; check the M-Pesa statement, then settle the refund (lipa refunds settle)",
					r.ID, r.Receipt, w.SentAt.Format(time.RFC3339))}
		}
		rep.Checked++
		_, err := g.askStatus(ctx, &sqlstore.StatusQuery{Purpose: statusForRefund, OriginalConversationID: r.OriginatorConversationID,
			RefundID: r.ID, PaymentID: r.PaymentID, AppID: r.AppID})
		if err != nil {
			g.log.Warn("Transaction Status of a refund not asked; asking again later", "refund_id", r.ID, "err", err)
		}
	}
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		cur, err := tx.RefundForUpdate(ctx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status != lipa.RefundPending {
			return nil // settled meanwhile
		}
		if review != nil {
			open, err := tx.OpenReviewForReceipt(ctx, string(review.Reason), review.Receipt)
			if err != nil {
				return err
			}
			if !open {
				rep.Review++
				if err := g.openReviewTx(ctx, tx, *review); err != nil {
					return err
				}
			}
		}
		return tx.ScheduleRefund(ctx, r.ID, next)
	})
}

// RefundView is a refund as operators see it (the CLI's --json and the
// admin API): the app's view, the app's name, and the operator's decision.
type RefundView struct {
	lipa.RefundView
	App            string  `json:"app"`
	DecidedBy      *string `json:"decided_by"`
	DecisionReason *string `json:"decision_reason"`
	DecidedAt      *string `json:"decided_at"`
}

// OperatorRefundView returns the operators' view of r; app is its app's
// name.
func OperatorRefundView(r *lipa.Refund, app string) RefundView {
	v := RefundView{RefundView: lipa.RefundViewOf(r), App: app, DecidedBy: optString(r.DecidedBy), DecisionReason: optString(r.DecisionReason)}
	if !r.DecidedAt.IsZero() {
		s := r.DecidedAt.Format(time.RFC3339Nano)
		v.DecidedAt = &s
	}
	return v
}

// RefundInfo is a refund with its app's name, for operators.
type RefundInfo struct {
	lipa.Refund
	AppName string
}

// View returns the operators' view.
func (r RefundInfo) View() RefundView { return OperatorRefundView(&r.Refund, r.AppName) }

// RefundFilter selects refunds for operators; zero fields do not filter.
type RefundFilter struct {
	Status    lipa.RefundStatus
	PaymentID lipa.PaymentID
	// Limit is how many at most: 1–1000, default 100.
	Limit int
}

// Refunds lists refunds for operators, newest first. A Limit outside
// 0–1000 is Invalid "invalid_limit"; an unknown Status Invalid
// "invalid_status".
func (g *Gateway) Refunds(ctx context.Context, f RefundFilter) ([]RefundInfo, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 1000")
	}
	f.Status = lipa.RefundStatus(strings.ToUpper(string(f.Status)))
	switch f.Status {
	case "", lipa.RefundAwaitingApproval, lipa.RefundPending, lipa.RefundSucceeded, lipa.RefundFailed, lipa.RefundRejected:
	default:
		return nil, lipa.InvalidField("invalid_status", "status", "status must be AWAITING_APPROVAL, PENDING, SUCCESS, FAILED or REJECTED")
	}
	var out []RefundInfo
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		rs, err := tx.Refunds(ctx, sqlstore.RefundFilter{Status: f.Status, PaymentID: f.PaymentID, Limit: f.Limit})
		if err != nil {
			return err
		}
		names := map[lipa.AppID]string{}
		for _, r := range rs {
			if _, ok := names[r.AppID]; !ok {
				p, err := tx.PaymentByID(ctx, r.PaymentID)
				if err != nil {
					return err
				}
				names[r.AppID] = p.AppName
			}
			out = append(out, RefundInfo{Refund: r, AppName: names[r.AppID]})
		}
		return nil
	})
	return out, err
}

// RefundForOperator returns any refund by ID, for operators; NotFound
// "refund_not_found" when there is none.
func (g *Gateway) RefundForOperator(ctx context.Context, id lipa.RefundID) (*RefundInfo, error) {
	var out RefundInfo
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		r, err := tx.RefundByID(ctx, id)
		if err != nil {
			return err
		}
		p, err := tx.PaymentByID(ctx, r.PaymentID)
		if err != nil {
			return err
		}
		out = RefundInfo{Refund: *r, AppName: p.AppName}
		return nil
	})
	return &out, err
}

func refundTarget(id lipa.RefundID) string { return "refund:" + string(id) }

// ApproveRefund lets a refund that waits for approval go ahead: it becomes
// PENDING and its reversal is sent at once when this gateway can reach
// Daraja, else by the next CheckRefunds pass of a running Lipa. Only an
// operator can approve (an Actor: the CLI, the admin API or the console),
// never the app that asked. Audited with reason.
//
// Errors: Invalid "invalid_actor", "reason_required", "invalid_reason";
// NotFound "refund_not_found"; Conflict "refund_not_awaiting_approval".
func (g *Gateway) ApproveRefund(ctx context.Context, actor Actor, id lipa.RefundID, reason string) (*lipa.Refund, error) {
	r, err := g.decideRefund(ctx, actor, id, reason, AuditRefundApprove, func(tx *sqlstore.Tx, r *lipa.Refund, now time.Time) error {
		r.Status, r.UpdatedAt = lipa.RefundPending, now
		if err := tx.UpdateRefund(ctx, r); err != nil {
			return err
		}
		return tx.ScheduleRefund(ctx, r.ID, sqlstore.RefundWork{NextCheckAt: now})
	})
	if err != nil {
		return nil, err
	}
	if g.canInitiate() {
		now := g.clock()
		var ok bool
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			ok, err = tx.LeaseRefundSend(ctx, r.ID, now, now, now.Add(g.sendLease()))
			return err
		})
		if err == nil && ok {
			g.sendReversal(context.WithoutCancel(ctx), r)
		}
		if r, err = g.refundByID(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// RejectRefund refuses a refund that waits for approval: it becomes
// REJECTED (failure_reason "rejected_by_operator"), M-Pesa is never asked,
// and the app gets refund.failed. Audited with reason; errors as
// ApproveRefund's.
func (g *Gateway) RejectRefund(ctx context.Context, actor Actor, id lipa.RefundID, reason string) (*lipa.Refund, error) {
	return g.decideRefund(ctx, actor, id, reason, AuditRefundReject, func(tx *sqlstore.Tx, r *lipa.Refund, now time.Time) error {
		before := *r
		if r.Settle(lipa.RefundOutcome{Status: lipa.RefundRejected, FailureReason: lipa.RefundRejectedByOperator,
			ResultDesc: "rejected by an operator", Source: lipa.RefundByOperator}, now) != lipa.DecisionApplied {
			return lipa.Errorf(lipa.Conflict, "refund_not_awaiting_approval", "refund %s cannot be rejected", r.ID)
		}
		return g.finishRefundTx(ctx, tx, &before, r)
	})
}

// decideRefund is the frame of an approval or rejection: it checks the
// actor and reason, locks the refund, requires AWAITING_APPROVAL, records
// the decision, runs do, and audits it, in one transaction.
func (g *Gateway) decideRefund(ctx context.Context, actor Actor, id lipa.RefundID, reason string, action AuditAction,
	do func(tx *sqlstore.Tx, r *lipa.Refund, now time.Time) error) (*lipa.Refund, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	var out *lipa.Refund
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		r, err := tx.RefundForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if r.Status != lipa.RefundAwaitingApproval {
			return lipa.Errorf(lipa.Conflict, "refund_not_awaiting_approval", "refund %s is %s, not AWAITING_APPROVAL", r.ID, r.Status).
				With("status", string(r.Status))
		}
		beforeView := lipa.RefundViewOf(r)
		now := g.clock()
		r.DecidedBy, r.DecisionReason, r.DecidedAt = actor.String(), reason, now
		if err := do(tx, r, now); err != nil {
			return err
		}
		if err := tx.UpdateRefund(ctx, r); err != nil {
			return err
		}
		out = r
		return g.recordAuditTx(ctx, tx, actor, action, refundTarget(r.ID), reason, map[string]any{"refund": beforeView},
			map[string]any{"refund": lipa.RefundViewOf(r)})
	})
	if err != nil {
		return nil, err
	}
	g.log.Info("refund decided", "refund_id", id, "action", action, "actor", actor.String(), "reason", reason, "status", out.Status)
	return out, nil
}

// SettleRefund settles a PENDING refund as an operator found it on the
// M-Pesa statement, for the refunds Lipa cannot settle itself (Daraja's
// acknowledgement lost, no Result and no Transaction Status answer):
// SUCCESS with the reversal's receipt, or FAILED (failure_reason
// "settled_by_operator"). The app gets the usual event; open review items
// about it close. Audited with reason.
//
// Errors: Invalid "invalid_actor", "reason_required", "invalid_reason",
// "invalid_status", "invalid_receipt"; NotFound "refund_not_found";
// Conflict "refund_not_pending".
func (g *Gateway) SettleRefund(ctx context.Context, actor Actor, id lipa.RefundID, status lipa.RefundStatus, receipt, reason string) (*lipa.Refund, error) {
	receipt = strings.TrimSpace(receipt)
	switch {
	case status != lipa.RefundSucceeded && status != lipa.RefundFailed:
		return nil, lipa.InvalidField("invalid_status", "status", "status must be SUCCESS or FAILED")
	case status == lipa.RefundSucceeded && !daraja.ValidReceipt(receipt):
		return nil, lipa.InvalidField("invalid_receipt", "receipt", "settling SUCCESS needs the reversal's M-Pesa receipt number")
	case status == lipa.RefundFailed && receipt != "":
		return nil, lipa.InvalidField("invalid_receipt", "receipt", "a FAILED refund has no reversal receipt")
	}
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	var out *lipa.Refund
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		r, err := tx.RefundForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if r.Status != lipa.RefundPending {
			return lipa.Errorf(lipa.Conflict, "refund_not_pending", "refund %s is %s; only a PENDING refund can be settled", r.ID, r.Status).
				With("status", string(r.Status))
		}
		before := *r
		o := lipa.RefundOutcome{Status: status, ReversalReceipt: receipt, ResultDesc: "settled by an operator", Source: lipa.RefundByOperator}
		if status == lipa.RefundFailed {
			o.FailureReason = lipa.RefundSettledByOperator
		}
		r.Settle(o, g.clock())
		if err := g.finishRefundTx(ctx, tx, &before, r); err != nil {
			return err
		}
		for _, reason := range []ReviewReason{ReviewRefundUnknown, ReviewRefundUnresolved} {
			items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, Reason: string(reason), PaymentID: r.PaymentID, Limit: 10})
			if err != nil {
				return err
			}
			for _, it := range items {
				if _, err := tx.ResolveReviewItem(ctx, it.ID, sqlstore.Resolution{Resolution: string(ResolutionSettled),
					Reason: "refund " + string(r.ID) + " settled", ByKind: string(actor.Kind), By: actor.Name, At: g.clock(),
					ResultPaymentID: r.PaymentID}); err != nil {
					return err
				}
			}
		}
		out = r
		return g.recordAuditTx(ctx, tx, actor, AuditRefundSettle, refundTarget(r.ID), reason, map[string]any{"refund": lipa.RefundViewOf(&before)},
			map[string]any{"refund": lipa.RefundViewOf(r)})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RefundLoop runs CheckRefunds every RefundCheckInterval(
// RefundResultTimeout) until ctx ends (at once when there are no initiator
// credentials: there is nothing to send or ask).
func (g *Gateway) RefundLoop(ctx context.Context) {
	if !g.canInitiate() {
		return
	}
	t := time.NewTicker(RefundCheckInterval(g.cfg.RefundResultTimeout))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.CheckRefunds(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("refund pass failed", "err", err)
			}
		}
	}
}
