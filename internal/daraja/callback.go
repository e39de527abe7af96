package daraja

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
)

// STKCallback is the result of an STK push as Safaricom POSTs it to the
// CallBackURL (docs/daraja.md "STK callback"), read leniently: ResultCode as
// a JSON number or string, metadata items by Name (never by position), items
// without a Value, Amount as an integer or a decimal, PhoneNumber as a number
// or a string, and unknown fields ignored.
type STKCallback struct {
	MerchantRequestID  string
	CheckoutRequestID  string
	ResultCode         string // "0" is success; anything else is not (docs/daraja.md "STK callback")
	ResultDesc         string
	Amount             lipa.Amount // from CallbackMetadata; 0 when absent
	MpesaReceiptNumber string
	TransactionDate    time.Time // UTC; zero when absent or unreadable (Daraja sends Kenya time)
	PhoneNumber        string    // digits as sent; empty when absent
}

// ErrMalformed is wrapped by the parse functions' errors when a body is not
// a payload of the expected shape. A value Lipa keeps (an identifier, the
// amount, phone, account or names) holding a NUL character makes a body
// malformed too: no Daraja value holds one, and PostgreSQL cannot store one
// as text.
var ErrMalformed = errors.New("malformed Daraja payload")

// ParseSTKCallback reads an STK callback body. A body that is not JSON, not
// shaped {"Body":{"stkCallback":{…}}}, lacks CheckoutRequestID or
// ResultCode, or has a NUL character in a value Lipa keeps (see
// ErrMalformed) is an error wrapping ErrMalformed. Metadata values that cannot
// be read (an Amount that is not a number, a TransactionDate that is not a
// date) are left zero rather than refusing the callback: the raw body is
// kept by the caller.
func ParseSTKCallback(body []byte) (*STKCallback, error) {
	var wire struct {
		Body *struct {
			STKCallback *struct {
				MerchantRequestID json.RawMessage `json:"MerchantRequestID"`
				CheckoutRequestID json.RawMessage `json:"CheckoutRequestID"`
				ResultCode        json.RawMessage `json:"ResultCode"`
				ResultDesc        json.RawMessage `json:"ResultDesc"`
				CallbackMetadata  *struct {
					Item []struct {
						Name  string          `json:"Name"`
						Value json.RawMessage `json:"Value"`
					} `json:"Item"`
				} `json:"CallbackMetadata"`
			} `json:"stkCallback"`
		} `json:"Body"`
	}
	if err := decodeJSON(body, &wire); err != nil {
		return nil, err
	}
	if wire.Body == nil || wire.Body.STKCallback == nil {
		return nil, fmt.Errorf("%w: no Body.stkCallback object", ErrMalformed)
	}
	w := wire.Body.STKCallback
	cb := &STKCallback{
		MerchantRequestID: scalar(w.MerchantRequestID),
		CheckoutRequestID: strings.TrimSpace(scalar(w.CheckoutRequestID)),
		ResultCode:        strings.TrimSpace(scalar(w.ResultCode)),
		ResultDesc:        scalar(w.ResultDesc),
	}
	if cb.CheckoutRequestID == "" {
		return nil, fmt.Errorf("%w: stkCallback has no CheckoutRequestID", ErrMalformed)
	}
	if cb.ResultCode == "" {
		return nil, fmt.Errorf("%w: stkCallback has no ResultCode", ErrMalformed)
	}
	if w.CallbackMetadata != nil {
		for _, it := range w.CallbackMetadata.Item {
			v := scalar(it.Value)
			switch it.Name {
			case "Amount":
				if a, err := lipa.ParseAmount(v); err == nil {
					cb.Amount = a
				}
			case "MpesaReceiptNumber":
				cb.MpesaReceiptNumber = strings.TrimSpace(v)
			case "TransactionDate":
				if t, err := lipa.ParseDarajaTime(v); err == nil {
					cb.TransactionDate = t
				}
			case "PhoneNumber":
				cb.PhoneNumber = v
			}
		}
	}
	// The CheckoutRequestID is left out: one holding a NUL is an ID Lipa never
	// issued, so the callback is unmatched (see ValidCheckoutRequestID), not
	// unreadable.
	if err := checkNUL("stkCallback", "MerchantRequestID", cb.MerchantRequestID,
		"ResultCode", cb.ResultCode, "ResultDesc", cb.ResultDesc, "MpesaReceiptNumber", cb.MpesaReceiptNumber,
		"PhoneNumber", cb.PhoneNumber); err != nil {
		return nil, err
	}
	return cb, nil
}

// checkNUL returns an error wrapping ErrMalformed that names the first of
// the (name, value) pairs whose value holds a NUL character (U+0000, sent
// as \u0000 in JSON), quoting it in Go syntax (at most 64 bytes of it).
// No Daraja identifier, amount, phone number or description holds one
// (docs/daraja.md), and PostgreSQL cannot store one in a text column, so
// such a payload is kept only as its raw body.
func checkNUL(what string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v := pairs[i+1]; strings.IndexByte(v, 0) >= 0 {
			if len(v) > 64 {
				v = strings.ToValidUTF8(v[:64], "") + "…"
			}
			return fmt.Errorf("%w: %s %s %q contains a NUL character", ErrMalformed, what, pairs[i], v)
		}
	}
	return nil
}

// C2BNotification is a C2B validation or confirmation request as Safaricom
// POSTs it to the registered URLs (docs/daraja.md "C2B"). Every value is
// kept as the text Safaricom sent (numbers are accepted too and written in
// decimal); MSISDN may be a plain number, a mask ("2547 ***** 149") or a
// SHA-256 hash.
type C2BNotification struct {
	TransactionType   string
	TransID           string
	TransTime         string // yyyyMMddHHmmss, Kenya time
	TransAmount       string // decimal shillings, e.g. "100.00"
	BusinessShortCode string
	BillRefNumber     string
	InvoiceNumber     string
	OrgAccountBalance string
	ThirdPartyTransID string
	MSISDN            string
	FirstName         string
	MiddleName        string
	LastName          string
}

// ParseC2BNotification reads a C2B validation or confirmation body. A body
// that is not a JSON object, or has a NUL character in one of the fields
// below, is an error wrapping ErrMalformed; missing fields are left empty
// for the caller to judge.
func ParseC2BNotification(body []byte) (*C2BNotification, error) {
	var m map[string]json.RawMessage
	if err := decodeJSON(body, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var nul []string // (name, value) pairs of every field read, for checkNUL
	get := func(k string) string {
		v := strings.TrimSpace(scalar(m[k]))
		nul = append(nul, k, v)
		return v
	}
	n := &C2BNotification{
		TransactionType:   get("TransactionType"),
		TransID:           get("TransID"),
		TransTime:         get("TransTime"),
		TransAmount:       get("TransAmount"),
		BusinessShortCode: get("BusinessShortCode"),
		BillRefNumber:     get("BillRefNumber"),
		InvoiceNumber:     get("InvoiceNumber"),
		OrgAccountBalance: get("OrgAccountBalance"),
		ThirdPartyTransID: get("ThirdPartyTransID"),
		MSISDN:            get("MSISDN"),
		FirstName:         get("FirstName"),
		MiddleName:        get("MiddleName"),
		LastName:          get("LastName"),
	}
	if err := checkNUL("C2B", nul...); err != nil {
		return nil, err
	}
	return n, nil
}

// decodeJSON decodes one JSON value with numbers kept exact, refusing
// trailing data.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return nil
}

// scalar returns a JSON string's text or a JSON number's digits exactly as
// written; null, objects, arrays and absent values give "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		// A string without escapes is its own text (a JSON string holds no
		// raw control character); one with escapes or invalid UTF-8 is
		// decoded as json.Unmarshal decodes it.
		if len(raw) >= 2 && raw[len(raw)-1] == '"' {
			if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
				return string(in)
			}
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw)
	}
	return ""
}

// ValidCheckoutRequestID reports whether id could be a CheckoutRequestID
// Daraja issued: not empty and free of control characters (NUL included).
// Daraja's IDs are printable ASCII (docs/daraja.md "Receipt and ID
// shapes"); a callback naming any other is stored as unmatched and can
// never be matched to a payment.
func ValidCheckoutRequestID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
