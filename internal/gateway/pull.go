package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// DefaultPullInterval is how often the Pull Transactions backfill runs
// when LIPA_PULL_INTERVAL names no other interval.
const DefaultPullInterval = 15 * time.Minute

// pullOverlap is how much further back than the last pass each pass looks:
// more than the three hours by which Daraja's dates may be off (it does not
// say whether they are Kenya time or UTC, docs/daraja.md "Pull
// Transactions"). Transactions are matched by receipt, so looking at one
// twice changes nothing.
const pullOverlap = 4 * time.Hour

// pullTimeDoubt widens the time window in which a pulled transaction is
// matched to an STK push, for the same doubt.
const pullTimeDoubt = 3*time.Hour + orphanWindow

// pullMaxPages bounds one query's paging.
const pullMaxPages = 1000

// settingPullLastEnd keeps the end of the last background pass that read
// every page.
const settingPullLastEnd = "pull_last_end"

// The review reasons of the Pull backfill (ReviewReason).
const (
	// ReviewPullAmbiguous: a transaction Pull Transactions lists that Lipa
	// has no payment for, and that could be more than one of its STK
	// pushes (same phone and amount), or contradicts one Lipa has as
	// FAILED. Nothing was changed or created; an operator settles the right
	// payment (review settle) or dismisses it.
	ReviewPullAmbiguous ReviewReason = "pull_ambiguous"
	// ReviewPullMismatch: Pull lists a receipt that Lipa has as a payment
	// of another amount.
	ReviewPullMismatch ReviewReason = "pull_mismatch"
)

// PullRegistration is Daraja's answer to RegisterPull.
type PullRegistration struct {
	AlreadyRegistered bool
	Description       string
}

// RegisterPull registers the shortcode for Pull Transactions (once per
// shortcode; a repeat is AlreadyRegistered, not an error), with
// nominatedNumber the Safaricom number on the shortcode's KYC record
// (docs/daraja.md "Pull Transactions"). Errors are darajaError's.
func (g *Gateway) RegisterPull(ctx context.Context, nominatedNumber string) (*PullRegistration, error) {
	if g.daraja == nil {
		return nil, lipa.Errorf(lipa.NotConfigured, "not_configured", "no Daraja client")
	}
	resp, err := g.daraja.RegisterPull(ctx, daraja.PullRegisterRequest{ShortCode: g.cfg.ShortCode,
		NominatedNumber: nominatedNumber, CallBackURL: g.cfg.PullCallbackURL})
	if err != nil {
		return nil, darajaError(callPullRegister, err)
	}
	g.log.Info("pull transactions registration", "shortcode", g.cfg.ShortCode, "status", resp.ResponseStatus, "description", resp.ResponseDescription)
	return &PullRegistration{AlreadyRegistered: resp.AlreadyRegistered(), Description: resp.ResponseDescription}, nil
}

// PullReport counts what one backfill did.
type PullReport struct {
	Start, End   time.Time // the window asked about (UTC)
	Pages        int       // answers read
	Transactions int       // transactions listed
	Known        int       // already recorded with their receipt
	Created      int       // C2B intake payments created (resolved_by "pull")
	Settled      int       // PENDING STK pushes settled SUCCESS
	Receipts     int       // SUCCESS payments (settled by an STK query) that got their receipt
	Review       int       // put in the review queue: ambiguous or contradicting
	Skipped      int       // listed without a usable receipt or amount
}

// PullPass is the background backfill: one Pull Transactions query over
// the window from (the end of the last complete pass, or now less
// PullInterval) less four hours, at most 48 hours back, to now; see
// PullWindow for what it does with each transaction. Safe on several
// replicas at once.
func (g *Gateway) PullPass(ctx context.Context) (PullReport, error) {
	now := g.clock()
	from := now.Add(-max(g.cfg.PullInterval, time.Minute))
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		v, err := tx.Setting(ctx, settingPullLastEnd)
		if err != nil || v == "" {
			return err
		}
		if last, perr := time.Parse(time.RFC3339Nano, v); perr == nil && last.Before(from) {
			from = last
		}
		return nil
	})
	if err != nil {
		return PullReport{}, err
	}
	rep, err := g.PullWindow(ctx, from.Add(-pullOverlap), now)
	if err != nil {
		return rep, err
	}
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		return tx.PutSetting(ctx, settingPullLastEnd, now.Format(time.RFC3339Nano))
	})
	return rep, err
}

// PullWindow asks Pull Transactions for the shortcode's transactions from
// start to end (start is moved up to 48 hours ago at most), page by page,
// stores each answer raw, and for every transaction Lipa does not have, or
// has without its receipt (each under a lock of its receipt, so that
// replicas and overlapping windows handle it once):
//
//   - the one STK push to the same phone for the same amount around that
//     time, PENDING (its callback lost, or Daraja's answer to the push
//     lost) or SUCCESS without a receipt (settled by an STK push query),
//     takes the receipt: a PENDING one becomes SUCCESS, resolved_by
//     "pull", with payment.succeeded;
//   - several such pushes, or one Lipa has as FAILED: the review queue
//     (ReviewPullAmbiguous), nothing changed;
//   - none: a SUCCESS C2B intake payment is created as its confirmation
//     would have made it (resolved_by "pull", c2b.received).
//
// A receipt Lipa has for another amount goes to the review queue
// (ReviewPullMismatch). Whether Daraja lists M-Pesa Express payments in
// Pull at all is not documented (docs/daraja.md "Do M-Pesa Express
// payments appear in Pull?"): STK pushes it does not list stay as they are
// (and, past their expiry, in the review queue). Errors are darajaError's,
// or the database's; what was done before an error stays done.
func (g *Gateway) PullWindow(ctx context.Context, start, end time.Time) (PullReport, error) {
	if g.daraja == nil {
		return PullReport{}, lipa.Errorf(lipa.NotConfigured, "not_configured", "no Daraja client")
	}
	now := g.clock()
	if oldest := now.Add(-daraja.PullWindow).Add(time.Minute); start.Before(oldest) {
		start = oldest
	}
	if end.After(now) {
		end = now
	}
	rep := PullReport{Start: start.UTC(), End: end.UTC()}
	if !end.After(start) {
		return rep, lipa.InvalidField("invalid_window", "since", "the window from %s to %s is empty", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	offset := 0
	for page := 0; page < pullMaxPages; page++ {
		resp, err := g.daraja.PullTransactions(ctx, daraja.PullQueryRequest{ShortCode: g.cfg.ShortCode, Start: start, End: end, Offset: offset})
		if err != nil {
			return rep, darajaError(callPull, err)
		}
		rep.Pages++
		if len(resp.Transactions) == 0 {
			break
		}
		var pageID int64
		err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
			m := &sqlstore.Inbound{Kind: sqlstore.InboundPullPage, Path: "/pulltransactions/v1/query", SourceAddr: "daraja",
				ReceivedAt: g.clock(), Body: resp.Raw, Outcome: sqlstore.OutcomeApplied,
				Note: fmt.Sprintf("%d transactions from %s to %s, offset %d", len(resp.Transactions), start.Format(time.RFC3339), end.Format(time.RFC3339), offset)}
			if err := tx.InsertInbound(ctx, m); err != nil {
				return err
			}
			pageID = m.ID
			return nil
		})
		if err != nil {
			return rep, err
		}
		for _, t := range resp.Transactions {
			rep.Transactions++
			if err := g.pullOne(ctx, pageID, t, &rep); err != nil {
				return rep, err
			}
		}
		offset += len(resp.Transactions)
	}
	if rep.Created+rep.Settled+rep.Receipts+rep.Review > 0 {
		g.log.Info("pull transactions backfill", "start", rep.Start.Format(time.RFC3339), "end", rep.End.Format(time.RFC3339),
			"transactions", rep.Transactions, "known", rep.Known, "created", rep.Created, "settled", rep.Settled,
			"receipts", rep.Receipts, "review", rep.Review)
	}
	return rep, nil
}

// pullOne handles one transaction of a Pull answer (stored as message
// pageID); see PullWindow.
func (g *Gateway) pullOne(ctx context.Context, pageID int64, t daraja.PullTransaction, rep *PullReport) error {
	receipt := strings.TrimSpace(t.TransactionID)
	if !daraja.ValidReceipt(receipt) || t.Amount <= 0 {
		rep.Skipped++
		g.log.Warn("pulled transaction skipped: no usable receipt or amount", "transaction_id", reviewText(cut(receipt, 40)), "amount", t.AmountText)
		return nil
	}
	phone := ""
	if ph, err := lipa.ParsePhone(t.MSISDN); err == nil {
		phone = string(ph)
	}
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, "receipt:"+receipt); err != nil {
			return err
		}
		review := func(reason ReviewReason, paymentID lipa.PaymentID, note string) error {
			open, err := tx.OpenReviewForReceipt(ctx, string(reason), receipt)
			if err != nil || open {
				return err
			}
			rep.Review++
			return g.openReviewTx(ctx, tx, reviewCause{Reason: reason, InboundID: pageID, PaymentID: paymentID, Receipt: receipt, Note: note})
		}
		if p, err := tx.PaymentByReceipt(ctx, receipt); err == nil {
			if p.Amount != t.Amount {
				return review(ReviewPullMismatch, p.ID, fmt.Sprintf("Pull Transactions lists %s for %s shillings; Lipa has it as payment %s for %s",
					receipt, t.Amount, p.ID, p.Amount))
			}
			rep.Known++
			return nil
		} else if lipa.ErrorKind(err) != lipa.NotFound {
			return err
		}
		var cands []lipa.Payment
		if phone != "" {
			from, to := g.clock().Add(-daraja.PullWindow-pullTimeDoubt), g.clock()
			if !t.Time.IsZero() {
				from, to = t.Time.Add(-pullTimeDoubt), t.Time.Add(pullTimeDoubt)
			}
			var err error
			if cands, err = tx.PullCandidates(ctx, phone, t.Amount, from, to, 3); err != nil {
				return err
			}
		}
		switch {
		case len(cands) == 0:
			n := &daraja.C2BNotification{TransID: receipt, TransAmount: t.Amount.String(), MSISDN: t.MSISDN,
				BillRefNumber: reviewText(t.BillReference), BusinessShortCode: g.cfg.ShortCode, TransactionType: pullTransactionType(t.TransactionType)}
			p := g.newC2BPayment(n, t.Amount, lipa.ResolvedByPull, "Pull Transactions")
			p.PhoneNumber = reviewText(t.MSISDN)
			if !t.Time.IsZero() {
				p.TransactionDate = t.Time
			}
			if err := tx.InsertPayment(ctx, p); err != nil {
				return err
			}
			rep.Created++
			g.log.Info("c2b payment recorded in the intake pool from Pull Transactions", "payment_id", p.ID, "trans_id", receipt,
				"amount", p.Amount.String(), "bill_ref", p.Reference)
			return g.emitTx(ctx, tx, p, EventC2BReceived)
		case len(cands) > 1 || cands[0].Status == lipa.StatusFailed:
			ids := make([]string, len(cands))
			for i, c := range cands {
				ids[i] = fmt.Sprintf("%s (%s)", c.ID, c.Status)
			}
			return review(ReviewPullAmbiguous, cands[0].ID, fmt.Sprintf("Pull Transactions lists %s, %s shillings from %s, which Lipa has no payment for; it may be %s: settle the right one with this receipt, or dismiss",
				receipt, t.Amount, lipa.MaskPhone(phone), strings.Join(ids, ", ")))
		}
		return g.pullSettleTx(ctx, tx, pageID, cands[0].ID, receipt, t, rep)
	})
}

// pullSettleTx gives STK payment id the receipt of pulled transaction t:
// a PENDING one becomes SUCCESS (resolved_by "pull"), one settled by an
// STK push query takes the receipt. Its orphan_push items close.
func (g *Gateway) pullSettleTx(ctx context.Context, tx *sqlstore.Tx, pageID int64, id lipa.PaymentID, receipt string, t daraja.PullTransaction, rep *PullReport) error {
	first, err := tx.PaymentByID(ctx, id)
	if err != nil {
		return err
	}
	if first.CheckoutRequestID != "" {
		// In the callback's lock order: its CheckoutRequestID, then its row.
		if err := tx.Lock(ctx, first.CheckoutRequestID); err != nil {
			return err
		}
	}
	p, err := tx.PaymentForUpdate(ctx, id)
	if err != nil {
		return err
	}
	before := *p
	o := lipa.Outcome{Status: lipa.StatusSuccess, ResultCode: "0", ResultDesc: "Pull Transactions", Receipt: receipt,
		Amount: t.Amount, TransactionDate: t.Time, Source: lipa.ResolvedByPull}
	if p.Settle(o, g.clock()) != lipa.DecisionApplied {
		rep.Known++
		return nil
	}
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return err
	}
	if before.Status == lipa.StatusPending {
		rep.Settled++
		g.log.Warn("pending STK push settled from Pull Transactions (same phone and amount)", "payment_id", p.ID, "receipt", receipt,
			"checkout_request_id", p.CheckoutRequestID, "app", p.AppName)
	} else {
		rep.Receipts++
		g.log.Info("payment settled by STK push query got its receipt from Pull Transactions", "payment_id", p.ID, "receipt", receipt)
	}
	if ev := settledEvent(before.Status, p); ev != "" {
		if err := g.emitTx(ctx, tx, p, ev); err != nil {
			return err
		}
	}
	items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, PaymentID: p.ID, Reason: string(ReviewOrphanPush), Limit: 10})
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, err := tx.ResolveReviewItem(ctx, it.ID, sqlstore.Resolution{Resolution: string(ResolutionApplied),
			Reason: "settled from Pull Transactions with receipt " + receipt, ByKind: string(ActorLipa.Kind), By: ActorLipa.Name,
			At: g.clock(), ResultPaymentID: p.ID}); err != nil {
			return err
		}
	}
	return nil
}

// pullTransactionType turns Pull's transactiontype into the C2B
// confirmation's TransactionType ("c2b-pay-bill-debit" is "Pay Bill",
// "c2b-buy-goods-debit" "Buy Goods"); others are kept as sent.
func pullTransactionType(s string) string {
	switch l := strings.ToLower(s); {
	case strings.Contains(l, "pay-bill") || strings.Contains(l, "paybill"):
		return "Pay Bill"
	case strings.Contains(l, "buy-goods") || strings.Contains(l, "buygoods"):
		return "Buy Goods"
	}
	return reviewText(s)
}

// PullLoop runs PullPass every PullInterval until ctx ends (at once when
// PullInterval is 0: the backfill is off). A failed pass is logged and
// tried again at the next tick.
func (g *Gateway) PullLoop(ctx context.Context) {
	if g.cfg.PullInterval <= 0 || g.daraja == nil {
		return
	}
	t := time.NewTicker(g.cfg.PullInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.PullPass(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("pull transactions pass failed", "err", err)
			}
		}
	}
}
