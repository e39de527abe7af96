package lipa

import "time"

// PaymentView is a payment as Lipa shows it to apps: the body of GET
// /api/payments/{id}/ and the "payment" of every webhook event. Amounts are
// JSON numbers of shillings; times are RFC 3339 in UTC; values not known yet
// are null.
type PaymentView struct {
	ID                 PaymentID   `json:"id"`
	App                *string     `json:"app"`
	PaymentType        PaymentType `json:"payment_type"`
	Status             Status      `json:"status"`
	PhoneNumber        string      `json:"phone_number"`
	Amount             Amount      `json:"amount"`
	Currency           string      `json:"currency"`
	Reference          string      `json:"reference"`
	AccountReference   string      `json:"account_reference"`
	Description        string      `json:"description"`
	ShortCode          string      `json:"shortcode"`
	MpesaReceiptNumber *string     `json:"mpesa_receipt_number"`
	CheckoutRequestID  *string     `json:"checkout_request_id"`
	MerchantRequestID  *string     `json:"merchant_request_id"`
	ResultCode         *string     `json:"result_code"`
	ResultDesc         *string     `json:"result_desc"`
	FailureReason      *string     `json:"failure_reason"`
	ResolvedBy         *string     `json:"resolved_by"`
	Claimed            bool        `json:"claimed"`
	ClaimedAt          *string     `json:"claimed_at"`
	TransactionDate    *string     `json:"transaction_date"`
	CreatedAt          string      `json:"created_at"`
	UpdatedAt          string      `json:"updated_at"`
}

func optional[T ~string](s T) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339)
	return &v
}

// ViewOf returns the view of p.
func ViewOf(p *Payment) PaymentView {
	return PaymentView{
		ID: p.ID, App: optional(p.AppName), PaymentType: p.Type, Status: p.Status,
		PhoneNumber: p.PhoneNumber, Amount: p.Amount, Currency: p.Currency,
		Reference: p.Reference, AccountReference: p.AccountReference, Description: p.Description, ShortCode: p.ShortCode,
		MpesaReceiptNumber: optional(p.MpesaReceiptNumber), CheckoutRequestID: optional(p.CheckoutRequestID),
		MerchantRequestID: optional(p.MerchantRequestID), ResultCode: optional(p.ResultCode), ResultDesc: optional(p.ResultDesc),
		FailureReason: optional(p.FailureReason), ResolvedBy: optional(p.ResolvedBy), Claimed: p.Claimed, ClaimedAt: optionalTime(p.ClaimedAt),
		TransactionDate: optionalTime(p.TransactionDate),
		CreatedAt:       p.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: p.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
}
