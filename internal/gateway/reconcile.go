package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// reconcileBatch is how many payments one pass leases at a time; the lease
// lasts long enough for each to take a full Daraja timeout.
const reconcileBatch = 10

// maxCheckInterval caps the backoff between two STK push queries of one
// payment.
const maxCheckInterval = 10 * time.Minute

// ReconcileInterval is how often `lipa serve` runs a reconciliation pass for
// a given ReconcileAfter: half of it, between 1 s and 30 s, so a payment is
// looked at no later than about ReconcileAfter after it became due.
func ReconcileInterval(after time.Duration) time.Duration {
	return min(max(after/2, time.Second), 30*time.Second)
}

// ReconcileReport counts what one reconciliation pass did.
type ReconcileReport struct {
	Checked   int // payments looked at
	Succeeded int // settled SUCCESS from an STK push query
	Failed    int // settled FAILED from an STK push query
	Expired   int // settled FAILED "expired"
	Deferred  int // still undecided; looked at again later, with backoff
	// Held counts payments past PendingExpiry left PENDING for the review
	// queue instead of expiring (also counted in Deferred): an open review
	// item, or a push whose Daraja answer was lost.
	Held int
}

// Reconcile runs one reconciliation pass: every PENDING STK payment older
// than ReconcileAfter whose next check is due is leased (so one replica
// handles it), then, outside any transaction, resolved with an STK push query
// (docs/daraja.md "STK query"): ResultCode "0" settles it SUCCESS with resolved_by
// "query" and no receipt (a late callback attaches it), another final code
// settles it FAILED; "still processing", "does not exist", timeouts and
// Daraja faults defer it with exponential backoff. A payment PENDING longer
// than PendingExpiry becomes FAILED "expired", unless a person must decide:
// a payment with an open review item, or a push whose Daraja answer was lost
// (no CheckoutRequestID: the customer may have paid; it gets an orphan_push
// review item), stays PENDING and is looked at again. A query never overrides a
// payment settled meanwhile (Payment.Settle). Old idempotency keys (over
// twice PendingExpiry, at least 48 h) are forgotten.
func (g *Gateway) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	for {
		now := g.clock()
		var due []lipa.Payment
		lease := now.Add(reconcileBatch*g.cfg.IdempotencyWait + time.Minute)
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			due, err = tx.ClaimDuePending(ctx, now.Add(-g.cfg.ReconcileAfter), now, lease, reconcileBatch)
			return err
		})
		if err != nil {
			return rep, err
		}
		for i := range due {
			if err := g.reconcileOne(ctx, &due[i], &rep); err != nil {
				g.log.Error("reconcile payment", "payment_id", due[i].ID, "err", err)
			}
		}
		if len(due) < reconcileBatch || ctx.Err() != nil {
			break
		}
	}
	keep := max(2*g.cfg.PendingExpiry, 48*time.Hour)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		_, err := tx.DeleteIdempotencyKeysBefore(ctx, g.clock().Add(-keep))
		return err
	})
	g.metrics.Reconciled("succeeded", rep.Succeeded)
	g.metrics.Reconciled("failed", rep.Failed)
	g.metrics.Reconciled("expired", rep.Expired)
	g.metrics.Reconciled("deferred", rep.Deferred) // Held ones included
	g.metrics.Reconciled("held", rep.Held)
	if rep.Checked > 0 {
		g.log.Info("reconciliation pass", "checked", rep.Checked, "succeeded", rep.Succeeded, "failed", rep.Failed,
			"expired", rep.Expired, "deferred", rep.Deferred)
	}
	return rep, err
}

// reconcileOne resolves one leased PENDING payment. It asks Daraja first
// whenever it can, even past the expiry: a payment Daraja says was paid must
// not be failed for being late (Lipa may have been down).
func (g *Gateway) reconcileOne(ctx context.Context, p *lipa.Payment, rep *ReconcileReport) error {
	rep.Checked++
	log := g.log.With("app", p.AppName, "payment_id", p.ID, "checkout_request_id", p.CheckoutRequestID)
	expired := g.clock().Sub(p.CreatedAt) >= g.cfg.PendingExpiry
	undecided := func(why string) error {
		if expired {
			err := g.settle(ctx, p, lipa.Outcome{Status: lipa.StatusFailed, FailureReason: lipa.ReasonExpired,
				ResultDesc: fmt.Sprintf("no verdict from M-Pesa within %s", g.cfg.PendingExpiry), Source: lipa.ResolvedByExpiry}, nil)
			if !errors.Is(err, errUnderReview) {
				if err == nil {
					rep.Expired++
					log.Warn("pending payment expired", "pending_for", g.clock().Sub(p.CreatedAt).Round(time.Second), "last_answer", why)
				}
				return err
			}
			rep.Held++
			log.Warn("pending payment past its expiry left PENDING for the review queue", "last_answer", why)
		}
		rep.Deferred++
		return g.defer_(ctx, p, why)
	}
	if p.CheckoutRequestID == "" || g.daraja == nil {
		// Daraja's answer to the push was never saved: nothing to query. A
		// late success callback still finds the payment by phone and
		// amount; past the expiry it goes to the review queue.
		return undecided("no CheckoutRequestID to query")
	}
	q, err := g.daraja.STKQuery(ctx, g.cfg.ShortCode, g.cfg.Passkey, p.CheckoutRequestID)
	if err == nil {
		g.noteDaraja("")
	}
	var apiErr *daraja.APIError
	switch {
	case err != nil && errors.As(err, &apiErr) && apiErr.Class() == daraja.ClassConfiguration:
		g.noteDaraja(apiErr.Error())
		log.Error("Daraja refused Lipa's configuration on STK push query", "err", err)
		return undecided(err.Error())
	case err != nil:
		// "being processed", "does not exist", timeouts, faults: no answer yet.
		return undecided(err.Error())
	case q.Pending():
		return undecided("still processing (" + q.ResultCode + ")")
	}
	o := lipa.Outcome{Status: lipa.StatusFailed, ResultCode: q.ResultCode, ResultDesc: q.ResultDesc,
		FailureReason: lipa.ReasonForResultCode(q.ResultCode), Source: lipa.ResolvedByQuery}
	if q.ResultCode == "0" {
		o = lipa.Outcome{Status: lipa.StatusSuccess, ResultCode: "0", ResultDesc: q.ResultDesc, Source: lipa.ResolvedByQuery}
	}
	err = g.settle(ctx, p, o, q.Raw)
	switch {
	case errors.Is(err, errRecordedElsewhere):
		// Never expired: Daraja says it was paid. It stays in the review
		// queue until an operator settles it.
		rep.Deferred++
		log.Error("STK push query says paid, but the callback's receipt belongs to another payment; left for an operator")
		if err := g.keepUnderReview(ctx, p, ReviewReceiptConflict,
			"Daraja's STK push query says paid, but the callback's receipt belongs to another payment; settle it"); err != nil {
			return err
		}
		return g.defer_(ctx, p, err.Error())
	case err == nil && o.Status == lipa.StatusSuccess:
		rep.Succeeded++
		g.confirmReceiptLater(p.ID) // a held callback may have brought a receipt
	case err == nil:
		rep.Failed++
	}
	return err
}

// defer_ schedules the payment's next check with capped exponential backoff
// and jitter, never past its expiry.
func (g *Gateway) defer_(ctx context.Context, p *lipa.Payment, why string) error {
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		n, err := tx.CheckAttempts(ctx, p.ID)
		if err != nil {
			return err
		}
		wait := g.cfg.ReconcileAfter / 2
		for i := 0; i < n && wait < maxCheckInterval; i++ {
			wait *= 2
		}
		wait = min(max(wait, time.Second), maxCheckInterval)
		wait += time.Duration(rand.Int64N(int64(wait)/5 + 1)) // up to +20% jitter
		now := g.clock()
		next := now.Add(wait)
		if expiry := p.CreatedAt.Add(g.cfg.PendingExpiry); next.After(expiry) && expiry.After(now) {
			next = expiry // look once more right at the expiry
		}
		g.log.Info("pending payment deferred", "payment_id", p.ID, "next_check_at", next.Format(time.RFC3339), "attempt", n+1, "why", why)
		return tx.ScheduleCheck(ctx, p.ID, next, n+1)
	})
}

// errRecordedElsewhere is settle's refusal to mark a payment SUCCESS from a
// query when its callback's receipt already belongs to another (claimed)
// payment: the money is recorded there, and an operator must decide.
var errRecordedElsewhere = errors.New("paid, but the receipt is recorded as another payment; needs an operator")

// settle applies a reconciler's outcome to the payment under the lock of
// its CheckoutRequestID, storing Daraja's query answer (raw) when there is
// one. Callbacks held for confirmation are then applied (a SUCCESS one
// brings its receipt; the others are flagged), and only then is the event
// emitted. It returns errRecordedElsewhere (and changes nothing) for a
// query SUCCESS whose receipt another payment already has, and
// errUnderReview (changing nothing but opening an orphan_push item when
// needed) for an expiry a person must decide instead (holdForReviewTx). A
// query contradicting a settled payment is stored and put in the review
// queue.
func (g *Gateway) settle(ctx context.Context, p *lipa.Payment, o lipa.Outcome, raw json.RawMessage) error {
	underReview := false
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if p.CheckoutRequestID != "" {
			if err := tx.Lock(ctx, p.CheckoutRequestID); err != nil {
				return err
			}
		}
		cur, err := tx.PaymentForUpdate(ctx, p.ID)
		if err != nil {
			return err
		}
		if o.Source == lipa.ResolvedByQuery && o.Status == lipa.StatusSuccess {
			dup, err := hadReceiptConflictTx(ctx, tx, cur.ID)
			if err != nil {
				return err
			}
			if dup {
				return errRecordedElsewhere
			}
		}
		if o.Source == lipa.ResolvedByExpiry {
			held, err := g.holdForReviewTx(ctx, tx, cur)
			if err != nil {
				return err
			}
			if held {
				underReview = true
				return nil
			}
		}
		outcome, note := sqlstore.OutcomeApplied, ""
		before := cur.Status
		switch cur.Settle(o, g.clock()) {
		case lipa.DecisionApplied:
			if err := tx.UpdatePayment(ctx, cur); err != nil {
				return err
			}
			if cur.CheckoutRequestID != "" {
				// Callbacks held for confirmation: a SUCCESS one brings the
				// receipt; the others are recorded as agreeing or not.
				msgs, err := tx.CallbacksWithOutcome(ctx, cur.CheckoutRequestID, sqlstore.OutcomeUnconfirmed)
				if err != nil {
					return err
				}
				for _, m := range msgs {
					if cb, err := daraja.ParseSTKCallback(m.Body); err == nil {
						if _, err := g.applyCallbackTx(ctx, tx, cur, cb, m.ID, true); err != nil {
							return err
						}
					}
				}
			}
			// After the held callbacks, so the event carries their receipt.
			if ev := settledEvent(before, cur); ev != "" {
				if err := g.emitTx(ctx, tx, cur, ev); err != nil {
					return err
				}
			}
			g.log.Info("pending payment settled", "app", cur.AppName, "payment_id", cur.ID, "status", cur.Status,
				"failure_reason", cur.FailureReason, "resolved_by", cur.ResolvedBy)
		case lipa.DecisionDuplicate:
			outcome = sqlstore.OutcomeDuplicate
		case lipa.DecisionConflict:
			outcome, note = sqlstore.OutcomeConflict, fmt.Sprintf("%s says %s but the payment is already %s", o.Source, o.Status, cur.Status)
			g.log.Warn("reconciliation contradicts a settled payment; not applied", "payment_id", cur.ID, "status", cur.Status, "query_says", o.Status)
		}
		if raw == nil {
			return nil
		}
		m := &sqlstore.Inbound{Kind: sqlstore.InboundSTKQuery, Path: "/mpesa/stkpushquery/v1/query",
			SourceAddr: "daraja", ReceivedAt: g.clock(), Body: raw, CheckoutRequestID: cur.CheckoutRequestID,
			PaymentID: cur.ID, Outcome: outcome, Note: note}
		if err := tx.InsertInbound(ctx, m); err != nil {
			return err
		}
		if outcome != sqlstore.OutcomeConflict {
			return nil
		}
		return g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewQueryContradicts, InboundID: m.ID, PaymentID: cur.ID,
			CheckoutRequestID: cur.CheckoutRequestID, Receipt: cur.MpesaReceiptNumber, Note: note})
	})
	if err == nil && underReview {
		return errUnderReview
	}
	return err
}
