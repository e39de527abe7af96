package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// Why Lipa asked Transaction Status (sqlstore.StatusQuery.Purpose).
const (
	statusForRefund   = "refund"          // a refund without its Result, by the reversal's OriginatorConversationID
	statusForReceipt  = "confirm_receipt" // a C2B confirmation held until M-Pesa confirms its receipt (LIPA_CONFIRM_BY_QUERY)
	statusForOperator = "operator"        // `lipa transactions status`, the admin API
	statusForApp      = "app_lookup"      // an app's verify of a receipt Lipa has never seen (lookup=daraja)
)

// The kinds of Daraja result the API layer passes on (ReceiveResult).
const (
	KindReversalResult  = sqlstore.InboundReversalResult
	KindReversalTimeout = sqlstore.InboundReversalTimeout
	KindStatusResult    = sqlstore.InboundStatusResult
	KindStatusTimeout   = sqlstore.InboundStatusTimeout
	KindPullCallback    = sqlstore.InboundPullCallback
)

// The review reasons of Transaction Status and lookups (ReviewReason).
const (
	// ReviewUnmatchedResult: a Reversal or Transaction Status Result (or
	// queue timeout notice) whose ConversationID no refund or query of
	// Lipa's has. Resolved by Lipa itself when the request's
	// acknowledgement is saved later; otherwise dismissed by an operator.
	ReviewUnmatchedResult ReviewReason = "unmatched_result"
	// ReviewReceiptNotConfirmed: with LIPA_CONFIRM_BY_QUERY, a receipt
	// Transaction Status did not confirm (unknown, another amount, no
	// answer). For a held C2B confirmation no payment was made: an
	// operator may create it (review create-payment) or dismiss it. For an
	// STK callback's receipt the payment (SUCCESS by the STK push query)
	// is unchanged: an operator checks the statement.
	ReviewReceiptNotConfirmed ReviewReason = "receipt_not_confirmed"
	// ReviewDarajaLookup: an app asked about a receipt Lipa has no payment
	// for, and M-Pesa knows it. Nothing was created: an operator finds out
	// why Lipa missed it (lipa pull run) or dismisses it.
	ReviewDarajaLookup ReviewReason = "daraja_lookup"
)

// DefaultDarajaLookupsPerHour is each app's default budget of
// lookup=daraja verifications an hour.
const DefaultDarajaLookupsPerHour = 30

// lookupReuse is how long a lookup's answer (or its pending question) is
// used again instead of asking M-Pesa once more.
const lookupReuse = 10 * time.Minute

// askStatus stores q (purpose, what it asks about) and asks Daraja's
// Transaction Status (docs/daraja.md "Transaction Status"); on Daraja's
// acknowledgement it records the request's IDs, by which the answer is
// matched when it comes to the result URL. It returns the stored query.
// Errors are darajaError's (the query is stored as failed).
func (g *Gateway) askStatus(ctx context.Context, q *sqlstore.StatusQuery) (*sqlstore.StatusQuery, error) {
	if !g.canInitiate() {
		return nil, darajaError(callStatus, daraja.ErrNoInitiator)
	}
	q.ID, q.State, q.CreatedAt = newID("tsq_"), sqlstore.StatusSending, g.clock()
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertStatusQuery(ctx, q) }); err != nil {
		return nil, err
	}
	remarks := "Lipa check of " + q.Receipt
	switch q.Purpose {
	case statusForRefund:
		remarks = "Lipa check of refund " + string(q.RefundID)
	case statusForReceipt:
		remarks = "Lipa confirmation of " + q.Receipt
	}
	ack, callErr := g.daraja.TransactionStatus(ctx, daraja.TransactionStatusRequest{
		TransactionID: q.Receipt, OriginalConversationID: q.OriginalConversationID,
		PartyA: g.cfg.ShortCode, IdentifierType: daraja.IdentifierShortCode,
		ResultURL: g.cfg.StatusResultURL, QueueTimeOutURL: g.cfg.StatusTimeoutURL,
		Remarks: cut(remarks, 100), Occasion: q.ID,
	})
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if callErr != nil {
			q.State, q.ResultDesc, q.AnsweredAt = sqlstore.StatusFailed, truncateText(callErr.Error(), 300), g.clock()
			return tx.UpdateStatusQuery(ctx, q)
		}
		if err := lockConversationTx(ctx, tx, ack.ConversationID, ack.OriginatorConversationID); err != nil {
			return err
		}
		q.State, q.OriginatorConversationID, q.ConversationID = sqlstore.StatusSent, ack.OriginatorConversationID, ack.ConversationID
		if err := tx.UpdateStatusQuery(ctx, q); err != nil {
			return err
		}
		return g.applyEarlyResultsTx(ctx, tx, []sqlstore.InboundKind{sqlstore.InboundStatusResult, sqlstore.InboundStatusTimeout},
			ack.ConversationID, ack.OriginatorConversationID)
	})
	if callErr != nil {
		var apiErr *daraja.APIError
		if errors.As(callErr, &apiErr) && apiErr.Class() == daraja.ClassConfiguration {
			g.log.Error("Daraja refused a Transaction Status query for Lipa's configuration; check the initiator settings and the result URLs", "err", callErr)
		}
		return q, darajaError(callStatus, callErr)
	}
	if err != nil {
		return nil, err
	}
	g.log.Info("transaction status asked", "status_query_id", q.ID, "purpose", q.Purpose, "receipt", q.Receipt,
		"original_conversation_id", q.OriginalConversationID, "conversation_id", q.ConversationID)
	return q, nil
}

// ReceiveResult stores a Daraja result raw (kind says which URL it came
// to: a Reversal's or a Transaction Status query's Result or queue timeout
// notice, or the Pull registration's callback) and then, in the same
// transaction, applies it exactly once to the refund or status query whose
// ConversationID or OriginatorConversationID it carries. A repeat changes
// nothing; a result for no known request is stored as unmatched and put in
// the review queue (and applied by Lipa when the request's
// acknowledgement is saved after it); one contradicting a settled refund
// is flagged.
//
// It returns nil whenever the result is stored. A body that is not a
// Result is stored too, put in the review queue, and returns Invalid
// "malformed_result".
func (g *Gateway) ReceiveResult(ctx context.Context, kind InboundKind, in Inbound) error {
	ctx = context.WithoutCancel(ctx)
	msg := &sqlstore.Inbound{Kind: kind, Path: in.Path, SourceAddr: in.SourceAddr, ReceivedAt: g.clock(), Body: in.Body,
		Outcome: sqlstore.OutcomeReceived}
	if kind == sqlstore.InboundPullCallback {
		msg.Note = "Pull Transactions registration notice; stored only"
		return g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) })
	}
	res, perr := daraja.ParseResult(in.Body)
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
		g.log.Warn("malformed result stored", "kind", kind, "inbound_id", msg.ID, "err", perr)
		return lipa.Errorf(lipa.Invalid, "malformed_result", "the body is not a Daraja Result: %v", perr)
	}
	msg.TransID = reviewText(res.TransactionID)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := lockConversationTx(ctx, tx, res.ConversationID, res.OriginatorConversationID); err != nil {
			return err
		}
		if err := tx.InsertInbound(ctx, msg); err != nil {
			return err
		}
		matched, err := g.applyResultTx(ctx, tx, msg, res)
		if err != nil || matched {
			return err
		}
		g.log.Warn("result for an unknown conversation stored as unmatched", "kind", kind, "conversation_id", res.ConversationID,
			"originator_conversation_id", res.OriginatorConversationID, "inbound_id", msg.ID)
		return g.flagTx(ctx, tx, sqlstore.OutcomeUnmatched, reviewCause{Reason: ReviewUnmatchedResult, InboundID: msg.ID,
			Receipt: res.TransactionID, Note: fmt.Sprintf("no refund or status query of Lipa's has ConversationID %q or OriginatorConversationID %q",
				reviewText(cut(res.ConversationID, 60)), reviewText(cut(res.OriginatorConversationID, 60)))})
	})
	if err != nil {
		g.log.Error("result not applied", "kind", kind, "conversation_id", res.ConversationID, "err", err)
		msg.Note = "not applied: " + err.Error()
		if serr := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); serr != nil {
			g.log.Error("result lost: could not store it", "kind", kind, "conversation_id", res.ConversationID, "err", serr)
		}
		return err
	}
	return nil
}

// lockConversationTx serialises, on a request's Daraja IDs, the saving of
// its acknowledgement and the arrival of its Result, so that a Result that
// comes while the acknowledgement is being saved is either matched at once
// or found as an early Result when the acknowledgement is saved. The
// ConversationID is locked first, then the OriginatorConversationID.
func lockConversationTx(ctx context.Context, tx *sqlstore.Tx, conversationID, originatorID string) error {
	for _, id := range []string{conversationID, originatorID} {
		if id != "" {
			if err := tx.Lock(ctx, "conversation:"+id); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyResultTx applies stored result m (parsed as res) to the refund or
// status query it names, and reports whether it found one.
func (g *Gateway) applyResultTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, res *daraja.Result) (bool, error) {
	switch m.Kind {
	case sqlstore.InboundReversalResult, sqlstore.InboundReversalTimeout:
		found, err := tx.RefundByConversation(ctx, res.ConversationID, res.OriginatorConversationID)
		if lipa.ErrorKind(err) == lipa.NotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		r, err := tx.RefundForUpdate(ctx, found.ID)
		if err != nil {
			return false, err
		}
		if m.Kind == sqlstore.InboundReversalResult {
			return true, g.applyReversalResultTx(ctx, tx, m, res, r)
		}
		// The request expired in M-Pesa's queue: ask Transaction Status
		// at the next pass what became of it.
		if r.Status != lipa.RefundPending {
			return true, tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeDuplicate, r.PaymentID, "refund "+string(r.ID))
		}
		w, err := tx.RefundWorkOf(ctx, r.ID)
		if err != nil {
			return false, err
		}
		w.NextCheckAt = g.clock()
		if err := tx.ScheduleRefund(ctx, r.ID, w); err != nil {
			return false, err
		}
		g.log.Warn("reversal expired in M-Pesa's queue; asking Transaction Status", "refund_id", r.ID)
		return true, tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, r.PaymentID,
			"refund "+string(r.ID)+": queue timeout; Transaction Status will tell")
	case sqlstore.InboundStatusResult, sqlstore.InboundStatusTimeout:
		q, err := tx.StatusQueryByConversation(ctx, res.ConversationID, res.OriginatorConversationID)
		if lipa.ErrorKind(err) == lipa.NotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, g.applyStatusAnswerTx(ctx, tx, m, res, q)
	}
	return false, nil
}

// applyEarlyResultsTx applies the stored unmatched results of the given
// kinds that carry conversationID or originatorID: Results that came
// before the acknowledgement of their request was saved. Their review
// items close as applied by Lipa.
func (g *Gateway) applyEarlyResultsTx(ctx context.Context, tx *sqlstore.Tx, kinds []sqlstore.InboundKind, conversationID, originatorID string) error {
	early, err := tx.RecentInbound(ctx, kinds, sqlstore.OutcomeUnmatched, g.clock().Add(-time.Hour), 100)
	if err != nil {
		return err
	}
	for i := range early {
		m := &early[i]
		res, err := daraja.ParseResult(m.Body)
		if err != nil || !((conversationID != "" && res.ConversationID == conversationID) ||
			(originatorID != "" && res.OriginatorConversationID == originatorID)) {
			continue
		}
		if _, err := g.applyResultTx(ctx, tx, m, res); err != nil {
			return err
		}
		items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, InboundID: m.ID,
			Reason: string(ReviewUnmatchedResult), Limit: 10})
		if err != nil {
			return err
		}
		for _, it := range items {
			if _, err := tx.ResolveReviewItem(ctx, it.ID, sqlstore.Resolution{Resolution: string(ResolutionApplied),
				Reason: "applied when the request's acknowledgement was saved", ByKind: string(ActorLipa.Kind), By: ActorLipa.Name,
				At: g.clock()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyStatusAnswerTx records a Transaction Status answer (or queue timeout
// notice) m for query q, once, and acts on it for the query's purpose: a
// refund is settled (SUCCESS with the reversal's receipt when M-Pesa has
// the reversal Completed, FAILED "reversal_not_found" when it has none), a
// held C2B confirmation becomes a payment or a review item, an app's
// lookup of a receipt M-Pesa knows becomes a review item.
func (g *Gateway) applyStatusAnswerTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, res *daraja.Result, q *sqlstore.StatusQuery) error {
	if q.State == sqlstore.StatusAnswered {
		return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeDuplicate, q.PaymentID, "status query "+q.ID)
	}
	now := g.clock()
	q.ResultCode, q.ResultDesc, q.ResultInboundID, q.AnsweredAt = res.ResultCode, res.ResultDesc, m.ID, now
	if m.Kind == sqlstore.InboundStatusTimeout {
		q.State, q.ResultDesc = sqlstore.StatusFailed, "expired in M-Pesa's queue: "+res.ResultDesc
		if err := tx.UpdateStatusQuery(ctx, q); err != nil {
			return err
		}
		if q.Purpose == statusForReceipt && q.InboundID != 0 {
			return g.heldNotConfirmedTx(ctx, tx, q, "Transaction Status expired in M-Pesa's queue")
		}
		return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, q.PaymentID, "status query "+q.ID+": queue timeout")
	}
	q.State = sqlstore.StatusAnswered
	if err := tx.UpdateStatusQuery(ctx, q); err != nil {
		return err
	}
	g.log.Info("transaction status answered", "status_query_id", q.ID, "purpose", q.Purpose, "result_code", res.ResultCode)
	note := "status query " + q.ID
	d := res.Status()
	switch q.Purpose {
	case statusForRefund:
		r, err := tx.RefundForUpdate(ctx, q.RefundID)
		if err != nil {
			return err
		}
		switch {
		case r.Status != lipa.RefundPending:
		case res.Reason() == daraja.ResultSucceeded && (d.TransactionStatus == "" || strings.EqualFold(d.TransactionStatus, "Completed")):
			o := lipa.RefundOutcome{Status: lipa.RefundSucceeded, ResultCode: "0", Source: lipa.RefundByStatus,
				ResultDesc: "Transaction Status: " + firstNonEmpty(d.TransactionStatus, res.ResultDesc)}
			if daraja.ValidReceipt(d.ReceiptNo) {
				o.ReversalReceipt = d.ReceiptNo
			}
			return g.settleRefundTx(ctx, tx, m, r, o)
		case res.Reason() == daraja.ResultNotFound:
			return g.settleRefundTx(ctx, tx, m, r, lipa.RefundOutcome{Status: lipa.RefundFailed, ResultCode: res.ResultCode,
				ResultDesc: res.ResultDesc, FailureReason: lipa.RefundNotMade, Source: lipa.RefundByStatus})
		default:
			note += ": M-Pesa could not tell (" + res.ResultCode + " " + res.ResultDesc + "); asked again later"
		}
	case statusForReceipt:
		if q.InboundID == 0 {
			return g.confirmPaymentReceiptTx(ctx, tx, m, res, q)
		}
		return g.confirmHeldC2BTx(ctx, tx, m, res, q)
	case statusForApp:
		if res.Reason() != daraja.ResultSucceeded {
			break
		}
		if _, err := tx.PaymentByReceipt(ctx, q.Receipt); err == nil {
			break
		}
		open, err := tx.OpenReviewForReceipt(ctx, string(ReviewDarajaLookup), q.Receipt)
		if err != nil || open {
			return err
		}
		appName := string(q.AppID)
		if a, err := tx.AppByID(ctx, q.AppID); err == nil {
			appName = a.Name
		}
		if err := g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewDarajaLookup, InboundID: m.ID, Receipt: q.Receipt,
			Note: fmt.Sprintf("app %s asked about receipt %s, which M-Pesa knows (%s, %s shillings, to %s) but Lipa has no payment for; find out why (lipa pull run) and settle it by hand, or dismiss",
				reviewText(appName), q.Receipt, d.TransactionStatus, d.Amount, reviewText(d.CreditPartyName))}); err != nil {
			return err
		}
	}
	return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, q.PaymentID, note)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// StatusDetails is what M-Pesa said about a transaction in a Transaction
// Status answer (docs/daraja.md "Transaction Status"). Times are UTC.
type StatusDetails struct {
	ReceiptNo         string
	TransactionStatus string // "Completed"
	Amount            lipa.Amount
	InitiatedTime     time.Time
	FinalisedTime     time.Time
	DebitPartyName    string // "2547… - Name" (the payer of a payment)
	CreditPartyName   string // "174379 - Org" (the shortcode paid)
	ReasonType        string
}

// StatusAnswer is a Transaction Status question and, once it came,
// M-Pesa's answer.
type StatusAnswer struct {
	ID      string // "tsq_…"
	Receipt string
	// State is "sent" (no answer yet), "answered" or "failed" (Daraja
	// refused the question, or it expired in M-Pesa's queue).
	State      string
	ResultCode string // "0" found; "2032" no such receipt; …
	ResultDesc string
	// Found is true when M-Pesa knows the transaction (ResultCode 0).
	Found   bool
	Details StatusDetails
	// Payment is Lipa's payment with the receipt, if it has one.
	Payment    *lipa.Payment
	AskedAt    time.Time
	AnsweredAt time.Time
}

// StatusAnswerView is a StatusAnswer as the CLI's --json and the admin
// API show it: amounts in shillings, times RFC 3339 in UTC, unknown values
// null.
type StatusAnswerView struct {
	ID                string            `json:"id"`
	Source            string            `json:"source"`
	Receipt           string            `json:"receipt"`
	State             string            `json:"state"`
	Found             bool              `json:"found"`
	ResultCode        *string           `json:"result_code"`
	ResultDesc        *string           `json:"result_desc"`
	TransactionStatus *string           `json:"transaction_status"`
	Amount            *lipa.Amount      `json:"amount"`
	InitiatedAt       *string           `json:"initiated_at"`
	CompletedAt       *string           `json:"completed_at"`
	DebitParty        *string           `json:"debit_party"`
	CreditParty       *string           `json:"credit_party"`
	ReasonType        *string           `json:"reason_type"`
	AskedAt           string            `json:"asked_at"`
	AnsweredAt        *string           `json:"answered_at"`
	Payment           *lipa.PaymentView `json:"payment"`
}

// View returns the answer's JSON view.
func (a *StatusAnswer) View() StatusAnswerView {
	t := func(x time.Time) *string {
		if x.IsZero() {
			return nil
		}
		s := x.UTC().Format(time.RFC3339)
		return &s
	}
	v := StatusAnswerView{ID: a.ID, Source: "daraja", Receipt: a.Receipt, State: a.State, Found: a.Found,
		ResultCode: optString(a.ResultCode), ResultDesc: optString(a.ResultDesc), TransactionStatus: optString(a.Details.TransactionStatus),
		InitiatedAt: t(a.Details.InitiatedTime), CompletedAt: t(a.Details.FinalisedTime), DebitParty: optString(a.Details.DebitPartyName),
		CreditParty: optString(a.Details.CreditPartyName), ReasonType: optString(a.Details.ReasonType),
		AskedAt: a.AskedAt.UTC().Format(time.RFC3339Nano), AnsweredAt: t(a.AnsweredAt)}
	if a.Found {
		amt := a.Details.Amount
		v.Amount = &amt
	}
	if a.Payment != nil {
		pv := lipa.ViewOf(a.Payment)
		v.Payment = &pv
	}
	return v
}

// statusAnswer reads query id and, when answered, its stored Result.
func (g *Gateway) statusAnswer(ctx context.Context, id string) (*StatusAnswer, error) {
	var a StatusAnswer
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		q, err := tx.StatusQueryByID(ctx, id)
		if err != nil {
			return err
		}
		a = StatusAnswer{ID: q.ID, Receipt: q.Receipt, State: q.State, ResultCode: q.ResultCode, ResultDesc: q.ResultDesc,
			AskedAt: q.CreatedAt, AnsweredAt: q.AnsweredAt}
		if q.State == sqlstore.StatusAnswered && q.ResultInboundID != 0 {
			m, err := tx.InboundByID(ctx, q.ResultInboundID)
			if err != nil {
				return err
			}
			if res, err := daraja.ParseResult(m.Body); err == nil {
				a.Found = res.Reason() == daraja.ResultSucceeded
				d := res.Status()
				a.Details = StatusDetails{ReceiptNo: d.ReceiptNo, TransactionStatus: d.TransactionStatus, Amount: d.Amount,
					InitiatedTime: d.InitiatedTime, FinalisedTime: d.FinalisedTime, DebitPartyName: d.DebitPartyName,
					CreditPartyName: d.CreditPartyName, ReasonType: d.ReasonType}
			}
		}
		if q.Receipt != "" {
			p, err := tx.PaymentByReceipt(ctx, q.Receipt)
			if err == nil {
				a.Payment = p
			} else if lipa.ErrorKind(err) != lipa.NotFound {
				return err
			}
		}
		return nil
	})
	return &a, err
}

// awaitStatus waits, at most wait, for query id's answer, and returns the
// query as it then stands.
func (g *Gateway) awaitStatus(ctx context.Context, id string, wait time.Duration) (*StatusAnswer, error) {
	deadline := time.Now().Add(wait)
	for {
		a, err := g.statusAnswer(ctx, id)
		if err != nil || a.State != sqlstore.StatusSent && a.State != sqlstore.StatusSending || !time.Now().Before(deadline) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkReceiptArg validates a receipt to ask about: Invalid
// "invalid_receipt" unless it has Daraja's shape (daraja.ValidReceipt).
func checkReceiptArg(receipt string) (string, error) {
	receipt = strings.ToUpper(strings.TrimSpace(receipt))
	if !daraja.ValidReceipt(receipt) {
		return "", lipa.InvalidField("invalid_receipt", "receipt", "receipt %q is not an M-Pesa receipt number (upper-case letters and digits, such as NLJ7RT61SV)", truncateText(receipt, 30))
	}
	return receipt, nil
}

// AskTransactionStatus asks M-Pesa what it knows about a receipt of the
// shortcode (Transaction Status), for an operator, and waits at most wait
// for the answer, which comes to the result URL of a running Lipa. The
// answer has State "sent" when none came in time; it is stored when it
// comes. Nothing changes in Lipa's payments.
//
// Errors: Invalid "invalid_receipt"; NotConfigured "not_configured" (no
// initiator credentials); darajaError's for a question Daraja refused.
func (g *Gateway) AskTransactionStatus(ctx context.Context, receipt string, wait time.Duration) (*StatusAnswer, error) {
	receipt, err := checkReceiptArg(receipt)
	if err != nil {
		return nil, err
	}
	q, err := g.askStatus(ctx, &sqlstore.StatusQuery{Purpose: statusForOperator, Receipt: receipt})
	if err != nil {
		return nil, err
	}
	return g.awaitStatus(ctx, q.ID, wait)
}

// LookupReceipt asks M-Pesa about a receipt Lipa has no payment for, for
// an app that opted in (GET /api/payments/verify/?receipt=…&lookup=daraja),
// and waits at most wait for the answer. A question about the same receipt
// from any app within ten minutes is not sent again: its answer (or its
// wait) is shared. The answer never creates a claimable payment: a receipt
// M-Pesa knows goes to the review queue (ReviewDarajaLookup).
//
// Errors: Invalid "invalid_receipt"; NotConfigured "not_configured" (no
// initiator credentials, or LIPA_DARAJA_LOOKUPS_PER_HOUR is 0);
// TooManyRequests "lookup_rate_limited" (the app's hourly budget is spent;
// details.retry_after); darajaError's.
func (g *Gateway) LookupReceipt(ctx context.Context, app *lipa.App, receipt string, wait time.Duration) (*StatusAnswer, error) {
	receipt, err := checkReceiptArg(receipt)
	if err != nil {
		return nil, err
	}
	if !g.canInitiate() {
		return nil, darajaError(callStatus, daraja.ErrNoInitiator)
	}
	if g.cfg.DarajaLookupsPerHour <= 0 {
		return nil, lipa.Errorf(lipa.NotConfigured, "not_configured",
			"lookups of receipts with M-Pesa are turned off on this Lipa (LIPA_DARAJA_LOOKUPS_PER_HOUR is 0)").
			With("settings", []string{"LIPA_DARAJA_LOOKUPS_PER_HOUR"})
	}
	var recent *sqlstore.StatusQuery
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		recent, err = tx.LatestStatusQuery(ctx, receipt, statusForApp, g.clock().Add(-lookupReuse))
		if lipa.ErrorKind(err) == lipa.NotFound {
			recent, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if recent == nil {
		if wait, ok := g.lookups.take(string(app.ID), g.cfg.DarajaLookupsPerHour, g.now()); !ok {
			secs := int(wait.Seconds()) + 1
			return nil, lipa.Errorf(lipa.TooManyRequests, "lookup_rate_limited",
				"this app has asked M-Pesa about %d receipts in the last hour, the most allowed; retry after %d s", g.cfg.DarajaLookupsPerHour, secs).
				With("retry_after", secs)
		}
		if recent, err = g.askStatus(ctx, &sqlstore.StatusQuery{Purpose: statusForApp, Receipt: receipt, AppID: app.ID}); err != nil {
			return nil, err
		}
		g.log.Info("receipt looked up with Daraja for an app", "app", app.Name, "receipt", receipt, "status_query_id", recent.ID)
	}
	return g.awaitStatus(ctx, recent.ID, wait)
}

// confirmReceiptLater asks Transaction Status, in the background, about
// the receipt a confirmed STK callback gave payment id (LIPA_CONFIRM_BY_QUERY
// with initiator credentials): the STK push query confirms a payment's
// status but carries no receipt, so a forged callback could still bring a
// false one. A receipt M-Pesa does not confirm puts the payment in the
// review queue (confirmPaymentReceiptTx); the payment itself is unchanged.
func (g *Gateway) confirmReceiptLater(id lipa.PaymentID) {
	if !g.cfg.ConfirmByQuery || !g.canInitiate() {
		return
	}
	g.spawn(func(ctx context.Context) {
		var p *lipa.Payment
		if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { p, err = tx.PaymentByID(ctx, id); return err }); err != nil {
			g.log.Warn("receipt not confirmed: payment unreadable", "payment_id", id, "err", err)
			return
		}
		if p.Status != lipa.StatusSuccess || p.MpesaReceiptNumber == "" {
			return
		}
		if _, err := g.askStatus(ctx, &sqlstore.StatusQuery{Purpose: statusForReceipt, Receipt: p.MpesaReceiptNumber,
			PaymentID: p.ID, AppID: p.AppID}); err != nil {
			g.log.Warn("receipt of a confirmed callback not asked about", "payment_id", id, "err", err)
		}
	})
}

// confirmPaymentReceiptTx acts on the Transaction Status answer m about
// the receipt of payment q.PaymentID: one M-Pesa does not know, or knows
// for another amount, puts the payment in the review queue
// (ReviewReceiptNotConfirmed). Nothing else changes.
func (g *Gateway) confirmPaymentReceiptTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, res *daraja.Result, q *sqlstore.StatusQuery) error {
	note := "status query " + q.ID + ": receipt confirmed"
	p, err := tx.PaymentByID(ctx, q.PaymentID)
	if err != nil {
		return err
	}
	d := res.Status()
	why := ""
	switch {
	case res.Reason() == daraja.ResultNotFound:
		why = fmt.Sprintf("M-Pesa has no transaction %s (%s %s)", q.Receipt, res.ResultCode, res.ResultDesc)
	case res.Reason() != daraja.ResultSucceeded:
		note = fmt.Sprintf("status query %s: M-Pesa could not tell (%s %s)", q.ID, res.ResultCode, res.ResultDesc)
	case d.Amount != 0 && d.Amount != p.Amount:
		why = fmt.Sprintf("M-Pesa says %s was for %s shillings; the payment is for %s", q.Receipt, d.Amount, p.Amount)
	}
	if why != "" {
		note = "status query " + q.ID + ": " + why
		g.log.Warn("callback's receipt not confirmed by Transaction Status", "payment_id", p.ID, "receipt", q.Receipt, "why", why)
		if err := g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewReceiptNotConfirmed, InboundID: m.ID, PaymentID: p.ID,
			Receipt: q.Receipt, Note: "the receipt the callback gave is not confirmed: " + why}); err != nil {
			return err
		}
	}
	return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, p.ID, note)
}
