package gateway

import (
	"context"
	"fmt"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// confirmLater confirms an unconfirmed SUCCESS callback in the background
// (confirm-by-query mode), on a goroutine Run owns; see confirmCallback.
func (g *Gateway) confirmLater(inboundID int64) {
	g.spawn(func(ctx context.Context) {
		if err := g.confirmCallback(ctx, inboundID); err != nil {
			g.log.Warn("callback confirmation deferred to the reconciler", "inbound_id", inboundID, "err", err)
		}
	})
}

// confirmCallback asks Daraja (STK push query) what became of the payment
// of a stored, unconfirmed callback, and settles the payment from the
// query's verdict (see settle): the held callbacks are then applied as far
// as they agree with it (a SUCCESS one brings its receipt) and flagged
// where they do not. No answer leaves them for the
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
		// The query's verdict first; then the held callbacks: a SUCCESS one
		// brings its receipt, a (forged) failure is flagged.
		if err := g.settle(ctx, p, lipa.Outcome{Status: lipa.StatusSuccess, ResultCode: "0", ResultDesc: q.ResultDesc,
			Source: lipa.ResolvedByQuery}, q.Raw); err != nil {
			return err
		}
		// The query confirms the status, not the receipt the callback
		// brought: Transaction Status checks that (status.go).
		g.confirmReceiptLater(p.ID)
		return nil
	}
	return g.settle(ctx, p, lipa.Outcome{Status: lipa.StatusFailed, ResultCode: q.ResultCode, ResultDesc: q.ResultDesc,
		FailureReason: lipa.ReasonForResultCode(q.ResultCode), Source: lipa.ResolvedByQuery}, q.Raw)
}
