package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Amount is a sum of Kenya shillings counted in cents (KES 1 = 100): the
// same type as lipa.Amount. Shillings(10) is KES 10; Amount(10050) is KES
// 100.50. In JSON it is a number of shillings, never a float in Go.
type Amount = lipa.Amount

// Shillings returns n whole shillings as an Amount.
func Shillings(n int64) Amount { return lipa.Shillings(n) }

// Status is where a payment stands: StatusPending, StatusSuccess or
// StatusFailed. SUCCESS and FAILED are final.
type Status = lipa.Status

// The payment statuses.
const (
	StatusPending = lipa.StatusPending
	StatusSuccess = lipa.StatusSuccess
	StatusFailed  = lipa.StatusFailed
)

// PaymentType is the channel of a payment: TypeSTK (a push an app started)
// or TypeC2B (a paybill or till payment the customer made).
type PaymentType = lipa.PaymentType

// The payment channels.
const (
	TypeSTK = lipa.TypeSTK
	TypeC2B = lipa.TypeC2B
)

// FailureReason is a stable code saying why a payment is FAILED, such as
// lipa.ReasonCancelledByUser ("cancelled_by_user"); docs/API.md lists them.
type FailureReason = lipa.FailureReason

// Payment is a payment as Lipa shows it (GET /api/payments/{id}/). Values
// Lipa does not know yet are empty strings and zero times. Times are UTC.
type Payment struct {
	ID                 string        `json:"id"`                   // "pay_…"
	App                string        `json:"app"`                  // the owning app's name; "" for a C2B payment still in the shared intake pool
	PaymentType        PaymentType   `json:"payment_type"`         // STK or C2B
	Status             Status        `json:"status"`               // PENDING, SUCCESS or FAILED
	PhoneNumber        string        `json:"phone_number"`         // 2547XXXXXXXX for STK; Safaricom's MSISDN as sent for C2B (often masked)
	Amount             Amount        `json:"amount"`               // what was asked (STK) or paid (C2B)
	Currency           string        `json:"currency"`             // "KES"
	Reference          string        `json:"reference"`            // the app's reference (STK) or the account number typed (C2B)
	AccountReference   string        `json:"account_reference"`    // what M-Pesa showed the customer
	Description        string        `json:"description"`          // as sent
	ShortCode          string        `json:"shortcode"`            // the paybill or till paid
	MpesaReceiptNumber string        `json:"mpesa_receipt_number"` // M-Pesa's receipt, once known
	CheckoutRequestID  string        `json:"checkout_request_id"`  // Daraja's id of the STK push
	MerchantRequestID  string        `json:"merchant_request_id"`  // Daraja's other id of the STK push
	ResultCode         string        `json:"result_code"`          // Daraja's verdict as text ("0", "1032")
	ResultDesc         string        `json:"result_desc"`          // Daraja's words for it
	FailureReason      FailureReason `json:"failure_reason"`       // for FAILED
	ResolvedBy         string        `json:"resolved_by"`          // callback, query, expiry, push, confirmation, operator or pull
	Claimed            bool          `json:"claimed"`              // an app has claimed it
	ClaimedAt          time.Time     `json:"claimed_at"`           // zero until claimed
	TransactionDate    time.Time     `json:"transaction_date"`     // when M-Pesa completed it; zero until known
	CreatedAt          time.Time     `json:"created_at"`
	UpdatedAt          time.Time     `json:"updated_at"`
	// RefundedAmount and Refunds are the amount of the payment's SUCCESS
	// refunds and every refund of it, oldest first: filled by Payment
	// (GET /api/payments/{id}/) only.
	RefundedAmount Amount   `json:"refunded_amount"`
	Refunds        []Refund `json:"refunds"`
}

// PushRequest asks for an STK push (the M-Pesa PIN prompt on the
// customer's phone).
type PushRequest struct {
	// PhoneNumber is a Kenyan mobile number in any common form
	// ("0712345678", "+254 712 345 678", "254712345678").
	PhoneNumber string
	// Amount is whole shillings, 1 to 250000 (Shillings(10)).
	Amount Amount
	// Reference is the app's own reference for the payment, 1 to 100
	// characters; verify and claim find payments by it.
	Reference string
	// AccountReference is what the customer sees (at most 12 letters,
	// digits, spaces, '-', '_', '.'); empty means Reference, when it fits.
	AccountReference string
	// Description is stored with the payment (at most 100 characters;
	// empty means "Payment").
	Description string
	// IdempotencyKey identifies this push across repeats: the same key
	// with the same fields gets the first answer and no second prompt.
	// Empty means a new random key (NewIdempotencyKey); set it to a key of
	// your own (such as your order id and attempt) to make a push that
	// survives a restart of your app safe to repeat.
	IdempotencyKey string
}

// PushResult is Lipa's answer to a push that was sent: the payment is
// PENDING until Safaricom's verdict.
type PushResult struct {
	PaymentID         string          // the payment, "pay_…"
	Status            Status          // PENDING
	CheckoutRequestID string          // Daraja's id of the push
	MerchantRequestID string          // Daraja's other id of the push
	CustomerMessage   string          // Daraja's message for the customer
	DarajaResponse    json.RawMessage // Daraja's answer as Daraja sent it
	IdempotencyKey    string          // the key the push was sent with
	Replayed          bool            // this is the stored answer of an earlier push with the same key
}

// Push starts an STK push (POST /api/stk-push/) with an Idempotency-Key,
// repeating it with the same key when an answer is lost. Lipa stores the
// payment before it calls Daraja; an error after that carries the
// payment's id (Error.PaymentID). Errors: a *Error with code such as
// invalid_phone_number, invalid_amount, invalid_reference (400),
// subscriber_busy (409), idempotency_key_reused (422), phone_rate_limited
// (429), daraja_error (502), daraja_unreachable (503), daraja_timeout (504:
// the prompt may still come; watch the payment, repeat only with the same
// key).
func (c *Client) Push(ctx context.Context, r PushRequest) (*PushResult, error) {
	key := r.IdempotencyKey
	if key == "" {
		key = NewIdempotencyKey()
	}
	body := map[string]any{"phone_number": r.PhoneNumber, "amount": r.Amount, "reference": r.Reference}
	if r.AccountReference != "" {
		body["account_reference"] = r.AccountReference
	}
	if r.Description != "" {
		body["description"] = r.Description
	}
	var out struct {
		PaymentID         string          `json:"payment_id"`
		Status            Status          `json:"status"`
		CheckoutRequestID string          `json:"checkout_request_id"`
		MerchantRequestID string          `json:"merchant_request_id"`
		CustomerMessage   string          `json:"customer_message"`
		DarajaResponse    json.RawMessage `json:"daraja_response"`
	}
	a, err := c.do(ctx, call{method: http.MethodPost, path: "/api/stk-push/", body: body,
		header: http.Header{"Idempotency-Key": {key}}, retry: true}, &out)
	if err != nil {
		return nil, err
	}
	return &PushResult{
		PaymentID: out.PaymentID, Status: out.Status, CheckoutRequestID: out.CheckoutRequestID,
		MerchantRequestID: out.MerchantRequestID, CustomerMessage: out.CustomerMessage, DarajaResponse: out.DarajaResponse,
		IdempotencyKey: key, Replayed: a.header.Get("Idempotent-Replayed") == "true",
	}, nil
}

// Payment returns one payment of the app, or an unclaimed C2B intake
// payment (GET /api/payments/{id}/). Another app's payment is
// ErrPaymentNotFound, like one that does not exist.
func (c *Client) Payment(ctx context.Context, id string) (*Payment, error) {
	var p Payment
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/payments/" + url.PathEscape(id) + "/", retry: true}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListQuery filters GET /api/payments/. Zero values filter nothing.
type ListQuery struct {
	Status    Status // only payments with this status
	Reference string // only payments under this reference
	Claimed   *bool  // only claimed (true) or unclaimed (false) payments
	Limit     int    // payments per page, 1 to 200 (0: Lipa's default, 50)
	Cursor    string // the NextCursor of the previous page
}

// PaymentPage is one page of payments, newest first.
type PaymentPage struct {
	Payments   []Payment
	NextCursor string // pass as ListQuery.Cursor for the next page; "" on the last page
}

// PaymentsPage returns one page of the app's payments and the unclaimed
// C2B intake payments, newest first (GET /api/payments/). Errors: a
// *Error with code invalid_status, invalid_claimed, invalid_limit or
// invalid_cursor (400).
func (c *Client) PaymentsPage(ctx context.Context, q ListQuery) (*PaymentPage, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	if q.Reference != "" {
		v.Set("reference", q.Reference)
	}
	if q.Claimed != nil {
		v.Set("claimed", strconv.FormatBool(*q.Claimed))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out struct {
		Payments   []Payment `json:"payments"`
		NextCursor *string   `json:"next_cursor"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/payments/", query: v, retry: true}, &out); err != nil {
		return nil, err
	}
	p := &PaymentPage{Payments: out.Payments}
	if out.NextCursor != nil {
		p.NextCursor = *out.NextCursor
	}
	return p, nil
}

// Payments iterates over every payment q selects, newest first, fetching
// page after page (q.Limit per page) as the loop asks for more. An error
// ends the iteration: it is yielded once, with a zero Payment.
//
//	for p, err := range c.Payments(ctx, client.ListQuery{Status: client.StatusSuccess}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(p.ID, p.Amount)
//	}
func (c *Client) Payments(ctx context.Context, q ListQuery) iter.Seq2[Payment, error] {
	return func(yield func(Payment, error) bool) {
		for {
			page, err := c.PaymentsPage(ctx, q)
			if err != nil {
				yield(Payment{}, err)
				return
			}
			for _, p := range page.Payments {
				if !yield(p, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			q.Cursor = page.NextCursor
		}
	}
}

// VerifyQuery names what to verify: a Receipt or a Reference (at least
// one), and optionally the Phone that paid.
type VerifyQuery struct {
	Receipt   string // M-Pesa's receipt number
	Reference string // the app's reference, or the account number a C2B customer typed
	Phone     string // only a payment from this phone (any common Kenyan form)
}

// Verification is Lipa's answer to verify: about one payment (Amount,
// Phone, Receipt, Reference, Claimed, Date, PaymentID, PaymentType, Status,
// FailureReason are that payment's), plus what the reference costs.
type Verification struct {
	// Paid is true when the payment is SUCCESS and, when the query names a
	// reference, its amount is at least AmountExpected.
	Paid   bool   `json:"paid"`
	Amount Amount `json:"amount"`
	// AmountExpected is what the reference costs (the amount of the app's
	// newest STK push under it); nil when the query names no reference or
	// the app never pushed under it.
	AmountExpected *Amount `json:"amount_expected"`
	// AmountPaid is the sum of the SUCCESS, unclaimed payments the query
	// matches; information only: several payments that together reach the
	// price do not make Paid true.
	AmountPaid    Amount        `json:"amount_paid"`
	Phone         string        `json:"phone"`
	Receipt       string        `json:"receipt"`
	Reference     string        `json:"reference"`
	Claimed       bool          `json:"claimed"`
	Date          time.Time     `json:"date"` // when M-Pesa completed it; zero until known
	PaymentID     string        `json:"payment_id"`
	PaymentType   PaymentType   `json:"payment_type"`
	FromIntake    bool          `json:"from_intake"` // the payment arrived in the shared C2B intake pool
	Status        Status        `json:"status"`
	FailureReason FailureReason `json:"failure_reason"`
}

// Verify says whether a payment was made (GET /api/payments/verify/).
// Errors: ErrPaymentNotFound when nothing matches; a *Error with code
// missing_parameter (neither receipt nor reference) or
// invalid_phone_number (400).
func (c *Client) Verify(ctx context.Context, q VerifyQuery) (*Verification, error) {
	v := url.Values{}
	if q.Receipt != "" {
		v.Set("receipt", q.Receipt)
	}
	if q.Reference != "" {
		v.Set("reference", q.Reference)
	}
	if q.Phone != "" {
		v.Set("phone", q.Phone)
	}
	var out Verification
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/payments/verify/", query: v, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClaimRequest names the payment to claim by PaymentID, Receipt or
// Reference (at least one; when several are given, the payment found by
// the first must match the others), and the Amount the app expects.
type ClaimRequest struct {
	PaymentID string
	Receipt   string
	Reference string
	// Amount, when not zero, must equal the payment's amount exactly
	// (ErrAmountMismatch otherwise). Send it whenever you know the price.
	Amount Amount
}

// Claim is Lipa's answer to a claim that succeeded: this app now owns the
// payment, and no other claim of it will succeed.
type Claim struct {
	PaymentID string    `json:"payment_id"`
	Receipt   string    `json:"receipt"` // "" for a payment settled by an STK push query, until a late callback brings one
	Amount    Amount    `json:"amount"`
	ClaimedAt time.Time `json:"claimed_at"`
	Status    Status    `json:"status"`
	Message   string    `json:"message"`
}

// Claim marks a SUCCESS payment as used by this app, exactly once (POST
// /api/payments/claim/): of any number of concurrent claims of one payment,
// one succeeds and the others get ErrAlreadyClaimed. A claim is never sent
// twice by the client. Errors: ErrAlreadyClaimed, ErrPaymentNotSuccessful
// (409), ErrAmountMismatch (422), ErrPaymentNotFound (404), a *Error with
// code missing_parameter (400).
func (c *Client) Claim(ctx context.Context, r ClaimRequest) (*Claim, error) {
	body := map[string]any{}
	if r.PaymentID != "" {
		body["payment_id"] = r.PaymentID
	}
	if r.Receipt != "" {
		body["receipt"] = r.Receipt
	}
	if r.Reference != "" {
		body["reference"] = r.Reference
	}
	if r.Amount != 0 {
		body["amount"] = r.Amount
	}
	var out Claim
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/api/payments/claim/", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
