package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

// ReviewItem is one row of the review queue: a stored Safaricom payload that
// was not applied cleanly, or a payment Lipa cannot settle by itself.
type ReviewItem struct {
	ID                int64
	Reason            string // the gateway's review reason code
	State             string // "open" or "resolved"
	InboundID         int64  // the stored payload; 0 when the item is about a payment only
	InboundKind       InboundKind
	PaymentID         lipa.PaymentID
	CheckoutRequestID string
	Receipt           string // TransID or MpesaReceiptNumber the payload names
	Note              string
	CreatedAt         time.Time

	Resolution       string // empty while open
	ResolutionReason string
	ResolvedByKind   string
	ResolvedBy       string
	ResolvedAt       time.Time
	ResultPaymentID  lipa.PaymentID // the payment a resolution created or settled
}

// The states of a review item.
const (
	ReviewOpen     = "open"
	ReviewResolved = "resolved"
)

const reviewColumns = `r.id, r.reason, r.state, COALESCE(r.inbound_id, 0), COALESCE(m.kind, ''), r.payment_id, r.checkout_request_id,
	r.receipt, r.note, r.created_at, r.resolution, r.resolution_reason, r.resolved_by_kind, r.resolved_by, r.resolved_at, r.result_payment_id`

const reviewFrom = " FROM review_items r LEFT JOIN inbound_messages m ON m.id = r.inbound_id "

func scanReviewItem(row interface{ Scan(...any) error }) (*ReviewItem, error) {
	var it ReviewItem
	var resolvedAt sql.NullTime
	err := row.Scan(&it.ID, &it.Reason, &it.State, &it.InboundID, &it.InboundKind, &it.PaymentID, &it.CheckoutRequestID, &it.Receipt, &it.Note,
		&it.CreatedAt, &it.Resolution, &it.ResolutionReason, &it.ResolvedByKind, &it.ResolvedBy, &resolvedAt, &it.ResultPaymentID)
	if err != nil {
		return nil, err
	}
	it.CreatedAt, it.ResolvedAt = it.CreatedAt.UTC(), fromNull(resolvedAt)
	return &it, nil
}

// InsertReviewItem adds an open item to the review queue and sets its ID
// and State.
func (t *Tx) InsertReviewItem(ctx context.Context, it *ReviewItem) error {
	var inbound any
	if it.InboundID != 0 {
		inbound = it.InboundID
	}
	it.State = ReviewOpen
	err := t.queryRow(ctx, `INSERT INTO review_items (reason, state, inbound_id, payment_id, checkout_request_id, receipt, note, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, it.Reason, it.State, inbound, it.PaymentID, it.CheckoutRequestID,
		it.Receipt, it.Note, dbTime(it.CreatedAt)).Scan(&it.ID)
	if err != nil {
		return fmt.Errorf("insert review item: %w", err)
	}
	return nil
}

// ReviewItemByID returns one review item, or a NotFound error with code
// "review_item_not_found". On PostgreSQL the row is locked until the
// transaction ends, so two resolutions of one item take turns.
func (t *Tx) ReviewItemByID(ctx context.Context, id int64) (*ReviewItem, error) {
	q := "SELECT " + reviewColumns + reviewFrom + "WHERE r.id = ?"
	if t.backend == Postgres {
		q += " FOR UPDATE OF r"
	}
	it, err := scanReviewItem(t.queryRow(ctx, q, id))
	return it, notFound(err, "review_item_not_found", fmt.Sprintf("no review item %d", id))
}

// ReviewFilter selects review items. Empty fields do not filter.
type ReviewFilter struct {
	State     string // ReviewOpen, ReviewResolved, or "" for both
	Reason    string
	PaymentID lipa.PaymentID
	InboundID int64
	Before    int64 // only items with a smaller ID (paging newest first); 0 for none
	Limit     int
}

// ReviewItems returns the items matching f, newest first, at most f.Limit.
func (t *Tx) ReviewItems(ctx context.Context, f ReviewFilter) ([]ReviewItem, error) {
	q := "SELECT " + reviewColumns + reviewFrom + "WHERE 1 = 1"
	var args []any
	add := func(cond string, v any) { q += " AND " + cond; args = append(args, v) }
	if f.State != "" {
		add("r.state = ?", f.State)
	}
	if f.Reason != "" {
		add("r.reason = ?", f.Reason)
	}
	if f.PaymentID != "" {
		add("r.payment_id = ?", f.PaymentID)
	}
	if f.InboundID != 0 {
		add("r.inbound_id = ?", f.InboundID)
	}
	if f.Before != 0 {
		add("r.id < ?", f.Before)
	}
	q += " ORDER BY r.id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("review items: %w", err)
	}
	defer rows.Close()
	var out []ReviewItem
	for rows.Next() {
		it, err := scanReviewItem(rows)
		if err != nil {
			return nil, fmt.Errorf("scan review item: %w", err)
		}
		out = append(out, *it)
	}
	return out, rows.Err()
}

// CountReviewItems counts the items matching f (its Before and Limit are
// ignored).
func (t *Tx) CountReviewItems(ctx context.Context, f ReviewFilter) (int, error) {
	q := "SELECT COUNT(*) FROM review_items WHERE 1 = 1"
	var args []any
	add := func(cond string, v any) { q += " AND " + cond; args = append(args, v) }
	if f.State != "" {
		add("state = ?", f.State)
	}
	if f.Reason != "" {
		add("reason = ?", f.Reason)
	}
	if f.PaymentID != "" {
		add("payment_id = ?", f.PaymentID)
	}
	if f.InboundID != 0 {
		add("inbound_id = ?", f.InboundID)
	}
	var n int
	if err := t.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count review items: %w", err)
	}
	return n, nil
}

// Resolution is how an open review item was closed.
type Resolution struct {
	Resolution      string
	Reason          string
	ByKind, By      string
	At              time.Time
	ResultPaymentID lipa.PaymentID
}

// ResolveReviewItem closes an open item. It reports false, and changes
// nothing, when the item is not open (resolved meanwhile, or unknown).
func (t *Tx) ResolveReviewItem(ctx context.Context, id int64, r Resolution) (bool, error) {
	res, err := t.exec(ctx, `UPDATE review_items SET state = ?, resolution = ?, resolution_reason = ?, resolved_by_kind = ?,
		resolved_by = ?, resolved_at = ?, result_payment_id = ? WHERE id = ? AND state = ?`,
		ReviewResolved, r.Resolution, r.Reason, r.ByKind, r.By, dbTime(r.At), r.ResultPaymentID, id, ReviewOpen)
	if err != nil {
		return false, fmt.Errorf("resolve review item %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("resolve review item %d: %w", id, err)
	}
	return n == 1, nil
}
