package daraja

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/lipa-gateway/lipa"
)

// ResultCode values of the initiator APIs that callers decide on
// (docs/daraja.md "Reversal", "Transaction Status"). Result.ResultCode holds
// the code as text whether Daraja sent a number or a string.
const (
	ResultCodeSuccess          = "0"
	ResultCodeAlreadyReversed  = "R000001" // the transaction has already been reversed
	ResultCodeInvalidOriginal  = "R000002" // the OriginalTransactionID is invalid (unknown receipt)
	ResultCodeInitiatorInvalid = "2001"    // wrong initiator name, password or certificate
	ResultCodeReceiptNotFound  = "2032"    // Transaction Status: no such receipt
	ResultCodeCredentialLocked = "8006"    // the initiator's password is locked
)

// ResultReason classifies a Result by its ResultCode, so that callers branch
// on a typed value rather than on Daraja's codes and texts.
type ResultReason string

// Values of Result.Reason.
const (
	// ResultSucceeded: ResultCode 0.
	ResultSucceeded ResultReason = "succeeded"
	// ResultAlreadyReversed: "R000001"; the transaction was reversed before.
	ResultAlreadyReversed ResultReason = "already_reversed"
	// ResultNotFound: "R000002" (reversal) or 2032 (status): M-Pesa has no
	// such transaction for the shortcode.
	ResultNotFound ResultReason = "not_found"
	// ResultInitiatorRejected: 2001, 18, 20 or 21: the initiator's name,
	// password, certificate or role is wrong; an operator must act.
	ResultInitiatorRejected ResultReason = "initiator_rejected"
	// ResultCredentialLocked: 8006; the initiator's password is locked until
	// the Business Administrator unlocks it.
	ResultCredentialLocked ResultReason = "credential_locked"
	// ResultFailed: any other code; the request failed for a reason in
	// ResultDesc (insufficient balance, account rules, ...).
	ResultFailed ResultReason = "failed"
)

// ResultParameter is one Key/Value item of a Result's ResultParameters or
// ReferenceData, in the order sent. Keys may repeat.
type ResultParameter struct {
	Key string
	// Value is a string's text or a number's digits exactly as written
	// ("1.00", "20211114132711"); "" when HasValue is false.
	Value string
	// HasValue is false for an item sent without a Value (or with null, an
	// object or an array).
	HasValue bool
}

// Result is the asynchronous result of an initiator request (Reversal,
// Transaction Status) as Safaricom POSTs it to the ResultURL:
// {"Result": {...}} (docs/daraja.md "Reversal", "Transaction Status").
// Read leniently: codes as numbers or strings, ResultParameter and
// ReferenceItem as an object or an array, items without a Value, unknown
// fields ignored. Parameters keep Daraja's keys; Param finds a key whatever
// its spacing and case ("Originator Conversation ID" in 2017 bodies).
type Result struct {
	// ResultType is "0" (final) or "1" (more messages to come); "" when
	// absent.
	ResultType string
	// ResultCode is "0" for success, else the failure: a number as text
	// ("2001") or a code such as "R000002". Never empty.
	ResultCode string
	ResultDesc string
	// OriginatorConversationID and ConversationID match the request's Ack;
	// at least one is non-empty.
	OriginatorConversationID string
	ConversationID           string
	// TransactionID is the M-Pesa receipt of the transaction the request
	// made (a reversal's own receipt), or a placeholder such as
	// "SKE0000000" on failures and status queries.
	TransactionID string
	Parameters    []ResultParameter
	ReferenceData []ResultParameter
}

// ParseResult reads a Result body. A body that is not JSON, not shaped
// {"Result": {...}}, without a ResultCode, or without both
// OriginatorConversationID and ConversationID is an error wrapping
// ErrMalformed. Parameters that cannot be read as Key/Value items are
// skipped: the caller keeps the raw body.
func ParseResult(body []byte) (*Result, error) {
	var wire struct {
		Result *struct {
			ResultType               json.RawMessage `json:"ResultType"`
			ResultCode               json.RawMessage `json:"ResultCode"`
			ResultDesc               json.RawMessage `json:"ResultDesc"`
			OriginatorConversationID json.RawMessage `json:"OriginatorConversationID"`
			ConversationID           json.RawMessage `json:"ConversationID"`
			TransactionID            json.RawMessage `json:"TransactionID"`
			ResultParameters         *struct {
				ResultParameter json.RawMessage `json:"ResultParameter"`
			} `json:"ResultParameters"`
			ReferenceData *struct {
				ReferenceItem json.RawMessage `json:"ReferenceItem"`
			} `json:"ReferenceData"`
		} `json:"Result"`
	}
	if err := decodeJSON(body, &wire); err != nil {
		return nil, err
	}
	w := wire.Result
	if w == nil {
		return nil, fmt.Errorf("%w: no Result object", ErrMalformed)
	}
	r := &Result{
		ResultType:               strings.TrimSpace(scalar(w.ResultType)),
		ResultCode:               strings.TrimSpace(scalar(w.ResultCode)),
		ResultDesc:               scalar(w.ResultDesc),
		OriginatorConversationID: strings.TrimSpace(scalar(w.OriginatorConversationID)),
		ConversationID:           strings.TrimSpace(scalar(w.ConversationID)),
		TransactionID:            strings.TrimSpace(scalar(w.TransactionID)),
	}
	if r.ResultCode == "" {
		return nil, fmt.Errorf("%w: Result has no ResultCode", ErrMalformed)
	}
	if r.ConversationID == "" && r.OriginatorConversationID == "" {
		return nil, fmt.Errorf("%w: Result has neither ConversationID nor OriginatorConversationID", ErrMalformed)
	}
	if w.ResultParameters != nil {
		r.Parameters = parameters(w.ResultParameters.ResultParameter)
	}
	if w.ReferenceData != nil {
		r.ReferenceData = parameters(w.ReferenceData.ReferenceItem)
	}
	return r, nil
}

// parameters reads a Key/Value item or an array of them; anything else
// gives none.
func parameters(raw json.RawMessage) []ResultParameter {
	type item struct {
		Key   json.RawMessage `json:"Key"`
		Value json.RawMessage `json:"Value"`
	}
	var items []item
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		for _, e := range list {
			var it item
			if json.Unmarshal(e, &it) == nil {
				items = append(items, it)
			}
		}
	case len(raw) > 0 && raw[0] == '{':
		var it item
		if json.Unmarshal(raw, &it) == nil {
			items = append(items, it)
		}
	}
	var out []ResultParameter
	for _, it := range items {
		key := strings.TrimSpace(scalar(it.Key))
		if key == "" {
			continue
		}
		v := bytes.TrimSpace(it.Value)
		has := len(v) > 0 && (v[0] == '"' || v[0] == '-' || (v[0] >= '0' && v[0] <= '9') || string(v) == "true" || string(v) == "false")
		val := scalar(v)
		if string(v) == "true" || string(v) == "false" {
			val = string(v)
		}
		out = append(out, ResultParameter{Key: key, Value: val, HasValue: has})
	}
	return out
}

// Param returns the Value of the first parameter whose key matches key
// ignoring case and white space ("ConversationID" finds "Conversation ID"),
// and whether one with a Value was found.
func (r *Result) Param(key string) (string, bool) {
	want := foldKey(key)
	for _, p := range r.Parameters {
		if p.HasValue && foldKey(p.Key) == want {
			return p.Value, true
		}
	}
	return "", false
}

// Params returns the Values of every parameter whose key matches key as Param
// does, in order; Daraja repeats keys (two DebitPartyName items in the
// portal's Transaction Status sample).
func (r *Result) Params(key string) []string {
	want := foldKey(key)
	var out []string
	for _, p := range r.Parameters {
		if p.HasValue && foldKey(p.Key) == want {
			out = append(out, p.Value)
		}
	}
	return out
}

func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, k)
}

// Succeeded reports whether ResultCode is 0.
func (r *Result) Succeeded() bool { return zeroCode(r.ResultCode) }

// Final reports whether ResultType says no further message follows ("0" or
// absent).
func (r *Result) Final() bool { return r.ResultType == "" || r.ResultType == "0" }

// Reason classifies the ResultCode; see ResultReason.
func (r *Result) Reason() ResultReason {
	switch code := strings.ToUpper(r.ResultCode); {
	case zeroCode(code):
		return ResultSucceeded
	case code == ResultCodeAlreadyReversed:
		return ResultAlreadyReversed
	case code == ResultCodeInvalidOriginal, code == ResultCodeReceiptNotFound:
		return ResultNotFound
	case code == ResultCodeInitiatorInvalid, code == "18", code == "20", code == "21":
		return ResultInitiatorRejected
	case code == ResultCodeCredentialLocked:
		return ResultCredentialLocked
	}
	return ResultFailed
}

// ReversalDetails are the ResultParameters of a successful reversal
// (docs/daraja.md "Reversal"). Fields Daraja did not send, or sent in a form
// that cannot be read, are zero.
type ReversalDetails struct {
	// Receipt is the reversal's own M-Pesa receipt (Result.TransactionID).
	Receipt string
	// OriginalTransactionID is the receipt that was reversed.
	OriginalTransactionID string
	Amount                lipa.Amount
	Charge                lipa.Amount
	// CompletedAt is TransCompletedTime, in UTC.
	CompletedAt           time.Time
	CreditPartyPublicName string // "2547… - Name": the customer refunded
	DebitPartyPublicName  string // "600992 - Org name": the shortcode debited
	DebitAccountBalance   string // "Utility Account|KES|…", as sent
}

// Reversal returns the reversal details carried by r.
func (r *Result) Reversal() ReversalDetails {
	d := ReversalDetails{Receipt: r.TransactionID}
	d.OriginalTransactionID, _ = r.Param("OriginalTransactionID")
	d.Amount = r.amount("Amount")
	d.Charge = r.amount("Charge")
	d.CompletedAt = r.time("TransCompletedTime")
	d.CreditPartyPublicName, _ = r.Param("CreditPartyPublicName")
	d.DebitPartyPublicName, _ = r.Param("DebitPartyPublicName")
	d.DebitAccountBalance, _ = r.Param("DebitAccountBalance")
	return d
}

// StatusDetails are the ResultParameters of a Transaction Status answer
// (docs/daraja.md "Transaction Status"). Fields Daraja did not send, or sent
// in a form that cannot be read, are zero.
type StatusDetails struct {
	// ReceiptNo is the receipt of the transaction asked about.
	ReceiptNo string
	// TransactionStatus is M-Pesa's word for it, e.g. "Completed".
	TransactionStatus string
	Amount            lipa.Amount
	// InitiatedTime and FinalisedTime are in UTC.
	InitiatedTime time.Time
	FinalisedTime time.Time
	// DebitPartyName and CreditPartyName are "party - name" texts; the
	// portal's sample sends two DebitPartyName items and no CreditPartyName,
	// so DebitPartyNames keeps every one.
	DebitPartyName  string
	DebitPartyNames []string
	CreditPartyName string
	ReasonType      string
	// OriginatorConversationID and ConversationID are those of the
	// transaction asked about (keys with or without spaces), not of the
	// status query itself.
	OriginatorConversationID string
	ConversationID           string
}

// Status returns the Transaction Status details carried by r.
func (r *Result) Status() StatusDetails {
	var d StatusDetails
	d.ReceiptNo, _ = r.Param("ReceiptNo")
	d.TransactionStatus, _ = r.Param("TransactionStatus")
	d.Amount = r.amount("Amount")
	d.InitiatedTime = r.time("InitiatedTime")
	d.FinalisedTime = r.time("FinalisedTime")
	d.DebitPartyNames = r.Params("DebitPartyName")
	if len(d.DebitPartyNames) > 0 {
		d.DebitPartyName = d.DebitPartyNames[0]
	}
	d.CreditPartyName, _ = r.Param("CreditPartyName")
	d.ReasonType, _ = r.Param("ReasonType")
	d.OriginatorConversationID, _ = r.Param("OriginatorConversationID")
	d.ConversationID, _ = r.Param("ConversationID")
	return d
}

func (r *Result) amount(key string) lipa.Amount {
	v, _ := r.Param(key)
	a, err := lipa.ParseAmount(v)
	if err != nil {
		return 0
	}
	return a
}

func (r *Result) time(key string) time.Time {
	v, _ := r.Param(key)
	t, err := lipa.ParseDarajaTime(strings.TrimSpace(v))
	if err != nil {
		return time.Time{}
	}
	return t
}
