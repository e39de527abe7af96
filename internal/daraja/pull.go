package daraja

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

const (
	pathPullRegister = "/pulltransactions/v1/register"
	pathPullQuery    = "/pulltransactions/v1/query"

	// PullDateLayout is how StartDate and EndDate of a Pull query are
	// written, in Kenya time (docs/daraja.md "Pull Transactions").
	PullDateLayout = "2006-01-02 15:04:05"

	// PullWindow is how far back Pull Transactions reaches: Safaricom keeps
	// a shortcode's transactions for Pull for 48 hours.
	PullWindow = 48 * time.Hour
)

// Pull Transactions status codes (docs/daraja.md "Pull Transactions").
const (
	// PullOK: registered, or transactions found ("1000").
	PullOK = "1000"
	// PullNone: already registered, or no transactions in the window
	// ("1001"). Safaricom also answers it for a shortcode not set up for
	// Pull ("Organization Name not available").
	PullNone = "1001"
)

// PullRegisterRequest registers a shortcode for Pull Transactions
// (docs/daraja.md "Pull Transactions"). Registration is done once per
// shortcode.
type PullRegisterRequest struct {
	ShortCode string
	// RequestType is "Pull" (the default when empty).
	RequestType string
	// NominatedNumber is the Safaricom MSISDN on the shortcode's KYC
	// record in the M-Pesa portal.
	NominatedNumber string
	// CallBackURL is where Safaricom may send notifications about the
	// registration; public, and free of the words Daraja refuses.
	CallBackURL string
}

// PullRegisterResponse is Daraja's answer to a Pull registration.
type PullRegisterResponse struct {
	ResponseRefID string
	// ResponseStatus is PullOK ("1000", registered) or PullNone ("1001",
	// already registered).
	ResponseStatus      string
	ShortCode           string
	ResponseDescription string
	// Raw is the body as received.
	Raw json.RawMessage
}

// AlreadyRegistered reports whether the shortcode was registered before
// (ResponseStatus "1001").
func (r *PullRegisterResponse) AlreadyRegistered() bool { return r.ResponseStatus == PullNone }

// RegisterPull registers r.ShortCode for Pull Transactions: POST
// /pulltransactions/v1/register (docs/daraja.md "Pull Transactions"). A
// shortcode that is already registered is a success with
// AlreadyRegistered true, so it is safe to repeat.
//
// Errors: *APIError for Daraja's error envelope or any other status code
// (ErrorCode the status, ErrorMessage the description); *BadResponseError;
// ErrUnreachable; ErrTimeout; OAuth errors from Token.
func (c *Client) RegisterPull(ctx context.Context, r PullRegisterRequest) (*PullRegisterResponse, error) {
	reqType := r.RequestType
	if reqType == "" {
		reqType = "Pull"
	}
	body := struct {
		ShortCode       string `json:"ShortCode"`
		RequestType     string `json:"RequestType"`
		NominatedNumber string `json:"NominatedNumber"`
		CallBackURL     string `json:"CallBackURL"`
	}{r.ShortCode, reqType, r.NominatedNumber, r.CallBackURL}
	ans, err := c.call(ctx, opPullRegister, pathPullRegister, body)
	if err != nil {
		return nil, err
	}
	var w struct {
		ResponseRefID       flexString `json:"ResponseRefID"`
		RequestID           flexString `json:"RequestID"`
		ResponseStatus      flexString `json:"ResponseStatus"`
		ResponseCode        flexString `json:"ResponseCode"`
		ShortCode           flexString `json:"ShortCode"`
		ResponseDescription flexString `json:"ResponseDescription"`
		ResponseMessage     flexString `json:"ResponseMessage"`
	}
	if err := json.Unmarshal(ans.body, &w); err != nil {
		return nil, ans.badResponse(opPullRegister, "body is not the expected JSON object")
	}
	resp := &PullRegisterResponse{
		ResponseRefID:       strings.TrimSpace(firstOf(w.ResponseRefID, w.RequestID)),
		ResponseStatus:      strings.TrimSpace(firstOf(w.ResponseStatus, w.ResponseCode)),
		ShortCode:           strings.TrimSpace(string(w.ShortCode)),
		ResponseDescription: firstOf(w.ResponseDescription, w.ResponseMessage),
		Raw:                 json.RawMessage(ans.body),
	}
	switch resp.ResponseStatus {
	case PullOK, PullNone:
		return resp, nil
	case "":
		return nil, ans.badResponse(opPullRegister, "no ResponseStatus")
	}
	return nil, ans.rejected(opPullRegister, resp.ResponseStatus, resp.ResponseDescription)
}

// PullQueryRequest asks for the transactions of a shortcode between Start
// and End (docs/daraja.md "Pull Transactions"). Safaricom answers only for
// the last 48 hours (PullWindow); the client does not clip the window.
type PullQueryRequest struct {
	ShortCode string
	// Start and End are sent as PullDateLayout in Kenya time, to the second.
	Start, End time.Time
	// Offset is the number of rows to skip (a row offset, not a page
	// number): 0 first, then the number of transactions read so far.
	Offset int
}

// PullTransaction is one transaction of a Pull answer. Daraja writes its
// keys in lower case ("transactionId", "trxDate", "billreference"), unlike
// the rest of the API; they are matched whatever their case.
type PullTransaction struct {
	// TransactionID is the M-Pesa receipt.
	TransactionID string
	// Time is trxDate in UTC: a date with a zone ("2020-08-05T10:13:00Z")
	// keeps it, one without is Kenya time. Zero when unreadable; TimeText
	// keeps the text.
	Time     time.Time
	TimeText string
	// MSISDN is the payer as Daraja sent it (a number or a string, possibly
	// without the country code, e.g. "722000000", or masked).
	MSISDN string
	Sender string
	// TransactionType is e.g. "c2b-pay-bill-debit" or "c2b-buy-goods-debit".
	TransactionType string
	// BillReference is the account number the payer entered; empty for
	// tills.
	BillReference string
	// Amount is read exactly from the decimal text ("168.00"); zero when
	// unreadable, AmountText keeps the text.
	Amount           lipa.Amount
	AmountText       string
	OrganizationName string
}

// PullQueryResponse is one page of a Pull query's answer.
type PullQueryResponse struct {
	ResponseRefID string
	// ResponseCode is PullOK ("1000") or PullNone ("1001", no transactions).
	ResponseCode    string
	ResponseMessage string
	// Transactions are the page's transactions in Daraja's order; empty for
	// PullNone. Daraja nests the list ("Response": [[{…}]]); it is flattened.
	Transactions []PullTransaction
	// Raw is the body as received.
	Raw json.RawMessage
}

// PullTransactions asks for one page of r.ShortCode's transactions between
// r.Start and r.End: POST /pulltransactions/v1/query (docs/daraja.md "Pull
// Transactions"). Page on with Offset += len(Transactions) until a page
// comes back empty. "No transactions" (PullNone) is an empty page, not an
// error. It is safe to repeat.
//
// Errors: End before Start (nothing sent); *APIError for Daraja's error
// envelope (a shortcode not registered for Pull, 400.001 invalid
// ShortCode, ...) or any other ResponseCode; *BadResponseError for a body
// that is not a Pull answer; ErrUnreachable; ErrTimeout; OAuth errors from
// Token.
func (c *Client) PullTransactions(ctx context.Context, r PullQueryRequest) (*PullQueryResponse, error) {
	if r.End.Before(r.Start) {
		return nil, fmt.Errorf("daraja %s: End %v is before Start %v", opPullQuery, r.End, r.Start)
	}
	if r.Offset < 0 {
		return nil, fmt.Errorf("daraja %s: Offset %d is negative", opPullQuery, r.Offset)
	}
	body := struct {
		ShortCode   string `json:"ShortCode"`
		StartDate   string `json:"StartDate"`
		EndDate     string `json:"EndDate"`
		OffSetValue string `json:"OffSetValue"`
	}{
		ShortCode:   r.ShortCode,
		StartDate:   r.Start.In(lipa.NairobiTime).Format(PullDateLayout),
		EndDate:     r.End.In(lipa.NairobiTime).Format(PullDateLayout),
		OffSetValue: strconv.Itoa(r.Offset),
	}
	ans, err := c.call(ctx, opPullQuery, pathPullQuery, body)
	if err != nil {
		return nil, err
	}
	resp, err := ParsePullResponse(ans.body)
	if err != nil {
		return nil, ans.badResponse(opPullQuery, err.Error())
	}
	switch resp.ResponseCode {
	case PullOK, PullNone:
		return resp, nil
	case "":
		if len(resp.Transactions) > 0 {
			return resp, nil
		}
		return nil, ans.badResponse(opPullQuery, "no ResponseCode")
	}
	return nil, ans.rejected(opPullQuery, resp.ResponseCode, resp.ResponseMessage)
}

// ParsePullResponse reads the body of a Pull query answer: ResponseRefID
// (or RequestID), ResponseCode, ResponseMessage and the transactions under
// "Response" (or "Transactions"/"Transaction"), which may be a list, a list
// of lists, one object, or such a list written as a JSON string ("[[]]").
// Items without a transactionId are skipped. A body that is not a JSON
// object is an error wrapping ErrMalformed; PullTransactions reports it as a
// *BadResponseError.
func ParsePullResponse(body []byte) (*PullQueryResponse, error) {
	var m map[string]json.RawMessage
	if err := decodeJSON(body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(scalar(lookupFold(m, k))); v != "" {
				return v
			}
		}
		return ""
	}
	resp := &PullQueryResponse{
		ResponseRefID:   get("ResponseRefID", "RequestID"),
		ResponseCode:    get("ResponseCode", "ResponseStatus"),
		ResponseMessage: get("ResponseMessage", "ResponseDescription"),
		Raw:             json.RawMessage(bytes.Clone(body)),
	}
	for _, k := range []string{"Response", "Transactions", "Transaction"} {
		if raw := lookupFold(m, k); raw != nil {
			for _, item := range flattenItems(raw, 0) {
				if t, ok := pullTransaction(item); ok {
					resp.Transactions = append(resp.Transactions, t)
				}
			}
			break
		}
	}
	return resp, nil
}

// lookupFold returns m's value for key, matched exactly or else ignoring
// case.
func lookupFold(m map[string]json.RawMessage, key string) json.RawMessage {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// flattenItems returns the JSON objects in raw: raw itself, the objects of a
// list, of nested lists, or of a list written as a JSON string. Nesting is
// followed a few levels deep only.
func flattenItems(raw json.RawMessage, depth int) []map[string]json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > 4 {
		return nil
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) == nil {
			return []map[string]json.RawMessage{m}
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		var out []map[string]json.RawMessage
		for _, e := range list {
			out = append(out, flattenItems(e, depth+1)...)
		}
		return out
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return flattenItems(json.RawMessage(s), depth+1)
		}
	}
	return nil
}

func pullTransaction(m map[string]json.RawMessage) (PullTransaction, bool) {
	get := func(k string) string { return strings.TrimSpace(scalar(lookupFold(m, k))) }
	t := PullTransaction{
		TransactionID:    get("transactionId"),
		TimeText:         get("trxDate"),
		MSISDN:           get("msisdn"),
		Sender:           get("sender"),
		TransactionType:  get("transactiontype"),
		BillReference:    get("billreference"),
		AmountText:       get("amount"),
		OrganizationName: get("organizationname"),
	}
	if t.TransactionID == "" {
		return t, false
	}
	if a, err := lipa.ParseAmount(t.AmountText); err == nil {
		t.Amount = a
	}
	if tm, err := ParsePullTime(t.TimeText); err == nil {
		t.Time = tm
	}
	return t, true
}

// ParsePullTime reads a Pull trxDate or a StartDate/EndDate and returns it
// in UTC: RFC 3339 with a zone ("2020-08-05T10:13:00Z") keeps the zone; the
// forms without one ("2020-08-05T10:13:00", "2020-08-05 10:13:00",
// "2019-07-31 19:00", "2020-08-04 8:36:00", "20200805101300") are Kenya
// time. Anything else is an error.
func ParsePullTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{
		"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "20060102150405",
	} {
		if t, err := time.ParseInLocation(layout, s, lipa.NairobiTime); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("daraja: pull date " + strconv.Quote(s) + " is not a date Daraja writes")
}

// firstOf returns the first non-empty value.
func firstOf(vs ...flexString) string {
	for _, v := range vs {
		if strings.TrimSpace(string(v)) != "" {
			return string(v)
		}
	}
	return ""
}
