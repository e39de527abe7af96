package lipa

import "time"

// RefundID identifies a refund: "ref_" followed by 26 lower-case base32
// characters. It is opaque to apps.
type RefundID string

// RefundStatus is where a refund stands (docs/ARCHITECTURE.md, "Refunds"):
//
//	AWAITING_APPROVAL ─approve─▶ PENDING ─result─▶ SUCCESS | FAILED
//	        └──────reject──────▶ REJECTED
//
// A refund that needs no approval starts PENDING. SUCCESS, FAILED and
// REJECTED are final: nothing moves a refund out of them (Refund.Settle).
type RefundStatus string

// The refund statuses.
const (
	RefundAwaitingApproval RefundStatus = "AWAITING_APPROVAL" // waits for an operator (LIPA_REFUND_APPROVAL)
	RefundPending          RefundStatus = "PENDING"           // asked of M-Pesa (or about to be), waiting for its result
	RefundSucceeded        RefundStatus = "SUCCESS"           // M-Pesa reversed the payment; ReversalReceipt is its receipt
	RefundFailed           RefundStatus = "FAILED"            // M-Pesa did not reverse it; FailureReason says why
	RefundRejected         RefundStatus = "REJECTED"          // an operator refused it; M-Pesa was never asked
)

// Final reports whether s is SUCCESS, FAILED or REJECTED.
func (s RefundStatus) Final() bool {
	return s == RefundSucceeded || s == RefundFailed || s == RefundRejected
}

// RefundFailureReason is a stable snake_case code saying why a refund is
// FAILED or REJECTED. Apps may branch on it.
type RefundFailureReason string

// The refund failure reasons, with the Reversal result codes behind them
// (docs/daraja.md "Reversal").
const (
	RefundAlreadyReversed     RefundFailureReason = "already_refunded"      // R000001: M-Pesa had reversed the payment already (another refund, or the M-Pesa portal)
	RefundTransactionNotFound RefundFailureReason = "transaction_not_found" // R000002, or Transaction Status 2032: M-Pesa has no such transaction (or no such reversal)
	RefundInitiatorRejected   RefundFailureReason = "initiator_rejected"    // 2001 and kin: the initiator's name, password or role is wrong; the operator must fix it
	RefundCredentialLocked    RefundFailureReason = "credential_locked"     // 8006: the initiator's password is locked
	RefundDarajaRejected      RefundFailureReason = "daraja_rejected"       // Daraja refused the reversal request itself
	RefundReversalFailed      RefundFailureReason = "reversal_failed"       // any other result code (insufficient balance, account rules, …)
	RefundRejectedByOperator  RefundFailureReason = "rejected_by_operator"  // REJECTED: an operator refused the approval
	RefundSettledByOperator   RefundFailureReason = "settled_by_operator"   // an operator settled it FAILED from the M-Pesa statement
	RefundNotMade             RefundFailureReason = "reversal_not_found"    // no Result came (or the request expired in M-Pesa's queue) and Transaction Status found no reversal
)

// What settled a refund (Refund.ResolvedBy).
const (
	RefundByResult   = "result"   // the Reversal's Result at Lipa's result URL
	RefundByStatus   = "status"   // a Transaction Status answer, after the Result did not come
	RefundByRequest  = "request"  // Daraja refused the reversal request at once
	RefundByOperator = "operator" // an operator: a rejection, or a settlement from the statement
)

// Refund is one request to give a payment's money back to its payer: a
// Daraja reversal of the whole M-Pesa transaction. It is a fact about the
// payment and never changes the payment's own status or claim. Amounts are
// the payment's; times are UTC.
type Refund struct {
	ID        RefundID
	PaymentID PaymentID
	AppID     AppID // the app that asked for it (the payment's owner)
	Status    RefundStatus
	Amount    Amount
	// Reason is the app's reason, sent to M-Pesa as the Remarks.
	Reason string
	// Receipt is the M-Pesa receipt of the payment being reversed.
	Receipt string
	// OriginatorConversationID and ConversationID are Daraja's IDs of the
	// reversal request, from its acknowledgement; empty until then.
	OriginatorConversationID string
	ConversationID           string
	// ResultCode and ResultDesc are the Reversal Result's (or the
	// Transaction Status answer's, or Daraja's refusal of the request).
	ResultCode    string
	ResultDesc    string
	FailureReason RefundFailureReason // for FAILED and REJECTED
	// ReversalReceipt is the M-Pesa receipt of the reversal itself, for
	// SUCCESS.
	ReversalReceipt string
	ResolvedBy      string // RefundByResult, RefundByStatus, RefundByRequest or RefundByOperator; empty until final

	// ApprovalRequired says the refund waited (or waits) for an operator.
	ApprovalRequired bool
	// DecidedBy, DecisionReason and DecidedAt record the operator's
	// approval or rejection ("cli:alice"); empty when none was needed.
	DecidedBy      string
	DecisionReason string
	DecidedAt      time.Time

	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt time.Time // when it became final
}

// RefundOutcome is what one report (a Reversal Result, a Transaction Status
// answer, Daraja's refusal, an operator) says about a refund.
type RefundOutcome struct {
	Status          RefundStatus // SUCCESS, FAILED or REJECTED
	ResultCode      string
	ResultDesc      string
	FailureReason   RefundFailureReason // for FAILED and REJECTED
	ReversalReceipt string              // for SUCCESS, when the report carries one
	Source          string              // a RefundBy value
}

// Settle applies a report to the refund. It is the one place that moves a
// refund to a final status:
//
//   - PENDING takes SUCCESS or FAILED; AWAITING_APPROVAL takes only
//     REJECTED (an approved refund becomes PENDING through Approve).
//   - A final refund never changes. A report that agrees with it (same
//     status, and for SUCCESS no other reversal receipt) is a
//     DecisionDuplicate; one that disagrees is a DecisionConflict.
//   - A SUCCESS refund without a reversal receipt takes the receipt of a
//     later SUCCESS report.
//
// Settle changes r only when it returns DecisionApplied; it sets UpdatedAt
// (and CompletedAt) to now.
func (r *Refund) Settle(o RefundOutcome, now time.Time) Decision {
	if !o.Status.Final() {
		return DecisionConflict
	}
	if r.Status.Final() {
		switch {
		case o.Status != r.Status:
			return DecisionConflict
		case o.Status == RefundSucceeded && o.ReversalReceipt != "" && r.ReversalReceipt != o.ReversalReceipt:
			if r.ReversalReceipt != "" {
				return DecisionConflict
			}
			r.ReversalReceipt, r.UpdatedAt = o.ReversalReceipt, now
			return DecisionApplied
		}
		return DecisionDuplicate
	}
	if (r.Status == RefundAwaitingApproval) != (o.Status == RefundRejected) {
		return DecisionConflict
	}
	r.Status, r.ResultCode, r.ResultDesc, r.ResolvedBy = o.Status, o.ResultCode, o.ResultDesc, o.Source
	r.FailureReason = ""
	if o.Status != RefundSucceeded {
		r.FailureReason = o.FailureReason
	} else {
		r.ReversalReceipt = o.ReversalReceipt
	}
	r.UpdatedAt, r.CompletedAt = now, now
	return DecisionApplied
}

// RefundView is a refund as Lipa shows it to apps: the body of GET
// /api/refunds/{id}/, an element of a payment's "refunds", and the
// "refund" of refund events. Amounts are JSON numbers of shillings; times
// are RFC 3339 in UTC; values not known yet are null.
type RefundView struct {
	ID                       RefundID     `json:"id"`
	PaymentID                PaymentID    `json:"payment_id"`
	Status                   RefundStatus `json:"status"`
	Amount                   Amount       `json:"amount"`
	Currency                 string       `json:"currency"`
	Reason                   string       `json:"reason"`
	MpesaReceiptNumber       string       `json:"mpesa_receipt_number"`
	ReversalReceipt          *string      `json:"reversal_receipt"`
	OriginatorConversationID *string      `json:"originator_conversation_id"`
	ConversationID           *string      `json:"conversation_id"`
	ResultCode               *string      `json:"result_code"`
	ResultDesc               *string      `json:"result_desc"`
	FailureReason            *string      `json:"failure_reason"`
	ResolvedBy               *string      `json:"resolved_by"`
	ApprovalRequired         bool         `json:"approval_required"`
	CreatedAt                string       `json:"created_at"`
	UpdatedAt                string       `json:"updated_at"`
	CompletedAt              *string      `json:"completed_at"`
}

// RefundViewOf returns the view of r. The operator's decision (who, and
// why) is not shown to apps.
func RefundViewOf(r *Refund) RefundView {
	return RefundView{
		ID: r.ID, PaymentID: r.PaymentID, Status: r.Status, Amount: r.Amount, Currency: "KES", Reason: r.Reason,
		MpesaReceiptNumber: r.Receipt, ReversalReceipt: optional(r.ReversalReceipt),
		OriginatorConversationID: optional(r.OriginatorConversationID), ConversationID: optional(r.ConversationID),
		ResultCode: optional(r.ResultCode), ResultDesc: optional(r.ResultDesc), FailureReason: optional(r.FailureReason),
		ResolvedBy: optional(r.ResolvedBy), ApprovalRequired: r.ApprovalRequired,
		CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: r.UpdatedAt.UTC().Format(time.RFC3339Nano),
		CompletedAt: optionalTimeNano(r.CompletedAt),
	}
}

func optionalTimeNano(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339Nano)
	return &v
}
