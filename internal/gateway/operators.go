package gateway

import (
	"context"
	"strconv"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// UnmatchedCallbacks lists the newest STK callbacks (at most limit) that
// found no payment: their CheckoutRequestID was never saved (the push's
// answer was lost) or was never Lipa's. Operators review them and apply one
// with MatchCallback; each is also an unmatched_callback review item.
func (g *Gateway) UnmatchedCallbacks(ctx context.Context, limit int) ([]StoredPayload, error) {
	var out []StoredPayload
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		rows, err := tx.InboundMessages(ctx, sqlstore.InboundSTKCallback, sqlstore.OutcomeUnmatched, limit)
		for i := range rows {
			out = append(out, *storedPayloadOf(&rows[i]))
		}
		return err
	})
	return out, err
}

// MatchCallback applies a stored unmatched STK callback (by its inbound
// message ID, as UnmatchedCallbacks lists it) to a PENDING STK payment that
// has no CheckoutRequestID yet (Daraja's answer to its push was lost): the
// payment takes the callback's CheckoutRequestID, then the callback is
// applied as if it had just arrived, with every usual check (amount, phone,
// receipt, final states); nothing changes unless it applies. It is the
// review queue's match (ResolveMatch) seen from the callback: the
// callback's review item closes, and the action is audited with reason
// (default "matched with lipa callbacks match"). Errors: NotFound for
// either ID; Conflict "not_unmatched" when the message is not an unmatched
// callback, "payment_not_pending" when the payment is settled or has
// another CheckoutRequestID, "callback_not_applicable" when a usual check
// refuses it; Invalid "invalid_actor".
func (g *Gateway) MatchCallback(ctx context.Context, actor Actor, inboundID int64, paymentID lipa.PaymentID, reason string) (*lipa.Payment, error) {
	if strings.TrimSpace(reason) == "" {
		reason = "matched with lipa callbacks match"
	}
	var items []sqlstore.ReviewItem
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		items, err = tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, InboundID: inboundID,
			Reason: string(ReviewUnmatchedCallback), Limit: 1})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 1 {
		res, err := g.ResolveMatch(ctx, actor, items[0].ID, paymentID, reason)
		if err != nil {
			return nil, err
		}
		return res.Payment, nil
	}
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if reason, err = checkReason(reason); err != nil {
		return nil, err
	}
	var p *lipa.Payment
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		m, err := tx.InboundByID(ctx, inboundID)
		if err != nil {
			return err
		}
		before, after, err := g.matchTx(ctx, tx, m, paymentID)
		if err != nil {
			return err
		}
		p = after
		return g.recordAuditTx(ctx, tx, actor, AuditCallbackMatch, "inbound:"+strconv.FormatInt(inboundID, 10), reason,
			map[string]any{"payment": lipa.ViewOf(before)}, map[string]any{"payment": lipa.ViewOf(after)})
	})
	if err != nil {
		return nil, err
	}
	g.log.InfoContext(ctx, "unmatched callback matched by an operator", "inbound_id", inboundID, "payment_id", p.ID, "status", p.Status, "actor", actor.String())
	return p, nil
}
