package daraja

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/lipa-gateway/lipa"
)

const (
	pathSTKPush  = "/mpesa/stkpush/v1/processrequest"
	pathSTKQuery = "/mpesa/stkpushquery/v1/query"
)

// TransactionType values for STKPushRequest (docs/daraja.md "M-Pesa Express")
// and CommandID values for C2BSimulateRequest (docs/daraja.md "C2B").
const (
	PayBillOnline  = "CustomerPayBillOnline"  // paybill: PartyB is the paybill
	BuyGoodsOnline = "CustomerBuyGoodsOnline" // till: PartyB is the till number
)

// Timestamp formats t as Daraja's STK Timestamp, yyyyMMddHHmmss in Nairobi
// time (UTC+3), whatever t's location and time.Local are (docs/daraja.md
// "M-Pesa Express"). Example: 2024-01-01T22:30:00Z gives "20240102013000".
// It uses lipa.NairobiTime, a fixed zone, so it needs no tzdata file.
func Timestamp(t time.Time) string {
	return t.In(lipa.NairobiTime).Format("20060102150405")
}

// Password returns the STK Password: base64 (standard encoding, padded) of
// shortCode + passkey + timestamp concatenated without separators (Daraja
// "M-Pesa Express"). timestamp must be the exact Timestamp sent with it.
func Password(shortCode string, passkey lipa.Secret, timestamp string) string {
	return base64.StdEncoding.EncodeToString([]byte(shortCode + passkey.Reveal() + timestamp))
}

// STKPushRequest holds Lipa-side inputs for an STK push; the client builds
// the wire body (docs/daraja.md "M-Pesa Express"). The caller validates the
// values (phone format, amount limits, AccountReference ≤ 12 and
// TransactionDesc ≤ 13 characters, both non-empty, docs/daraja.md "M-Pesa
// Express"); the client sends them as given.
type STKPushRequest struct {
	// ShortCode is the BusinessShortCode: the paybill, or for a till the
	// head-office/store number (docs/daraja.md "M-Pesa Express").
	ShortCode string
	// Passkey is the Lipa na M-Pesa Online passkey of ShortCode.
	Passkey lipa.Secret
	// TransactionType is PayBillOnline or BuyGoodsOnline.
	TransactionType string
	// Amount is in whole Kenyan shillings (KES), ≥ 1.
	Amount int64
	// PhoneNumber is the payer's MSISDN, 2547XXXXXXXX or 2541XXXXXXXX; sent
	// as both PartyA and PhoneNumber.
	PhoneNumber string
	// PartyB receives the money: the paybill (default: ShortCode when empty)
	// or the till number.
	PartyB string
	// CallBackURL receives the result (docs/daraja.md "STK callback",
	// "C2B").
	CallBackURL string
	// AccountReference is shown to the payer on the prompt and SMS.
	AccountReference string
	// TransactionDesc is a short description; always sent (docs/daraja.md
	// "M-Pesa Express").
	TransactionDesc string
}

// stkPushBody is the wire body of docs/daraja.md "M-Pesa Express": all eleven
// fields, always present, every value a JSON string.
type stkPushBody struct {
	BusinessShortCode string `json:"BusinessShortCode"`
	Password          string `json:"Password"`
	Timestamp         string `json:"Timestamp"`
	TransactionType   string `json:"TransactionType"`
	Amount            string `json:"Amount"`
	PartyA            string `json:"PartyA"`
	PartyB            string `json:"PartyB"`
	PhoneNumber       string `json:"PhoneNumber"`
	CallBackURL       string `json:"CallBackURL"`
	AccountReference  string `json:"AccountReference"`
	TransactionDesc   string `json:"TransactionDesc"`
}

// STKPushResponse is Daraja's acceptance of an STK push (docs/daraja.md
// "M-Pesa Express"). It means only that the prompt was queued, never that
// the payer paid.
type STKPushResponse struct {
	MerchantRequestID string
	// CheckoutRequestID identifies the push in the callback and STKQuery;
	// always non-empty.
	CheckoutRequestID string
	// ResponseCode is "0" (or empty in a body that nonetheless carries a
	// CheckoutRequestID).
	ResponseCode        string
	ResponseDescription string
	CustomerMessage     string
	// Raw is the body as received.
	Raw json.RawMessage
}

// STKPush asks Daraja to prompt the payer's phone for their M-Pesa PIN:
// POST /mpesa/stkpush/v1/processrequest (docs/daraja.md "M-Pesa Express").
// The Timestamp comes from Config.Now in Nairobi time and the same value
// goes into the Password.
//
// It returns the response when Daraja accepted the push (ResponseCode of only
// zeros, or absent, and a CheckoutRequestID). Errors:
//   - *APIError: Daraja's error envelope, or HTTP 200 with a non-zero
//     ResponseCode (a refused initiation); see Reason and Class. The push
//     was not accepted.
//   - *BadResponseError: an unexpected answer. With a 2xx status (no
//     CheckoutRequestID, malformed JSON) the outcome is unknown.
//   - ErrUnreachable: not sent; safe to send again.
//   - ErrTimeout or any other error: the outcome is unknown; do not resend
//     (no idempotency on Daraja, docs/daraja.md "M-Pesa Express"); wait
//     for the callback.
//   - OAuth errors from Token.
func (c *Client) STKPush(ctx context.Context, r STKPushRequest) (*STKPushResponse, error) {
	ts := Timestamp(c.now())
	partyB := r.PartyB
	if partyB == "" {
		partyB = r.ShortCode
	}
	body := stkPushBody{
		BusinessShortCode: r.ShortCode,
		Password:          Password(r.ShortCode, r.Passkey, ts),
		Timestamp:         ts,
		TransactionType:   r.TransactionType,
		Amount:            strconv.FormatInt(r.Amount, 10),
		PartyA:            r.PhoneNumber,
		PartyB:            partyB,
		PhoneNumber:       r.PhoneNumber,
		CallBackURL:       r.CallBackURL,
		AccountReference:  r.AccountReference,
		TransactionDesc:   r.TransactionDesc,
	}
	ans, err := c.call(ctx, opSTKPush, pathSTKPush, body)
	if err != nil {
		return nil, err
	}
	var w struct {
		MerchantRequestID   flexString `json:"MerchantRequestID"`
		CheckoutRequestID   flexString `json:"CheckoutRequestID"`
		ResponseCode        flexString `json:"ResponseCode"`
		ResponseDescription flexString `json:"ResponseDescription"`
		CustomerMessage     flexString `json:"CustomerMessage"`
	}
	if err := json.Unmarshal(ans.body, &w); err != nil {
		return nil, ans.badResponse(opSTKPush, "body is not the expected JSON object")
	}
	resp := &STKPushResponse{
		MerchantRequestID:   string(w.MerchantRequestID),
		CheckoutRequestID:   string(w.CheckoutRequestID),
		ResponseCode:        string(w.ResponseCode),
		ResponseDescription: string(w.ResponseDescription),
		CustomerMessage:     string(w.CustomerMessage),
		Raw:                 json.RawMessage(ans.body),
	}
	if resp.ResponseCode != "" && !zeroCode(resp.ResponseCode) {
		return nil, ans.rejected(opSTKPush, resp.ResponseCode, resp.ResponseDescription)
	}
	if resp.CheckoutRequestID == "" {
		return nil, ans.badResponse(opSTKPush, "no CheckoutRequestID")
	}
	return resp, nil
}

// STKQueryResponse is Daraja's synchronous answer to an STK query (Daraja
// "STK query"). Only the fields Daraja sent are set: an in-flight answer may
// carry ResultCode and ResultDesc alone.
type STKQueryResponse struct {
	ResponseCode        string
	ResponseDescription string
	MerchantRequestID   string
	CheckoutRequestID   string
	// ResultCode is the payment's result as a string, even when Daraja sent
	// a number: "0" paid, "1032" cancelled, "1037" unreachable, "4999" still
	// processing, ... (docs/daraja.md "STK callback"). Always non-empty.
	ResultCode string
	ResultDesc string
	// Raw is the body as received.
	Raw json.RawMessage
}

// Pending reports whether the query says the payment is still in flight:
// ResultCode "4999" (docs/daraja.md "STK query"). Daraja's other "no answer
// yet" shapes arrive as an *APIError with ReasonBeingProcessed instead.
func (r *STKQueryResponse) Pending() bool { return r.ResultCode == "4999" }

// STKQuery asks Daraja for the result of the STK push checkoutRequestID:
// POST /mpesa/stkpushquery/v1/query with a fresh Timestamp and Password for
// shortCode and passkey (docs/daraja.md "STK query"). It is safe to repeat.
//
// A final or in-flight ResultCode (any, including "4999") is a response, not
// an error. Errors: *APIError for the error envelope (HTTP 500 or 200) or a
// non-zero ResponseCode; ReasonBeingProcessed means "ask again later",
// ReasonTransactionNotFound an unknown or too-fresh CheckoutRequestID;
// *BadResponseError for an unexpected answer (including one without a
// ResultCode); ErrUnreachable; ErrTimeout; OAuth errors from Token.
func (c *Client) STKQuery(ctx context.Context, shortCode string, passkey lipa.Secret, checkoutRequestID string) (*STKQueryResponse, error) {
	ts := Timestamp(c.now())
	body := struct {
		BusinessShortCode string `json:"BusinessShortCode"`
		Password          string `json:"Password"`
		Timestamp         string `json:"Timestamp"`
		CheckoutRequestID string `json:"CheckoutRequestID"`
	}{shortCode, Password(shortCode, passkey, ts), ts, checkoutRequestID}
	ans, err := c.call(ctx, opSTKQuery, pathSTKQuery, body)
	if err != nil {
		return nil, err
	}
	var w struct {
		ResponseCode        flexString `json:"ResponseCode"`
		ResponseDescription flexString `json:"ResponseDescription"`
		MerchantRequestID   flexString `json:"MerchantRequestID"`
		CheckoutRequestID   flexString `json:"CheckoutRequestID"`
		ResultCode          flexString `json:"ResultCode"`
		ResultDesc          flexString `json:"ResultDesc"`
	}
	if err := json.Unmarshal(ans.body, &w); err != nil {
		return nil, ans.badResponse(opSTKQuery, "body is not the expected JSON object")
	}
	resp := &STKQueryResponse{
		ResponseCode:        string(w.ResponseCode),
		ResponseDescription: string(w.ResponseDescription),
		MerchantRequestID:   string(w.MerchantRequestID),
		CheckoutRequestID:   string(w.CheckoutRequestID),
		ResultCode:          string(w.ResultCode),
		ResultDesc:          string(w.ResultDesc),
		Raw:                 json.RawMessage(ans.body),
	}
	if resp.ResponseCode != "" && !zeroCode(resp.ResponseCode) {
		return nil, ans.rejected(opSTKQuery, resp.ResponseCode, resp.ResponseDescription)
	}
	if resp.ResultCode == "" {
		return nil, ans.badResponse(opSTKQuery, "no ResultCode")
	}
	return resp, nil
}
