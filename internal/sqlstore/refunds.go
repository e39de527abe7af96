package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

// The kinds of stored message that the initiator APIs and Pull
// Transactions bring (InboundKind).
const (
	InboundReversalResult  InboundKind = "reversal_result"  // a Reversal Result at Lipa's result URL
	InboundReversalTimeout InboundKind = "reversal_timeout" // a Reversal's queue timeout notice
	InboundStatusResult    InboundKind = "status_result"    // a Transaction Status Result
	InboundStatusTimeout   InboundKind = "status_timeout"   // a Transaction Status queue timeout notice
	InboundPullCallback    InboundKind = "pull_callback"    // whatever Safaricom sends to the Pull registration's CallBackURL
	InboundPullPage        InboundKind = "pull_page"        // one page of Daraja's answer to a Pull query made by Lipa
)

const refundColumns = `id, payment_id, app_id, status, amount_cents, reason, receipt, COALESCE(originator_conversation_id, ''),
	COALESCE(conversation_id, ''), result_code, result_desc, failure_reason, reversal_receipt, resolved_by, approval_required,
	decided_by, decision_reason, decided_at, created_at, updated_at, completed_at`

func scanRefund(row interface{ Scan(...any) error }) (*lipa.Refund, error) {
	var r lipa.Refund
	var decided, completed sql.NullTime
	err := row.Scan(&r.ID, &r.PaymentID, &r.AppID, &r.Status, &r.Amount, &r.Reason, &r.Receipt, &r.OriginatorConversationID,
		&r.ConversationID, &r.ResultCode, &r.ResultDesc, &r.FailureReason, &r.ReversalReceipt, &r.ResolvedBy, &r.ApprovalRequired,
		&r.DecidedBy, &r.DecisionReason, &decided, &r.CreatedAt, &r.UpdatedAt, &completed)
	if err != nil {
		return nil, err
	}
	r.DecidedAt, r.CompletedAt = fromNull(decided), fromNull(completed)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

// RefundWork is how the background refund pass handles a refund: whether
// the reversal has been sent, when it is next looked at, and how often it
// has been.
type RefundWork struct {
	SentAt      time.Time // zero: not sent yet, or provably never reached Daraja
	NextCheckAt time.Time
	Attempts    int
}

// InsertRefund stores a new refund with its work schedule. A second live
// refund of the same payment (AWAITING_APPROVAL, PENDING or SUCCESS) is a
// Conflict error with code "already_refunded".
func (t *Tx) InsertRefund(ctx context.Context, r *lipa.Refund, w RefundWork, leaseUntil time.Time) error {
	res, err := t.exec(ctx, `INSERT INTO refunds (id, payment_id, app_id, status, amount_cents, reason, receipt, approval_required,
		sent_at, lease_until, next_check_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		r.ID, r.PaymentID, r.AppID, r.Status, int64(r.Amount), storableText(r.Reason), r.Receipt, r.ApprovalRequired,
		dbTime(w.SentAt), dbTime(leaseUntil), dbTime(w.NextCheckAt), dbTime(r.CreatedAt), dbTime(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert refund: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lipa.Errorf(lipa.Conflict, "already_refunded", "payment %s already has a refund under way or done", r.PaymentID).
			With("payment_id", string(r.PaymentID))
	}
	return nil
}

// UpdateRefund writes what results, answers and operators change: status,
// Daraja's IDs and result, the reversal receipt, the decision, times.
func (t *Tx) UpdateRefund(ctx context.Context, r *lipa.Refund) error {
	_, err := t.exec(ctx, `UPDATE refunds SET status = ?, originator_conversation_id = ?, conversation_id = ?, result_code = ?,
		result_desc = ?, failure_reason = ?, reversal_receipt = ?, resolved_by = ?, decided_by = ?, decision_reason = ?,
		decided_at = ?, updated_at = ?, completed_at = ? WHERE id = ?`,
		r.Status, nullIfEmpty(r.OriginatorConversationID), nullIfEmpty(r.ConversationID), storableText(r.ResultCode),
		storableText(r.ResultDesc), r.FailureReason, storableText(r.ReversalReceipt), r.ResolvedBy, r.DecidedBy,
		storableText(r.DecisionReason), dbTime(r.DecidedAt), dbTime(r.UpdatedAt), dbTime(r.CompletedAt), r.ID)
	if err != nil {
		return fmt.Errorf("update refund %s: %w", r.ID, err)
	}
	return nil
}

// ScheduleRefund sets a refund's work schedule and releases its lease.
func (t *Tx) ScheduleRefund(ctx context.Context, id lipa.RefundID, w RefundWork) error {
	_, err := t.exec(ctx, "UPDATE refunds SET sent_at = ?, next_check_at = ?, check_attempts = ?, lease_until = NULL WHERE id = ?",
		dbTime(w.SentAt), dbTime(w.NextCheckAt), w.Attempts, id)
	if err != nil {
		return fmt.Errorf("schedule refund %s: %w", id, err)
	}
	return nil
}

// RefundWorkOf returns a refund's work schedule.
func (t *Tx) RefundWorkOf(ctx context.Context, id lipa.RefundID) (RefundWork, error) {
	var w RefundWork
	var sent, next sql.NullTime
	err := t.queryRow(ctx, "SELECT sent_at, next_check_at, check_attempts FROM refunds WHERE id = ?", id).Scan(&sent, &next, &w.Attempts)
	w.SentAt, w.NextCheckAt = fromNull(sent), fromNull(next)
	return w, notFound(err, "refund_not_found", fmt.Sprintf("no refund %q", id))
}

// LeaseRefundSend takes the right to send refund id's reversal: it holds
// when the refund is PENDING, not sent, and nobody else holds a lease at
// now. It marks the refund sent (sentAt) and leased until leaseUntil, and
// reports whether it did: of any number of callers at once, one gets true.
func (t *Tx) LeaseRefundSend(ctx context.Context, id lipa.RefundID, now, sentAt, leaseUntil time.Time) (bool, error) {
	res, err := t.exec(ctx, `UPDATE refunds SET sent_at = ?, lease_until = ? WHERE id = ? AND status = 'PENDING' AND sent_at IS NULL
		AND (lease_until IS NULL OR lease_until <= ?)`, dbTime(sentAt), dbTime(leaseUntil), id, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("lease refund %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LeaseDueRefunds leases up to limit PENDING refunds whose next look is due
// at now and that nobody else holds, until leaseUntil, and returns them with
// their schedules. On PostgreSQL the rows are picked with FOR UPDATE SKIP
// LOCKED; SQLite has one writer.
func (t *Tx) LeaseDueRefunds(ctx context.Context, now, leaseUntil time.Time, limit int) ([]lipa.Refund, []RefundWork, error) {
	q := "SELECT " + refundColumns + `, sent_at, next_check_at, check_attempts FROM refunds WHERE status = 'PENDING'
		AND next_check_at IS NOT NULL AND next_check_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_check_at LIMIT ?`
	if t.backend == Postgres {
		q += " FOR UPDATE SKIP LOCKED"
	}
	rows, err := t.query(ctx, q, dbTime(now), dbTime(now), limit)
	if err != nil {
		return nil, nil, fmt.Errorf("due refunds: %w", err)
	}
	var rs []lipa.Refund
	var ws []RefundWork
	for rows.Next() {
		var w RefundWork
		var sent, next sql.NullTime
		var r lipa.Refund
		var decided, completed sql.NullTime
		if err := rows.Scan(&r.ID, &r.PaymentID, &r.AppID, &r.Status, &r.Amount, &r.Reason, &r.Receipt, &r.OriginatorConversationID,
			&r.ConversationID, &r.ResultCode, &r.ResultDesc, &r.FailureReason, &r.ReversalReceipt, &r.ResolvedBy, &r.ApprovalRequired,
			&r.DecidedBy, &r.DecisionReason, &decided, &r.CreatedAt, &r.UpdatedAt, &completed, &sent, &next, &w.Attempts); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("scan refund: %w", err)
		}
		r.DecidedAt, r.CompletedAt = fromNull(decided), fromNull(completed)
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		w.SentAt, w.NextCheckAt = fromNull(sent), fromNull(next)
		rs, ws = append(rs, r), append(ws, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, r := range rs {
		if _, err := t.exec(ctx, "UPDATE refunds SET lease_until = ? WHERE id = ?", dbTime(leaseUntil), r.ID); err != nil {
			return nil, nil, fmt.Errorf("lease refund %s: %w", r.ID, err)
		}
	}
	return rs, ws, nil
}

// RefundByID returns any refund by ID, or a NotFound error with code
// "refund_not_found".
func (t *Tx) RefundByID(ctx context.Context, id lipa.RefundID) (*lipa.Refund, error) {
	r, err := scanRefund(t.queryRow(ctx, "SELECT "+refundColumns+" FROM refunds WHERE id = ?", id))
	return r, notFound(err, "refund_not_found", fmt.Sprintf("no refund %q", id))
}

// RefundForUpdate returns any refund by ID, like RefundByID, and on
// PostgreSQL locks its row until the transaction ends.
func (t *Tx) RefundForUpdate(ctx context.Context, id lipa.RefundID) (*lipa.Refund, error) {
	q := "SELECT " + refundColumns + " FROM refunds WHERE id = ?"
	if t.backend == Postgres {
		q += " FOR UPDATE"
	}
	r, err := scanRefund(t.queryRow(ctx, q, id))
	return r, notFound(err, "refund_not_found", fmt.Sprintf("no refund %q", id))
}

// RefundForApp returns the app's refund by ID; another app's, or none, is
// a NotFound error with code "refund_not_found".
func (t *Tx) RefundForApp(ctx context.Context, app lipa.AppID, id lipa.RefundID) (*lipa.Refund, error) {
	r, err := scanRefund(t.queryRow(ctx, "SELECT "+refundColumns+" FROM refunds WHERE id = ? AND app_id = ?", id, app))
	return r, notFound(err, "refund_not_found", fmt.Sprintf("no refund %q is visible to this app", id))
}

// RefundByConversation returns the refund whose reversal Daraja
// acknowledged with that ConversationID or OriginatorConversationID
// (either may be empty, not both), or a NotFound error.
func (t *Tx) RefundByConversation(ctx context.Context, conversationID, originatorID string) (*lipa.Refund, error) {
	r, err := scanRefund(t.queryRow(ctx, "SELECT "+refundColumns+` FROM refunds
		WHERE (conversation_id = ? AND ? <> '') OR (originator_conversation_id = ? AND ? <> '') ORDER BY created_at LIMIT 1`,
		conversationID, conversationID, originatorID, originatorID))
	return r, notFound(err, "refund_not_found", "no refund has this conversation")
}

// RefundsOfPayment returns every refund of a payment, oldest first.
func (t *Tx) RefundsOfPayment(ctx context.Context, id lipa.PaymentID) ([]lipa.Refund, error) {
	return t.refunds(ctx, "WHERE payment_id = ? ORDER BY created_at, id", id)
}

// RefundFilter selects refunds for operators; empty fields do not filter.
type RefundFilter struct {
	Status    lipa.RefundStatus
	PaymentID lipa.PaymentID
	Limit     int
}

// Refunds returns the refunds matching f, newest first, at most f.Limit.
func (t *Tx) Refunds(ctx context.Context, f RefundFilter) ([]lipa.Refund, error) {
	return t.refunds(ctx, "WHERE (? = '' OR status = ?) AND (? = '' OR payment_id = ?) ORDER BY created_at DESC, id DESC LIMIT ?",
		f.Status, f.Status, f.PaymentID, f.PaymentID, f.Limit)
}

func (t *Tx) refunds(ctx context.Context, where string, args ...any) ([]lipa.Refund, error) {
	rows, err := t.query(ctx, "SELECT "+refundColumns+" FROM refunds "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("refunds: %w", err)
	}
	defer rows.Close()
	var out []lipa.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("scan refund: %w", err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// StatusQuery is one Transaction Status request Lipa made, and M-Pesa's
// answer once it came.
type StatusQuery struct {
	ID                     string // "tsq_…"
	Purpose                string
	Receipt                string // the TransactionID asked about; may be empty
	OriginalConversationID string // the OriginalConversationID asked about; may be empty
	RefundID               lipa.RefundID
	PaymentID              lipa.PaymentID
	AppID                  lipa.AppID
	InboundID              int64 // a stored payload held until the answer (a C2B confirmation); 0 when none
	// OriginatorConversationID and ConversationID are Daraja's IDs of the
	// request, from its acknowledgement.
	OriginatorConversationID string
	ConversationID           string
	State                    string // StatusSending, StatusSent, StatusAnswered, StatusFailed
	ResultCode               string
	ResultDesc               string
	ResultInboundID          int64 // the stored Result; 0 until answered
	CreatedAt                time.Time
	AnsweredAt               time.Time
}

// The states of a StatusQuery.
const (
	StatusSending  = "sending"  // stored, Daraja being asked
	StatusSent     = "sent"     // Daraja acknowledged it; the answer is awaited
	StatusAnswered = "answered" // the Result came
	StatusFailed   = "failed"   // Daraja refused it, or it expired in the queue
)

const statusQueryColumns = `id, purpose, receipt, original_conversation_id, refund_id, payment_id, app_id, COALESCE(inbound_id, 0),
	COALESCE(originator_conversation_id, ''), COALESCE(conversation_id, ''), state, result_code, result_desc,
	COALESCE(result_inbound_id, 0), created_at, answered_at`

func scanStatusQuery(row interface{ Scan(...any) error }) (*StatusQuery, error) {
	var q StatusQuery
	var answered sql.NullTime
	err := row.Scan(&q.ID, &q.Purpose, &q.Receipt, &q.OriginalConversationID, &q.RefundID, &q.PaymentID, &q.AppID, &q.InboundID,
		&q.OriginatorConversationID, &q.ConversationID, &q.State, &q.ResultCode, &q.ResultDesc, &q.ResultInboundID,
		&q.CreatedAt, &answered)
	if err != nil {
		return nil, err
	}
	q.CreatedAt, q.AnsweredAt = q.CreatedAt.UTC(), fromNull(answered)
	return &q, nil
}

func nullIfZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// InsertStatusQuery stores a new Transaction Status request.
func (t *Tx) InsertStatusQuery(ctx context.Context, q *StatusQuery) error {
	_, err := t.exec(ctx, `INSERT INTO status_queries (id, purpose, receipt, original_conversation_id, refund_id, payment_id, app_id,
		inbound_id, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		q.ID, q.Purpose, storableText(q.Receipt), storableText(q.OriginalConversationID), q.RefundID, q.PaymentID, q.AppID,
		nullIfZero(q.InboundID), q.State, dbTime(q.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert status query: %w", err)
	}
	return nil
}

// UpdateStatusQuery writes a request's acknowledgement, state and answer.
func (t *Tx) UpdateStatusQuery(ctx context.Context, q *StatusQuery) error {
	_, err := t.exec(ctx, `UPDATE status_queries SET originator_conversation_id = ?, conversation_id = ?, state = ?, result_code = ?,
		result_desc = ?, result_inbound_id = ?, answered_at = ? WHERE id = ?`,
		nullIfEmpty(q.OriginatorConversationID), nullIfEmpty(q.ConversationID), q.State, storableText(q.ResultCode),
		storableText(q.ResultDesc), nullIfZero(q.ResultInboundID), dbTime(q.AnsweredAt), q.ID)
	if err != nil {
		return fmt.Errorf("update status query %s: %w", q.ID, err)
	}
	return nil
}

// StatusQueryByID returns one request, or a NotFound error with code
// "status_query_not_found".
func (t *Tx) StatusQueryByID(ctx context.Context, id string) (*StatusQuery, error) {
	q, err := scanStatusQuery(t.queryRow(ctx, "SELECT "+statusQueryColumns+" FROM status_queries WHERE id = ?", id))
	return q, notFound(err, "status_query_not_found", fmt.Sprintf("no status query %q", id))
}

// StatusQueryByConversation returns the request Daraja acknowledged with
// that ConversationID or OriginatorConversationID (either may be empty, not
// both), locked on PostgreSQL until the transaction ends, or a NotFound
// error.
func (t *Tx) StatusQueryByConversation(ctx context.Context, conversationID, originatorID string) (*StatusQuery, error) {
	q := "SELECT " + statusQueryColumns + ` FROM status_queries
		WHERE (conversation_id = ? AND ? <> '') OR (originator_conversation_id = ? AND ? <> '') ORDER BY created_at LIMIT 1`
	if t.backend == Postgres {
		q += " FOR UPDATE"
	}
	sq, err := scanStatusQuery(t.queryRow(ctx, q, conversationID, conversationID, originatorID, originatorID))
	return sq, notFound(err, "status_query_not_found", "no status query has this conversation")
}

// LatestStatusQuery returns the newest request about receipt for purpose
// made at or after since, or a NotFound error.
func (t *Tx) LatestStatusQuery(ctx context.Context, receipt, purpose string, since time.Time) (*StatusQuery, error) {
	q, err := scanStatusQuery(t.queryRow(ctx, "SELECT "+statusQueryColumns+` FROM status_queries
		WHERE receipt = ? AND purpose = ? AND created_at >= ? AND state <> 'failed' ORDER BY created_at DESC LIMIT 1`,
		receipt, purpose, dbTime(since)))
	return q, notFound(err, "status_query_not_found", "no recent status query")
}

// RecentInbound returns the stored messages of the given kinds with the
// given outcome received at or after since, oldest first, at most limit.
func (t *Tx) RecentInbound(ctx context.Context, kinds []InboundKind, outcome InboundOutcome, since time.Time, limit int) ([]Inbound, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	where, args := "WHERE kind IN (?", []any{kinds[0]}
	for _, k := range kinds[1:] {
		where += ", ?"
		args = append(args, k)
	}
	where += ") AND outcome = ? AND received_at >= ? ORDER BY id LIMIT ?"
	args = append(args, outcome, dbTime(since), limit)
	return t.inbound(ctx, where, args...)
}

// PullCandidates returns (at most limit) STK payments to phone for amount,
// created from from to to, that a transaction Pull Transactions lists may
// be: PENDING ones, SUCCESS ones without a receipt (settled by an STK push
// query), and, so that a contradiction is seen, FAILED ones. Oldest first.
func (t *Tx) PullCandidates(ctx context.Context, phone string, amount lipa.Amount, from, to time.Time, limit int) ([]lipa.Payment, error) {
	return t.queryPayments(ctx, "pull candidates", "SELECT "+paymentColumns+paymentFrom+`WHERE p.payment_type = 'STK' AND p.phone_number = ?
		AND p.amount_cents = ? AND p.created_at >= ? AND p.created_at <= ?
		AND (p.status IN ('PENDING', 'FAILED') OR (p.status = 'SUCCESS' AND p.mpesa_receipt_number IS NULL))
		ORDER BY p.created_at LIMIT ?`, phone, int64(amount), dbTime(from), dbTime(to), limit)
}

// OpenReviewForReceipt reports whether an open review item with reason
// names receipt.
func (t *Tx) OpenReviewForReceipt(ctx context.Context, reason, receipt string) (bool, error) {
	var n int
	if err := t.queryRow(ctx, "SELECT COUNT(*) FROM review_items WHERE state = ? AND reason = ? AND receipt = ?",
		ReviewOpen, reason, storableText(receipt)).Scan(&n); err != nil {
		return false, fmt.Errorf("count review items: %w", err)
	}
	return n > 0, nil
}

// MarkRefundSent marks a PENDING refund that was not sent as sent at
// sentAt, and reports whether it did (false: sent meanwhile, or no longer
// PENDING). The caller then sends the reversal.
func (t *Tx) MarkRefundSent(ctx context.Context, id lipa.RefundID, sentAt time.Time) (bool, error) {
	res, err := t.exec(ctx, "UPDATE refunds SET sent_at = ? WHERE id = ? AND status = 'PENDING' AND sent_at IS NULL", dbTime(sentAt), id)
	if err != nil {
		return false, fmt.Errorf("mark refund %s sent: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AppByID returns the app with that ID, or a NotFound error.
func (t *Tx) AppByID(ctx context.Context, id lipa.AppID) (*lipa.App, error) {
	a, err := scanApp(t.queryRow(ctx, "SELECT "+appColumns+" FROM apps WHERE id = ?", id))
	return a, notFound(err, "app_not_found", fmt.Sprintf("no app %q", id))
}
