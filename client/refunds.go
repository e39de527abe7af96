package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/lipa-gateway/lipa"
)

// RefundStatus is where a refund stands: AWAITING_APPROVAL, PENDING,
// SUCCESS, FAILED or REJECTED; the last three are final.
type RefundStatus = lipa.RefundStatus

// The refund statuses.
const (
	RefundAwaitingApproval = lipa.RefundAwaitingApproval // an operator must approve it first
	RefundPending          = lipa.RefundPending          // asked of M-Pesa, waiting for its result
	RefundSucceeded        = lipa.RefundSucceeded        // reversed; ReversalReceipt is the reversal's receipt
	RefundFailed           = lipa.RefundFailed           // not reversed; FailureReason says why
	RefundRejected         = lipa.RefundRejected         // an operator refused it; M-Pesa was never asked
)

// Refund is a refund as Lipa shows it (GET /api/refunds/{id}/): an M-Pesa
// reversal of one whole payment. Values Lipa does not know yet are empty
// strings and zero times.
type Refund struct {
	ID                       string       `json:"id"`                         // "ref_…"
	PaymentID                string       `json:"payment_id"`                 // the payment refunded
	Status                   RefundStatus `json:"status"`                     // see RefundStatus
	Amount                   Amount       `json:"amount"`                     // the payment's amount
	Currency                 string       `json:"currency"`                   // "KES"
	Reason                   string       `json:"reason"`                     // the app's reason
	MpesaReceiptNumber       string       `json:"mpesa_receipt_number"`       // the receipt of the payment reversed
	ReversalReceipt          string       `json:"reversal_receipt"`           // the reversal's own receipt, once SUCCESS
	OriginatorConversationID string       `json:"originator_conversation_id"` // Daraja's ids of the reversal request
	ConversationID           string       `json:"conversation_id"`
	ResultCode               string       `json:"result_code"`    // "0", "R000001", "2001", …
	ResultDesc               string       `json:"result_desc"`    // Daraja's words for it
	FailureReason            string       `json:"failure_reason"` // for FAILED and REJECTED: already_refunded, transaction_not_found, …
	ResolvedBy               string       `json:"resolved_by"`    // result, status, request or operator
	ApprovalRequired         bool         `json:"approval_required"`
	CreatedAt                time.Time    `json:"created_at"`
	UpdatedAt                time.Time    `json:"updated_at"`
	CompletedAt              time.Time    `json:"completed_at"` // zero until final
}

// RefundRequest asks for a refund of one of the app's payments.
type RefundRequest struct {
	PaymentID string
	// Reason says why, 2 to 100 characters; M-Pesa keeps it.
	Reason string
	// Amount, when not zero, must be the payment's amount (M-Pesa
	// reverses whole transactions; ErrPartialRefund otherwise).
	Amount Amount
	// IdempotencyKey identifies this refund across repeats: the same key
	// and request get the first answer and no second reversal. Empty means
	// a new random key.
	IdempotencyKey string
}

// Refund asks Lipa to give a payment's money back (POST
// /api/payments/{id}/refund/), with an Idempotency-Key, repeating it with
// the same key when an answer is lost. The refund comes back PENDING (its
// outcome arrives later: poll RefundByID or wait for EventRefundSucceeded
// and EventRefundFailed), AWAITING_APPROVAL, or FAILED when Daraja refused
// the request. Errors: ErrPaymentNotFound; a *Error with code
// invalid_reason or invalid_amount (400); ErrAlreadyRefunded,
// ErrPaymentNotSuccessful, payment_has_no_receipt, payment_not_claimed
// (409); ErrPartialRefund, ErrIdempotencyKeyReused (422); ErrNotConfigured
// (501).
func (c *Client) Refund(ctx context.Context, r RefundRequest) (*Refund, error) {
	key := r.IdempotencyKey
	if key == "" {
		key = NewIdempotencyKey()
	}
	body := map[string]any{"reason": r.Reason}
	if r.Amount != 0 {
		body["amount"] = r.Amount
	}
	var out Refund
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/api/payments/" + url.PathEscape(r.PaymentID) + "/refund/", body: body,
		header: http.Header{"Idempotency-Key": {key}}, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RefundByID returns one of the app's refunds (GET /api/refunds/{id}/).
// Another app's refund is ErrRefundNotFound, like one that does not exist.
func (c *Client) RefundByID(ctx context.Context, id string) (*Refund, error) {
	var r Refund
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/refunds/" + url.PathEscape(id) + "/", retry: true}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
