package gateway

import (
	"context"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// UnmatchedCallbacks lists the newest STK callbacks (at most limit) that
// found no payment: their CheckoutRequestID was never saved (the push's
// answer was lost) or was never Lipa's. Operators review them and apply one
// with MatchCallback.
func (g *Gateway) UnmatchedCallbacks(ctx context.Context, limit int) ([]sqlstore.Inbound, error) {
	var out []sqlstore.Inbound
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		out, err = tx.InboundMessages(ctx, sqlstore.InboundSTKCallback, sqlstore.OutcomeUnmatched, limit)
		return err
	})
	return out, err
}

// MatchCallback applies a stored unmatched STK callback to a PENDING STK
// payment that has no CheckoutRequestID yet (Daraja's answer to its push was
// lost): the payment takes the callback's CheckoutRequestID, then the
// callback is applied as if it had just arrived, with every usual check
// (amount, final states). Errors: NotFound for either ID; Conflict
// "not_unmatched" when the message is not an unmatched callback,
// "payment_not_pending" when the payment is settled or has another
// CheckoutRequestID.
func (g *Gateway) MatchCallback(ctx context.Context, inboundID int64, paymentID lipa.PaymentID) (*lipa.Payment, error) {
	var p *lipa.Payment
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		m, err := tx.InboundByID(ctx, inboundID)
		if err != nil {
			return err
		}
		if m.Kind != sqlstore.InboundSTKCallback || m.Outcome != sqlstore.OutcomeUnmatched {
			return lipa.Errorf(lipa.Conflict, "not_unmatched", "message %d is not an unmatched STK callback (it is a %s, %s)", m.ID, m.Kind, m.Outcome)
		}
		cb, err := daraja.ParseSTKCallback(m.Body)
		if err != nil {
			return lipa.Errorf(lipa.Conflict, "not_unmatched", "message %d cannot be read as an STK callback: %v", m.ID, err)
		}
		if err := tx.Lock(ctx, cb.CheckoutRequestID); err != nil {
			return err
		}
		p, err = tx.PaymentForUpdate(ctx, paymentID)
		if err != nil {
			return err
		}
		if p.Type != lipa.TypeSTK || p.Status != lipa.StatusPending || (p.CheckoutRequestID != "" && p.CheckoutRequestID != cb.CheckoutRequestID) {
			return lipa.Errorf(lipa.Conflict, "payment_not_pending", "payment %s is %s %s with CheckoutRequestID %q; only a PENDING STK payment without one can take this callback",
				p.ID, p.Type, p.Status, p.CheckoutRequestID)
		}
		p.CheckoutRequestID = cb.CheckoutRequestID
		if p.MerchantRequestID == "" {
			p.MerchantRequestID = cb.MerchantRequestID
		}
		p.UpdatedAt = g.clock()
		if err := tx.UpdatePayment(ctx, p); err != nil {
			return err
		}
		_, err = g.applyCallbackTx(ctx, tx, p, cb, m.ID, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	g.log.InfoContext(ctx, "unmatched callback matched by an operator", "inbound_id", inboundID, "payment_id", p.ID, "status", p.Status)
	return p, nil
}
