package gateway

import (
	"context"
	"fmt"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// confirmLater confirms an unconfirmed SUCCESS callback in the background
// (confirm-by-query mode); see confirmCallback.
func (g *Gateway) confirmLater(inboundID int64) {
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		if err := g.confirmCallback(context.Background(), inboundID); err != nil {
			g.log.Warn("callback confirmation deferred to the reconciler", "inbound_id", inboundID, "err", err)
		}
	}()
}

// confirmCallback asks Daraja (STK push query) what became of the payment
// of a stored, unconfirmed callback. "0" applies the SUCCESS callbacks held
// for it (with their receipt); another final ResultCode settles the payment
// FAILED from the query; either way the held callbacks are then recorded as
// agreeing (duplicate) or not (conflict). No answer leaves them for the
// reconciler, whose own query does the same.
func (g *Gateway) confirmCallback(ctx context.Context, inboundID int64) error {
	var m *sqlstore.Inbound
	var p *lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		if m, err = tx.InboundByID(ctx, inboundID); err != nil {
			return err
		}
		p, err = tx.PaymentByCheckoutRequestID(ctx, m.CheckoutRequestID)
		return err
	})
	if err != nil {
		return err
	}
	if g.daraja == nil {
		return fmt.Errorf("no Daraja client")
	}
	q, err := g.daraja.STKQuery(ctx, g.cfg.ShortCode, g.cfg.Passkey, m.CheckoutRequestID)
	switch {
	case err != nil:
		return err
	case q.Pending():
		return fmt.Errorf("query says still processing")
	case q.ResultCode == "0":
		return g.applyUnconfirmed(ctx, m.CheckoutRequestID)
	}
	return g.settle(ctx, p, lipa.Outcome{Status: lipa.StatusFailed, ResultCode: q.ResultCode, ResultDesc: q.ResultDesc,
		FailureReason: lipa.ReasonForResultCode(q.ResultCode), Source: lipa.ResolvedByQuery}, q.Raw)
}

// applyUnconfirmed applies the unconfirmed SUCCESS callbacks stored for a
// CheckoutRequestID, now that an STK push query has confirmed the payment.
func (g *Gateway) applyUnconfirmed(ctx context.Context, checkoutRequestID string) error {
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, checkoutRequestID); err != nil {
			return err
		}
		msgs, err := tx.CallbacksWithOutcome(ctx, checkoutRequestID, sqlstore.OutcomeUnconfirmed)
		if err != nil || len(msgs) == 0 {
			return err
		}
		p, err := tx.PaymentByCheckoutRequestID(ctx, checkoutRequestID)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			cb, err := daraja.ParseSTKCallback(m.Body)
			if err != nil {
				continue
			}
			if _, err := g.applyCallbackTx(ctx, tx, p, cb, m.ID, true); err != nil {
				return err
			}
		}
		return nil
	})
}
