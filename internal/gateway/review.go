package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// ReviewReason says why an item is in the review queue: what Lipa could not
// apply or settle by itself. The values are stable snake_case codes, shown
// to operators and in the admin API.
type ReviewReason string

// The review reasons.
const (
	// ReviewUnmatchedCallback: an STK callback whose CheckoutRequestID no
	// payment has. Resolved by Lipa itself when the push's answer is saved
	// later; otherwise by an operator (match to a payment whose push answer
	// was lost, or dismiss).
	ReviewUnmatchedCallback ReviewReason = "unmatched_callback"
	// ReviewMalformedPayload: an STK callback or C2B confirmation that is
	// not JSON, not of Daraja's shape, or has no CheckoutRequestID/TransID.
	ReviewMalformedPayload ReviewReason = "malformed_payload"
	// ReviewRepeatedKey: a C2B confirmation that names a JSON key twice
	// ({"TransID":"X1","TransID":"X2"}), so it says two things at once.
	ReviewRepeatedKey ReviewReason = "repeated_key"
	// ReviewMissingFields: a C2B confirmation without an MSISDN or a
	// BusinessShortCode (Daraja always sends both; BillRefNumber is empty
	// for tills, so its absence alone is normal).
	ReviewMissingFields ReviewReason = "missing_fields"
	// ReviewInvalidAmount: a C2B confirmation whose TransAmount is zero,
	// negative, or unreadable ("abc", "1e3", "100.555", 20 digits).
	ReviewInvalidAmount ReviewReason = "invalid_amount"
	// ReviewInvalidReceipt: a C2B TransID or an STK callback's
	// MpesaReceiptNumber that is not of Daraja's shape (see
	// daraja.ValidReceipt), or a success callback without one.
	ReviewInvalidReceipt ReviewReason = "invalid_receipt"
	// ReviewDuplicateOtherAmount: a C2B confirmation whose TransID is
	// already the receipt of a payment with another amount.
	ReviewDuplicateOtherAmount ReviewReason = "duplicate_other_amount"
	// ReviewReceiptConflict: a success callback whose receipt already
	// belongs to another payment (one that could not be merged: claimed,
	// or another amount). The payment stays PENDING and is never settled
	// SUCCESS by a query; an operator settles it or dismisses the item.
	ReviewReceiptConflict ReviewReason = "receipt_conflict"
	// ReviewAmountMismatch: a success callback whose amount is not the
	// payment's.
	ReviewAmountMismatch ReviewReason = "amount_mismatch"
	// ReviewPhoneMismatch: a success callback whose phone is not the
	// payment's.
	ReviewPhoneMismatch ReviewReason = "phone_mismatch"
	// ReviewStatusConflict: a callback that contradicts a settled payment.
	ReviewStatusConflict ReviewReason = "status_conflict"
	// ReviewQueryContradicts: Daraja's STK push query and a callback
	// disagree about a payment.
	ReviewQueryContradicts ReviewReason = "query_contradicts_callback"
	// ReviewOrphanPush: a push whose Daraja answer was lost (no
	// CheckoutRequestID) reached LIPA_PENDING_EXPIRY. The customer may have
	// paid, so it is not expired: it stays PENDING for an operator.
	ReviewOrphanPush ReviewReason = "orphan_push"
)

// ReviewState is where a review item stands.
type ReviewState string

// The review item states.
const (
	ReviewOpen     ReviewState = sqlstore.ReviewOpen     // waiting for an operator
	ReviewResolved ReviewState = sqlstore.ReviewResolved // closed, with a resolution
)

// ReviewResolution is how a review item was closed.
type ReviewResolution string

// The resolutions.
const (
	ResolutionMatched        ReviewResolution = "matched"         // its callback was applied to a payment (ResolveMatch)
	ResolutionSettled        ReviewResolution = "settled"         // its payment was settled by an operator (ResolveSettle)
	ResolutionPaymentCreated ReviewResolution = "payment_created" // an intake payment was created from its confirmation (ResolveCreatePayment)
	ResolutionDismissed      ReviewResolution = "dismissed"       // closed with nothing changed (ResolveDismiss)
	ResolutionApplied        ReviewResolution = "applied"         // Lipa applied it itself (an early callback, once the push's answer was saved)
)

// ActorLipa is the resolver of an item Lipa closed by itself
// (ResolutionApplied). It never appears in the audit log, which records
// people's actions only.
var ActorLipa = Actor{Kind: "lipa", Name: "lipa"}

// ReviewItem is one entry of the review queue. Times are UTC.
type ReviewItem struct {
	ID     int64
	Reason ReviewReason
	State  ReviewState
	// Note says in words what Lipa saw ("callback amount 1 differs from
	// the payment's 5; not applied").
	Note string
	// InboundID is the stored Safaricom payload the item is about; 0 for
	// an item about a payment only (orphan_push).
	InboundID int64
	// InboundKind is that payload's kind (stk_callback, c2b_confirmation,
	// stk_query); empty when InboundID is 0.
	InboundKind       InboundKind
	PaymentID         lipa.PaymentID // the payment concerned; empty when none
	CheckoutRequestID string         // the CheckoutRequestID the payload names
	Receipt           string         // the TransID (C2B) or MpesaReceiptNumber (STK) the payload names
	CreatedAt         time.Time

	Resolution       ReviewResolution // empty while open
	ResolutionReason string           // the operator's reason
	ResolvedBy       Actor            // ActorLipa when Lipa resolved it itself
	ResolvedAt       time.Time
	// ResultPaymentID is the payment a resolution settled, matched or
	// created.
	ResultPaymentID lipa.PaymentID
}

// ReviewItemView is a review item as the CLI's --json and the admin API
// show it: times RFC 3339 in UTC, unknown values null.
type ReviewItemView struct {
	ID                int64             `json:"id"`
	Reason            ReviewReason      `json:"reason"`
	State             ReviewState       `json:"state"`
	Note              string            `json:"note"`
	InboundID         *int64            `json:"inbound_id"`
	InboundKind       *string           `json:"inbound_kind"`
	PaymentID         *string           `json:"payment_id"`
	CheckoutRequestID *string           `json:"checkout_request_id"`
	Receipt           *string           `json:"receipt"`
	CreatedAt         string            `json:"created_at"`
	Resolution        *string           `json:"resolution"`
	ResolutionReason  *string           `json:"resolution_reason"`
	ResolvedBy        *string           `json:"resolved_by"`
	ResolvedAt        *string           `json:"resolved_at"`
	ResultPaymentID   *string           `json:"result_payment_id"`
	Payment           *lipa.PaymentView `json:"payment,omitempty"`
}

func optString[T ~string](s T) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

// View returns the item's JSON view.
func (it ReviewItem) View() ReviewItemView {
	v := ReviewItemView{ID: it.ID, Reason: it.Reason, State: it.State, Note: it.Note,
		InboundKind: optString(it.InboundKind), PaymentID: optString(it.PaymentID),
		CheckoutRequestID: optString(it.CheckoutRequestID), Receipt: optString(it.Receipt),
		CreatedAt: it.CreatedAt.Format(time.RFC3339Nano), Resolution: optString(it.Resolution),
		ResolutionReason: optString(it.ResolutionReason), ResultPaymentID: optString(it.ResultPaymentID)}
	if it.InboundID != 0 {
		id := it.InboundID
		v.InboundID = &id
	}
	if it.ResolvedBy != (Actor{}) {
		s := it.ResolvedBy.String()
		v.ResolvedBy = &s
	}
	if !it.ResolvedAt.IsZero() {
		s := it.ResolvedAt.Format(time.RFC3339Nano)
		v.ResolvedAt = &s
	}
	return v
}

// StoredPayload is a Safaricom payload (or Daraja query answer) as Lipa
// stored it, raw, before interpreting it.
type StoredPayload struct {
	ID                int64
	Kind              InboundKind
	Path              string // the path it came to, the callback token redacted
	SourceAddr        string
	ReceivedAt        time.Time
	Body              []byte // as received
	CheckoutRequestID string // STK callbacks, when readable
	TransID           string // C2B, when readable
	PaymentID         lipa.PaymentID
	Outcome           string // what Lipa did with it: applied, duplicate, conflict, unmatched, malformed, …
	Note              string
}

// Pretty returns the body for people: indented when it is JSON, else as
// text with invalid UTF-8 replaced.
func (p *StoredPayload) Pretty() string { return prettyBody(p.Body) }

// storedPayloadOf is the gateway's view of a stored row.
func storedPayloadOf(m *sqlstore.Inbound) *StoredPayload {
	return &StoredPayload{ID: m.ID, Kind: m.Kind, Path: m.Path, SourceAddr: m.SourceAddr, ReceivedAt: m.ReceivedAt, Body: m.Body,
		CheckoutRequestID: m.CheckoutRequestID, TransID: m.TransID, PaymentID: m.PaymentID, Outcome: string(m.Outcome), Note: m.Note}
}

// ReviewDetail is everything an operator needs to decide on an item.
type ReviewDetail struct {
	Item    ReviewItem
	Payload *StoredPayload // nil for an item about a payment only
	Payment *lipa.Payment  // the payment concerned (or created); nil when none
	History []AuditEntry   // operator actions on the item, oldest first
}

// ReviewFilter selects review items; zero fields do not filter.
type ReviewFilter struct {
	State     ReviewState // ReviewOpen, ReviewResolved, or "" for both
	Reason    ReviewReason
	PaymentID lipa.PaymentID
	// Before pages newest first: only items with a smaller ID. Pass the
	// last ID of one page to get the next; 0 starts at the newest.
	Before int64
	// Limit is how many items at most: 1–1000, default 100.
	Limit int
}

// ReviewItems lists the review items matching f, newest first. A Limit
// outside 0–1000 is Invalid "invalid_limit"; an unknown State is Invalid
// "invalid_state".
func (g *Gateway) ReviewItems(ctx context.Context, f ReviewFilter) ([]ReviewItem, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 1000")
	}
	if f.State != "" && f.State != ReviewOpen && f.State != ReviewResolved {
		return nil, lipa.InvalidField("invalid_state", "state", "state must be open or resolved")
	}
	var out []ReviewItem
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		rows, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: string(f.State), Reason: string(f.Reason),
			PaymentID: f.PaymentID, Before: f.Before, Limit: f.Limit})
		if err != nil {
			return err
		}
		for i := range rows {
			out = append(out, *reviewItemOf(&rows[i]))
		}
		return nil
	})
	return out, err
}

// ReviewPayloads returns the stored payload of each item that has one
// (InboundID not 0), by InboundID, in one transaction: the review queue
// shows each item with its payload.
func (g *Gateway) ReviewPayloads(ctx context.Context, items []ReviewItem) (map[int64]*StoredPayload, error) {
	out := map[int64]*StoredPayload{}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		for _, it := range items {
			if it.InboundID == 0 || out[it.InboundID] != nil {
				continue
			}
			m, err := tx.InboundByID(ctx, it.InboundID)
			if err != nil {
				return err
			}
			out[it.InboundID] = storedPayloadOf(m)
		}
		return nil
	})
	return out, err
}

// OpenReviewCount returns how many review items are open.
func (g *Gateway) OpenReviewCount(ctx context.Context) (int, error) {
	var n int
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		n, err = tx.CountReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen})
		return err
	})
	return n, err
}

// ReviewItem returns one item with its stored payload, its payment and
// its history. An unknown id is NotFound "review_item_not_found".
func (g *Gateway) ReviewItem(ctx context.Context, id int64) (*ReviewDetail, error) {
	var d ReviewDetail
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		row, err := tx.ReviewItemByID(ctx, id)
		if err != nil {
			return err
		}
		it := reviewItemOf(row)
		d.Item = *it
		if it.InboundID != 0 {
			m, err := tx.InboundByID(ctx, it.InboundID)
			if err != nil {
				return err
			}
			d.Payload = storedPayloadOf(m)
		}
		pid := it.ResultPaymentID
		if pid == "" {
			pid = it.PaymentID
		}
		if pid != "" {
			p, err := tx.PaymentByID(ctx, pid)
			if err != nil && lipa.ErrorKind(err) != lipa.NotFound {
				return err
			}
			d.Payment = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	hist, err := g.AuditLog(ctx, AuditFilter{Target: reviewTarget(id), Limit: 1000})
	if err != nil {
		return nil, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		d.History = append(d.History, hist[i])
	}
	return &d, nil
}

// reviewItemOf turns a stored row into the gateway's item.
func reviewItemOf(r *sqlstore.ReviewItem) *ReviewItem {
	it := &ReviewItem{ID: r.ID, Reason: ReviewReason(r.Reason), State: ReviewState(r.State), Note: r.Note, InboundID: r.InboundID,
		InboundKind: r.InboundKind,
		PaymentID:   r.PaymentID, CheckoutRequestID: r.CheckoutRequestID, Receipt: r.Receipt, CreatedAt: r.CreatedAt,
		Resolution: ReviewResolution(r.Resolution), ResolutionReason: r.ResolutionReason,
		ResolvedAt: r.ResolvedAt, ResultPaymentID: r.ResultPaymentID}
	if r.ResolvedBy != "" {
		it.ResolvedBy = Actor{Kind: ActorKind(r.ResolvedByKind), Name: r.ResolvedBy}
	}
	return it
}

func reviewTarget(id int64) string { return "review:" + strconv.FormatInt(id, 10) }

// reviewCause is what opens a review item.
type reviewCause struct {
	Reason            ReviewReason
	InboundID         int64
	PaymentID         lipa.PaymentID
	CheckoutRequestID string
	Receipt           string
	Note              string
}

// maxReviewText bounds the identifiers and notes copied from a payload
// into a review item.
const maxReviewText = 200

// reviewText makes text taken from a payload safe to store and show: valid
// UTF-8 without NUL bytes (PostgreSQL refuses both in text), at most
// maxReviewText bytes. Other control characters are kept (the CLI escapes
// them when printing), so a grep for the identifier as sent still finds it.
func reviewText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > maxReviewText {
		s = s[:maxReviewText]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// openReviewTx puts an item in the review queue inside tx, unless an open
// item for the same payload (or, for an item about a payment only, the same
// payment) and reason is there already.
func (g *Gateway) openReviewTx(ctx context.Context, tx *sqlstore.Tx, c reviewCause) error {
	f := sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, Reason: string(c.Reason), InboundID: c.InboundID}
	if c.InboundID == 0 {
		f.PaymentID = c.PaymentID
	}
	n, err := tx.CountReviewItems(ctx, f)
	if err != nil || n > 0 {
		return err
	}
	it := &sqlstore.ReviewItem{Reason: string(c.Reason), InboundID: c.InboundID, PaymentID: c.PaymentID,
		CheckoutRequestID: reviewText(c.CheckoutRequestID), Receipt: reviewText(c.Receipt), Note: reviewText(c.Note), CreatedAt: g.clock()}
	if err := tx.InsertReviewItem(ctx, it); err != nil {
		return err
	}
	g.log.Warn("review item opened", "review_id", it.ID, "reason", c.Reason, "payment_id", c.PaymentID,
		"checkout_request_id", it.CheckoutRequestID, "receipt", it.Receipt, "inbound_id", c.InboundID, "note", it.Note)
	return nil
}

// flagTx records that stored payload c.InboundID was not applied (outcome,
// with c's payment and note) and puts it in the review queue, in tx.
func (g *Gateway) flagTx(ctx context.Context, tx *sqlstore.Tx, outcome sqlstore.InboundOutcome, c reviewCause) error {
	if err := tx.SetInboundOutcome(ctx, c.InboundID, outcome, c.PaymentID, c.Note); err != nil {
		return err
	}
	return g.openReviewTx(ctx, tx, c)
}

// resolveAutomaticallyTx closes the open items of a stored payload that
// Lipa has now applied by itself (an early callback, once the push's
// answer is saved).
func (g *Gateway) resolveAutomaticallyTx(ctx context.Context, tx *sqlstore.Tx, inboundID int64, paymentID lipa.PaymentID, why string) error {
	items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, InboundID: inboundID,
		Reason: string(ReviewUnmatchedCallback), Limit: 10})
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, err := tx.ResolveReviewItem(ctx, it.ID, sqlstore.Resolution{Resolution: string(ResolutionApplied), Reason: why,
			ByKind: string(ActorLipa.Kind), By: ActorLipa.Name, At: g.clock(), ResultPaymentID: paymentID}); err != nil {
			return err
		}
	}
	return nil
}

// paymentUnderReviewTx reports whether a payment has an open review item.
func paymentUnderReviewTx(ctx context.Context, tx *sqlstore.Tx, id lipa.PaymentID) (bool, error) {
	n, err := tx.CountReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, PaymentID: id})
	return n > 0, err
}

// holdForReviewTx decides, inside the transaction that would expire a
// PENDING payment, whether a person must decide instead: the payment has
// an open review item, or its push's Daraja answer was lost (no
// CheckoutRequestID: the customer may have paid), in which case an
// orphan_push item is opened. It reports true when the payment must stay
// PENDING.
func (g *Gateway) holdForReviewTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment) (bool, error) {
	if p.Status != lipa.StatusPending {
		return false, nil
	}
	held, err := paymentUnderReviewTx(ctx, tx, p.ID)
	if err != nil || held {
		return held, err
	}
	if p.CheckoutRequestID != "" {
		return false, nil
	}
	note := fmt.Sprintf("PENDING for %s and Daraja's answer to the push was never saved (no CheckoutRequestID); the customer may have paid",
		g.clock().Sub(p.CreatedAt).Round(time.Second))
	return true, g.openReviewTx(ctx, tx, reviewCause{Reason: ReviewOrphanPush, PaymentID: p.ID, Note: note})
}

// keepUnderReview opens a review item about PENDING payment p (reason,
// note) unless it has an open one already: a payment Lipa cannot settle by
// itself always has one, also after an operator dismissed the last.
func (g *Gateway) keepUnderReview(ctx context.Context, p *lipa.Payment, reason ReviewReason, note string) error {
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		cur, err := tx.PaymentForUpdate(ctx, p.ID)
		if err != nil {
			return err
		}
		held, err := paymentUnderReviewTx(ctx, tx, cur.ID)
		if err != nil || held || cur.Status != lipa.StatusPending {
			return err
		}
		return g.openReviewTx(ctx, tx, reviewCause{Reason: reason, PaymentID: cur.ID, CheckoutRequestID: cur.CheckoutRequestID, Note: note})
	})
}

// hadReceiptConflictTx reports whether a callback for the payment was ever
// flagged because its receipt belongs to another payment (open or
// resolved): the money is recorded there, so a query must not settle this
// payment SUCCESS.
func hadReceiptConflictTx(ctx context.Context, tx *sqlstore.Tx, id lipa.PaymentID) (bool, error) {
	n, err := tx.CountReviewItems(ctx, sqlstore.ReviewFilter{PaymentID: id, Reason: string(ReviewReceiptConflict)})
	return n > 0, err
}

// maxReasonLength bounds an operator's reason.
const maxReasonLength = 500

// checkReason validates an operator's reason for a resolution: required
// (Invalid "reason_required"), at most 500 characters without control
// characters (Invalid "invalid_reason").
func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", lipa.InvalidField("reason_required", "reason", "a resolution needs a reason: say why, for the audit log")
	case utf8.RuneCountInString(reason) > maxReasonLength || !utf8.ValidString(reason) || hasControl(reason):
		return "", lipa.InvalidField("invalid_reason", "reason", "reason must be at most %d characters, without control characters", maxReasonLength)
	}
	return reason, nil
}

// ReviewResult is what a resolution did: the item as closed and the
// payment it matched, settled or created (nil for a dismissal).
type ReviewResult struct {
	Item    ReviewItem
	Payment *lipa.Payment
}

// resolveTx is the frame of every operator resolution: it checks the
// actor and reason, locks and loads the open item, runs do (which changes
// what it must and returns the payment concerned, if any), closes the item
// with the resolution, and records the action in the audit log, all in one
// transaction. Errors: Invalid "invalid_actor", "reason_required",
// "invalid_reason"; NotFound "review_item_not_found"; Conflict
// "review_item_resolved" when the item is closed already; and do's.
func (g *Gateway) resolve(ctx context.Context, actor Actor, id int64, action AuditAction, res ReviewResolution, reason string,
	do func(tx *sqlstore.Tx, it *ReviewItem) (before, after *lipa.Payment, err error)) (*ReviewResult, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	var out ReviewResult
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		row, err := tx.ReviewItemByID(ctx, id)
		if err != nil {
			return err
		}
		it := reviewItemOf(row)
		if it.State != ReviewOpen {
			return lipa.Errorf(lipa.Conflict, "review_item_resolved", "review item %d was already resolved (%s by %s)", id, it.Resolution, it.ResolvedBy).
				With("resolution", string(it.Resolution))
		}
		beforeItem := it.View()
		var before, after *lipa.Payment
		if do != nil {
			if before, after, err = do(tx, it); err != nil {
				return err
			}
		}
		var result lipa.PaymentID
		if after != nil {
			result = after.ID
		}
		now := g.clock()
		if _, err := tx.ResolveReviewItem(ctx, id, sqlstore.Resolution{Resolution: string(res), Reason: reason,
			ByKind: string(actor.Kind), By: actor.Name, At: now, ResultPaymentID: result}); err != nil {
			return err
		}
		it.State, it.Resolution, it.ResolutionReason, it.ResolvedBy, it.ResolvedAt, it.ResultPaymentID = ReviewResolved, res, reason, actor, now, result
		if after != nil {
			// A payment settled or matched by an operator is no orphan any
			// more: its orphan_push item closes with this one.
			if err := g.closeOrphanItemsTx(ctx, tx, actor, after, id, now); err != nil {
				return err
			}
		}
		if err := g.recordAuditTx(ctx, tx, actor, action, reviewTarget(id), reason,
			auditReview(beforeItem, before), auditReview(it.View(), after)); err != nil {
			return err
		}
		out = ReviewResult{Item: *it, Payment: after}
		return nil
	})
	if err != nil {
		return nil, err
	}
	g.log.Info("review item resolved", "review_id", id, "resolution", res, "actor", actor.String(), "reason", reason,
		"payment_id", out.Item.ResultPaymentID)
	return &out, nil
}

// auditReview is the before/after document of a resolution.
func auditReview(it ReviewItemView, p *lipa.Payment) map[string]any {
	m := map[string]any{"item": it}
	if p != nil {
		m["payment"] = lipa.ViewOf(p)
	}
	return m
}

// closeOrphanItemsTx closes the open orphan_push items of a payment that a
// resolution (item resolvedWith) has just settled or matched.
func (g *Gateway) closeOrphanItemsTx(ctx context.Context, tx *sqlstore.Tx, actor Actor, p *lipa.Payment, resolvedWith int64, now time.Time) error {
	if p.Status == lipa.StatusPending {
		return nil
	}
	items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, PaymentID: p.ID,
		Reason: string(ReviewOrphanPush), Limit: 10})
	if err != nil {
		return err
	}
	for _, o := range items {
		if _, err := tx.ResolveReviewItem(ctx, o.ID, sqlstore.Resolution{Resolution: string(ResolutionSettled),
			Reason: fmt.Sprintf("settled with review item %d", resolvedWith), ByKind: string(actor.Kind), By: actor.Name,
			At: now, ResultPaymentID: p.ID}); err != nil {
			return err
		}
	}
	return nil
}

// ResolveMatch applies the stored STK callback of an unmatched_callback
// item to a PENDING STK payment whose push answer was lost (it has no
// CheckoutRequestID, or the callback's): the payment takes the callback's
// CheckoutRequestID and the callback is applied with every usual check
// (amount, phone, receipt, final states). Nothing changes unless it
// applies. The item closes "matched", audited with reason.
//
// Errors, besides resolve's: Conflict "not_unmatched" (the item holds no
// unmatched STK callback), "payment_not_pending", "callback_not_applicable"
// (a usual check refused it; details.note says which); NotFound
// "payment_not_found".
func (g *Gateway) ResolveMatch(ctx context.Context, actor Actor, id int64, paymentID lipa.PaymentID, reason string) (*ReviewResult, error) {
	return g.resolve(ctx, actor, id, AuditReviewMatch, ResolutionMatched, reason, func(tx *sqlstore.Tx, it *ReviewItem) (*lipa.Payment, *lipa.Payment, error) {
		if it.InboundID == 0 {
			return nil, nil, lipa.Errorf(lipa.Conflict, "not_unmatched", "review item %d (%s) holds no callback to match; settle or dismiss it", it.ID, it.Reason)
		}
		m, err := tx.InboundByID(ctx, it.InboundID)
		if err != nil {
			return nil, nil, err
		}
		return g.matchTx(ctx, tx, m, paymentID)
	})
}

// matchTx applies stored unmatched callback m to payment paymentID in tx;
// see ResolveMatch. It returns the payment before and after.
func (g *Gateway) matchTx(ctx context.Context, tx *sqlstore.Tx, m *sqlstore.Inbound, paymentID lipa.PaymentID) (*lipa.Payment, *lipa.Payment, error) {
	if m.Kind != sqlstore.InboundSTKCallback || m.Outcome != sqlstore.OutcomeUnmatched {
		return nil, nil, lipa.Errorf(lipa.Conflict, "not_unmatched", "message %d is not an unmatched STK callback (it is a %s, %s)", m.ID, m.Kind, m.Outcome)
	}
	cb, err := daraja.ParseSTKCallback(m.Body)
	if err != nil {
		return nil, nil, lipa.Errorf(lipa.Conflict, "not_unmatched", "message %d cannot be read as an STK callback: %v", m.ID, err)
	}
	if !daraja.ValidCheckoutRequestID(cb.CheckoutRequestID) {
		return nil, nil, lipa.Errorf(lipa.Conflict, "callback_not_applicable", "message %d names CheckoutRequestID %q, which Daraja never issues; dismiss it", m.ID, cb.CheckoutRequestID)
	}
	if err := tx.Lock(ctx, cb.CheckoutRequestID); err != nil {
		return nil, nil, err
	}
	p, err := tx.PaymentForUpdate(ctx, paymentID)
	if err != nil {
		return nil, nil, err
	}
	before := *p
	if p.Type != lipa.TypeSTK || p.Status != lipa.StatusPending || (p.CheckoutRequestID != "" && p.CheckoutRequestID != cb.CheckoutRequestID) {
		return nil, nil, lipa.Errorf(lipa.Conflict, "payment_not_pending", "payment %s is %s %s with CheckoutRequestID %q; only a PENDING STK payment without one can take this callback",
			p.ID, p.Type, p.Status, p.CheckoutRequestID)
	}
	p.CheckoutRequestID = cb.CheckoutRequestID
	if p.MerchantRequestID == "" {
		p.MerchantRequestID = cb.MerchantRequestID
	}
	p.UpdatedAt = g.clock()
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return nil, nil, err
	}
	if _, err := g.applyCallbackTx(ctx, tx, p, cb, m.ID, true); err != nil {
		return nil, nil, err
	}
	after, err := tx.InboundByID(ctx, m.ID)
	if err != nil {
		return nil, nil, err
	}
	if after.Outcome != sqlstore.OutcomeApplied && after.Outcome != sqlstore.OutcomeDuplicate {
		// Rolled back by the caller: nothing changes.
		return nil, nil, lipa.Errorf(lipa.Conflict, "callback_not_applicable", "the callback cannot be applied to payment %s: %s", p.ID, after.Note).
			With("note", after.Note)
	}
	return &before, p, nil
}

// Settlement is an operator's verdict on a payment.
type Settlement struct {
	Status  lipa.Status // lipa.StatusSuccess or lipa.StatusFailed
	Receipt string      // for SUCCESS, required: the M-Pesa receipt the operator found (daraja.ValidReceipt)
}

// ResolveSettle settles the PENDING payment of an item as the operator
// found it: SUCCESS with the M-Pesa receipt (from the M-Pesa statement or
// the customer's SMS), or FAILED (failure_reason "settled_by_operator").
// The payment is marked resolved_by "operator", its app gets the usual
// event, and the item closes "settled", audited with reason.
//
// Errors, besides resolve's: Invalid "invalid_status" (not SUCCESS or
// FAILED), "invalid_receipt" (SUCCESS without a receipt of Daraja's shape,
// or FAILED with one); Conflict "no_payment" (the item concerns no
// payment: create-payment or dismiss it), "payment_not_pending",
// "duplicate_receipt" (the receipt is another payment's).
func (g *Gateway) ResolveSettle(ctx context.Context, actor Actor, id int64, s Settlement, reason string) (*ReviewResult, error) {
	s.Receipt = strings.TrimSpace(s.Receipt)
	switch {
	case s.Status != lipa.StatusSuccess && s.Status != lipa.StatusFailed:
		return nil, lipa.InvalidField("invalid_status", "status", "status must be SUCCESS or FAILED")
	case s.Status == lipa.StatusSuccess && !daraja.ValidReceipt(s.Receipt):
		return nil, lipa.InvalidField("invalid_receipt", "receipt",
			"settling SUCCESS needs the M-Pesa receipt number: 1-%d upper-case letters and digits (Daraja's are 10)", daraja.MaxReceiptLength)
	case s.Status == lipa.StatusFailed && s.Receipt != "":
		return nil, lipa.InvalidField("invalid_receipt", "receipt", "a FAILED payment has no receipt")
	}
	return g.resolve(ctx, actor, id, AuditReviewSettle, ResolutionSettled, reason, func(tx *sqlstore.Tx, it *ReviewItem) (*lipa.Payment, *lipa.Payment, error) {
		if it.PaymentID == "" {
			return nil, nil, lipa.Errorf(lipa.Conflict, "no_payment", "review item %d (%s) concerns no payment; use create-payment or dismiss", it.ID, it.Reason)
		}
		p, err := tx.PaymentForUpdate(ctx, it.PaymentID)
		if err != nil {
			return nil, nil, err
		}
		before := *p
		if p.Status != lipa.StatusPending {
			return nil, nil, lipa.Errorf(lipa.Conflict, "payment_not_pending", "payment %s is already %s; dismiss the item if nothing else is to be done", p.ID, p.Status).
				With("status", string(p.Status))
		}
		o := lipa.Outcome{Status: s.Status, Receipt: s.Receipt, ResultDesc: "settled by an operator from the review queue",
			Source: lipa.ResolvedByOperator}
		if s.Status == lipa.StatusFailed {
			o.FailureReason = lipa.ReasonSettledByOperator
		}
		if p.Settle(o, g.clock()) != lipa.DecisionApplied {
			return nil, nil, lipa.Errorf(lipa.Conflict, "payment_not_pending", "payment %s cannot be settled", p.ID)
		}
		if err := tx.UpdatePayment(ctx, p); err != nil {
			return nil, nil, err
		}
		if ev := settledEvent(before.Status, p); ev != "" {
			if err := g.emitTx(ctx, tx, p, ev); err != nil {
				return nil, nil, err
			}
		}
		return &before, p, nil
	})
}

// Correction holds an operator's corrections to a stored C2B
// confirmation; empty fields keep the confirmation's value.
type Correction struct {
	Amount  string // shillings, as lipa.ParseAmount reads them ("100", "100.50")
	Account string // the account number (BillRefNumber)
	Phone   string // the payer's phone number, any common Kenyan form
}

// ResolveCreatePayment creates the SUCCESS C2B intake payment a stored
// confirmation should have made, with the operator's corrections (amount,
// account, phone), as ReceiveC2BConfirmation would have: same checks
// (amount above zero, a TransID of Daraja's shape and not already a
// payment's receipt, an MSISDN), same c2b.received events. The item
// closes "payment_created", audited with reason.
//
// Errors, besides resolve's: Conflict "not_a_confirmation" (the item holds
// no C2B confirmation), "invalid_receipt" (the TransID cannot be a
// receipt), "duplicate_payment" (a payment has that receipt already);
// Invalid "invalid_amount", "invalid_phone_number", "invalid_account".
func (g *Gateway) ResolveCreatePayment(ctx context.Context, actor Actor, id int64, c Correction, reason string) (*ReviewResult, error) {
	var created *lipa.Payment
	res, err := g.resolve(ctx, actor, id, AuditReviewCreatePayment, ResolutionPaymentCreated, reason, func(tx *sqlstore.Tx, it *ReviewItem) (*lipa.Payment, *lipa.Payment, error) {
		if it.InboundID == 0 || it.InboundKind != sqlstore.InboundC2BConfirmation {
			return nil, nil, lipa.Errorf(lipa.Conflict, "not_a_confirmation", "review item %d (%s) holds no C2B confirmation", it.ID, it.Reason)
		}
		m, err := tx.InboundByID(ctx, it.InboundID)
		if err != nil {
			return nil, nil, err
		}
		n, err := daraja.ParseC2BNotification(m.Body)
		if err != nil {
			n = &daraja.C2BNotification{}
		}
		if !daraja.ValidReceipt(n.TransID) {
			return nil, nil, lipa.Errorf(lipa.Conflict, "invalid_receipt", "TransID %q is not an M-Pesa receipt number; no payment can be made of this confirmation", reviewText(n.TransID))
		}
		p, err := g.correctedC2BPayment(n, c)
		if err != nil {
			return nil, nil, err
		}
		if err := tx.Lock(ctx, "receipt:"+n.TransID); err != nil {
			return nil, nil, err
		}
		if other, err := tx.PaymentByReceipt(ctx, n.TransID); err == nil {
			return nil, nil, lipa.Errorf(lipa.Conflict, "duplicate_payment", "receipt %s is already payment %s", n.TransID, other.ID).With("payment_id", string(other.ID))
		} else if lipa.ErrorKind(err) != lipa.NotFound {
			return nil, nil, err
		}
		if err := tx.InsertPayment(ctx, p); err != nil {
			return nil, nil, err
		}
		if err := g.emitTx(ctx, tx, p, EventC2BReceived); err != nil {
			return nil, nil, err
		}
		if err := tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeApplied, p.ID,
			fmt.Sprintf("payment created by an operator from review item %d (was %s: %s)", it.ID, m.Outcome, m.Note)); err != nil {
			return nil, nil, err
		}
		created = p
		return nil, p, nil
	})
	if err == nil {
		g.log.Info("c2b payment recorded in the intake pool by an operator", "payment_id", created.ID, "trans_id", created.MpesaReceiptNumber,
			"amount", created.Amount.String(), "review_id", id)
	}
	return res, err
}

// correctedC2BPayment builds the intake payment of confirmation n with the
// operator's corrections.
func (g *Gateway) correctedC2BPayment(n *daraja.C2BNotification, c Correction) (*lipa.Payment, error) {
	amountText := n.TransAmount
	if strings.TrimSpace(c.Amount) != "" {
		amountText = c.Amount
	}
	amount, err := lipa.ParseAmount(amountText)
	if err != nil || amount <= 0 {
		return nil, lipa.InvalidField("invalid_amount", "amount", "amount %q is not a number of shillings above zero; give the amount M-Pesa moved (e.g. 100 or 100.50)", reviewText(amountText))
	}
	phone := n.MSISDN
	if strings.TrimSpace(c.Phone) != "" {
		ph, err := lipa.ParsePhone(c.Phone)
		if err != nil {
			return nil, err
		}
		phone = string(ph)
	}
	if phone == "" {
		return nil, lipa.InvalidField("invalid_phone_number", "phone", "the confirmation has no MSISDN; give the payer's phone number")
	}
	account := n.BillRefNumber
	if c.Account != "" {
		account = strings.TrimSpace(c.Account)
		if utf8.RuneCountInString(account) > MaxReferenceLength || hasControl(account) {
			return nil, lipa.InvalidField("invalid_account", "account", "account must be at most %d characters, without control characters", MaxReferenceLength)
		}
	}
	shortCode := n.BusinessShortCode
	if shortCode == "" {
		shortCode = g.cfg.ShortCode
	}
	now := g.clock()
	txDate, _ := lipa.ParseDarajaTime(n.TransTime)
	return &lipa.Payment{
		ID: lipa.PaymentID(newID("pay_")), Type: lipa.TypeC2B, Status: lipa.StatusSuccess,
		PhoneNumber: reviewText(phone), Amount: amount, Currency: "KES",
		Reference: reviewText(account), AccountReference: reviewText(account), Description: "C2B payment",
		ShortCode: reviewText(shortCode), TransactionType: reviewText(n.TransactionType),
		MpesaReceiptNumber: n.TransID, ResultCode: "0", ResultDesc: "C2B confirmation, corrected by an operator",
		ResolvedBy: lipa.ResolvedByConfirmation, TransactionDate: txDate, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// ResolveDismiss closes an item with nothing changed: the operator has
// dealt with it elsewhere, or there is nothing to do (a forged payload, a
// repeat). A payment the item concerns stays as it is. Audited with
// reason. Errors: resolve's.
func (g *Gateway) ResolveDismiss(ctx context.Context, actor Actor, id int64, reason string) (*ReviewResult, error) {
	return g.resolve(ctx, actor, id, AuditReviewDismiss, ResolutionDismissed, reason, nil)
}

// errUnderReview is settle's refusal to expire a payment a person must
// decide on (see holdForReviewTx).
var errUnderReview = errors.New("left PENDING for the review queue instead of expiring")
