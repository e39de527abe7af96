package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
)

// InboundKind names what Safaricom sent.
type InboundKind string

// The kinds of inbound message.
const (
	InboundSTKCallback     InboundKind = "stk_callback"
	InboundC2BValidation   InboundKind = "c2b_validation"
	InboundC2BConfirmation InboundKind = "c2b_confirmation"
	InboundSTKQuery        InboundKind = "stk_query" // Daraja's answer to an STK push query made by the reconciler
)

// InboundOutcome says what Lipa did with an inbound message.
type InboundOutcome string

// The outcomes of an inbound message.
const (
	OutcomeReceived    InboundOutcome = "received"    // stored, not interpreted yet (or interpretation failed)
	OutcomeApplied     InboundOutcome = "applied"     // changed a payment, or created one (C2B)
	OutcomeDuplicate   InboundOutcome = "duplicate"   // repeated what a payment already says
	OutcomeConflict    InboundOutcome = "conflict"    // contradicted a final payment; flagged, not applied
	OutcomeUnmatched   InboundOutcome = "unmatched"   // no payment has its CheckoutRequestID (yet)
	OutcomeMalformed   InboundOutcome = "malformed"   // not a body Lipa can read
	OutcomeAnswered    InboundOutcome = "answered"    // a C2B validation request that was answered
	OutcomeRejected    InboundOutcome = "rejected"    // failed a callback check (path token, source address); never interpreted
	OutcomeUnconfirmed InboundOutcome = "unconfirmed" // a SUCCESS callback waiting for an STK push query to confirm it
)

// Inbound is one payload Safaricom sent to Lipa, stored raw before it is
// interpreted.
type Inbound struct {
	ID                int64
	Kind              InboundKind
	Path              string
	SourceAddr        string
	ReceivedAt        time.Time
	Body              []byte
	CheckoutRequestID string // STK callbacks, when readable
	TransID           string // C2B, when readable
	PaymentID         lipa.PaymentID
	Outcome           InboundOutcome
	Note              string
}

// InsertInbound stores an inbound message and sets its ID. The body is
// stored as bytes, exactly as given (nil as empty); the text fields as
// storableText makes them, so no value a caller sent can make the insert
// fail, and both databases store the same.
func (t *Tx) InsertInbound(ctx context.Context, m *Inbound) error {
	q := `INSERT INTO inbound_messages (kind, path, source_addr, received_at, body, checkout_request_id, trans_id, payment_id, outcome, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	body := m.Body
	if body == nil {
		body = []byte{}
	}
	err := t.queryRow(ctx, q, m.Kind, storableText(m.Path), storableText(m.SourceAddr), dbTime(m.ReceivedAt), body,
		storableText(m.CheckoutRequestID), storableText(m.TransID), m.PaymentID, m.Outcome, storableText(m.Note)).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("insert inbound message: %w", err)
	}
	return nil
}

// SetInboundOutcome records what was done with an inbound message.
func (t *Tx) SetInboundOutcome(ctx context.Context, id int64, outcome InboundOutcome, paymentID lipa.PaymentID, note string) error {
	_, err := t.exec(ctx, "UPDATE inbound_messages SET outcome = ?, payment_id = ?, note = ? WHERE id = ?", outcome, paymentID, storableText(note), id)
	if err != nil {
		return fmt.Errorf("update inbound message %d: %w", id, err)
	}
	return nil
}

// UnmatchedCallbacks returns the stored STK callbacks for that
// CheckoutRequestID that found no payment, oldest first.
func (t *Tx) UnmatchedCallbacks(ctx context.Context, checkoutRequestID string) ([]Inbound, error) {
	return t.CallbacksWithOutcome(ctx, checkoutRequestID, OutcomeUnmatched)
}

// CallbacksWithOutcome returns the stored STK callbacks for that
// CheckoutRequestID with that outcome, oldest first.
func (t *Tx) CallbacksWithOutcome(ctx context.Context, checkoutRequestID string, outcome InboundOutcome) ([]Inbound, error) {
	return t.inbound(ctx, "WHERE checkout_request_id = ? AND kind = 'stk_callback' AND outcome = ? ORDER BY id", checkoutRequestID, outcome)
}

// InboundMessages returns the most recent inbound messages of one kind
// (all kinds when kind is empty) with one outcome (any when empty), newest
// first, at most limit.
func (t *Tx) InboundMessages(ctx context.Context, kind InboundKind, outcome InboundOutcome, limit int) ([]Inbound, error) {
	return t.inbound(ctx, "WHERE (? = '' OR kind = ?) AND (? = '' OR outcome = ?) ORDER BY id DESC LIMIT ?",
		kind, kind, outcome, outcome, limit)
}

// InboundByID returns one stored inbound message, or a NotFound error.
func (t *Tx) InboundByID(ctx context.Context, id int64) (*Inbound, error) {
	ms, err := t.inbound(ctx, "WHERE id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, lipa.Errorf(lipa.NotFound, "inbound_not_found", "no stored message %d", id)
	}
	return &ms[0], nil
}

// storableText returns s as text that both databases store unchanged:
// invalid UTF-8 becomes U+FFFD and each NUL character, which PostgreSQL
// refuses in text, becomes the four characters \x00. It is for text derived
// from what an outsider sent (paths, extracted IDs, notes); the raw bytes
// are kept in the body column.
func storableText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\x00`)
}

// inbound runs a query over inbound_messages with the given conditions.
func (t *Tx) inbound(ctx context.Context, where string, args ...any) ([]Inbound, error) {
	rows, err := t.query(ctx, `SELECT id, kind, path, source_addr, received_at, body, checkout_request_id, trans_id, payment_id, outcome, note
		FROM inbound_messages `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("inbound messages: %w", err)
	}
	defer rows.Close()
	var out []Inbound
	for rows.Next() {
		var m Inbound
		if err := rows.Scan(&m.ID, &m.Kind, &m.Path, &m.SourceAddr, &m.ReceivedAt, &m.Body, &m.CheckoutRequestID,
			&m.TransID, &m.PaymentID, &m.Outcome, &m.Note); err != nil {
			return nil, fmt.Errorf("scan inbound message: %w", err)
		}
		m.ReceivedAt = m.ReceivedAt.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
