package gateway

// This file is the outbox: the events a change writes in its own
// transaction, for the feed and for webhook delivery.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// The event types Lipa sends apps (webhook.Type… for receivers).
const (
	EventPaymentSucceeded = "payment.succeeded" // an app's payment became SUCCESS
	EventPaymentFailed    = "payment.failed"    // an app's payment became FAILED
	EventPaymentClaimed   = "payment.claimed"   // the app claimed a payment
	EventC2BReceived      = "c2b.received"      // a C2B payment entered the intake pool (sent to every enabled app)
)

// eventBody is the JSON an event carries: its id, type, time and the
// payment as GET /api/payments/{id}/ shows it.
type eventBody struct {
	ID        string           `json:"id"`
	Type      string           `json:"type"`
	CreatedAt string           `json:"created_at"`
	Payment   lipa.PaymentView `json:"payment"`
}

// emitTx records an event about p in the caller's transaction (the outbox:
// the event commits or rolls back with the change that caused it), and
// queues its webhook delivery when the app has a webhook URL. An intake
// payment's c2b.received goes to every enabled app. Once the transaction
// commits, this process's delivery worker is woken (other replicas find the
// delivery on their next poll) and the change is counted in the metrics.
func (g *Gateway) emitTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment, typ string) error {
	recipients, err := tx.EventRecipients(ctx, p.AppID)
	if err != nil {
		return err
	}
	switch typ {
	case EventPaymentSucceeded, EventPaymentFailed, EventC2BReceived:
		pt, st, reason := string(p.Type), string(p.Status), string(p.FailureReason)
		tx.AfterCommit(func() { g.metrics.PaymentSettled(pt, st, reason) })
	case EventPaymentClaimed:
		tx.AfterCommit(g.metrics.PaymentClaimed)
	}
	now := g.clock()
	wake := false
	for _, r := range recipients {
		if r.HasWebhook && !wake {
			wake = true
			tx.AfterCommit(g.wakeDeliveries)
		}
		e := &sqlstore.Event{ID: newID("evt_"), AppID: r.App, Type: typ, PaymentID: p.ID, CreatedAt: now}
		payload, err := json.Marshal(eventBody{ID: e.ID, Type: typ, CreatedAt: now.Format(time.RFC3339Nano), Payment: lipa.ViewOf(p)})
		if err != nil {
			return err
		}
		e.Payload = payload
		if err := tx.InsertEvent(ctx, e, r.HasWebhook); err != nil {
			return err
		}
	}
	return nil
}

// settledEvent returns the event type for a payment that just became
// final, or "" when its status did not change.
func settledEvent(before lipa.Status, p *lipa.Payment) string {
	switch {
	case before == p.Status:
		return ""
	case p.Status == lipa.StatusSuccess:
		return EventPaymentSucceeded
	case p.Status == lipa.StatusFailed:
		return EventPaymentFailed
	}
	return ""
}
