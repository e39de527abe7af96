package daraja

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reason is a stable, snake_case classification of a Daraja error, derived
// from its error code and message (docs/daraja.md "Errors"). Callers branch on
// Reason, never on Daraja's message text.
type Reason string

// Reasons returned by APIError.Reason and AuthError.Reason.
const (
	// ReasonUnknown: a code/message pair not in the table.
	ReasonUnknown Reason = "unknown"
	// ReasonSubscriberBusy: 500.001.1001 "Unable to lock subscriber": the
	// payer has another prompt or USSD session open; try again after about a
	// minute (docs/daraja.md "M-Pesa Express").
	ReasonSubscriberBusy Reason = "subscriber_busy"
	// ReasonBeingProcessed: STK query's "no answer yet": 500.001.1001 "The
	// transaction is being processed", or on a query any other 500.001.1001
	// not listed here, including an empty message (docs/daraja.md "STK query").
	ReasonBeingProcessed Reason = "being_processed"
	// ReasonTransactionNotFound: 500.001.1001 "The transaction does not
	// Exist": an unknown CheckoutRequestID, or one queried too soon (~30 s)
	// after the push (docs/daraja.md "STK query").
	ReasonTransactionNotFound Reason = "transaction_not_found"
	// ReasonWrongCredentials: 500.001.1001 "Wrong credentials" or
	// "[MerchantValidate] - Wrong credentials" (shortcode, passkey and
	// Timestamp do not match, docs/daraja.md "M-Pesa Express"); OAuth
	// 400.008.01; AuthError.
	ReasonWrongCredentials Reason = "wrong_credentials"
	// ReasonMerchantNotFound: 500.001.1001 "Merchant does not exist": the
	// shortcode is not enabled for M-Pesa Express (docs/daraja.md "Errors").
	ReasonMerchantNotFound Reason = "merchant_not_found"
	// ReasonInvalidToken: 404.001.03, 400.003.01 or 401.002.01, the access
	// token was refused (docs/daraja.md "OAuth"). The client has already dropped the token,
	// fetched a new one and retried once before returning this.
	ReasonInvalidToken Reason = "invalid_token"
	// ReasonNoAPIProduct: 401.003.01 "... no apiproduct match found": the
	// Daraja app lacks the API product for this endpoint or API version, e.g.
	// C2B v1 vs v2 (docs/daraja.md "C2B"). Not a token problem; no refresh is attempted.
	ReasonNoAPIProduct Reason = "no_api_product"
	// ReasonInvalidField: 400.002.02 (or 400.003.02) "Bad Request - Invalid
	// <Field>"; APIError.Field names the field (docs/daraja.md "Errors").
	ReasonInvalidField Reason = "invalid_field"
	// ReasonBadRequest: the request itself was malformed or mis-sent
	// (400.002.05, 400.003.02 without a field, 400.008.02, 404.001.04,
	// 405.001): a bug in the caller or this client.
	ReasonBadRequest Reason = "bad_request"
	// ReasonWrongEndpoint: 404.001.01 / 404.003.01 "Resource not found": the
	// base URL or API version points at no Daraja API.
	ReasonWrongEndpoint Reason = "wrong_endpoint"
	// ReasonRateLimited: 500.003.02 spike arrest / system busy, 500.003.03
	// quota violation. Daraja documents these as HTTP 500, not 429
	// (docs/daraja.md "Errors"). RateLimited also knows the gateway's HTTP
	// 429 answers.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonAlreadyRegistered: C2B URLs are already registered for the
	// shortcode, "Urls are already registered." (500.003.1001), "Duplicate
	// notification info" (URLs on the older Broker platform), or the legacy
	// HTTP 200 body "Validation and Confirmation URLs are already registered"
	// (docs/daraja.md "C2B"). The previously registered URLs may still be active.
	ReasonAlreadyRegistered Reason = "already_registered"
	// ReasonMaintenance: 00.002.1001 or a message saying the service is under
	// maintenance (docs/daraja.md "Errors").
	ReasonMaintenance Reason = "maintenance"
)

// Class says what a caller may do about an error.
type Class string

// Classes returned by Class methods.
const (
	// ClassFinal: this request will not succeed as sent; do not retry it.
	ClassFinal Class = "final"
	// ClassRetryable: a transient condition; the same request may succeed
	// later, with backoff. (For an STK push this is safe only because Daraja
	// answered with an error, i.e. did not accept the push.)
	ClassRetryable Class = "retryable"
	// ClassConfiguration: Lipa's Daraja settings are wrong (credentials,
	// shortcode, passkey, API product, URLs); an operator must act, and
	// retrying will not help.
	ClassConfiguration Class = "configuration"
)

// rule is one row of the classification table. Empty op or code matches any;
// msg is a lower-case substring of the normalised message ("" matches any,
// including an empty message). class "" means: by field for
// ReasonInvalidField, by HTTP status otherwise.
type rule struct {
	op, code, msg string
	reason        Reason
	class         Class
}

// rules is the one table that classifies Daraja errors (docs/daraja.md
// "Errors", "M-Pesa Express", "STK query", "C2B"). First match wins,
// so message-specific rows precede code-only rows.
var rules = []rule{
	// 500.001.1001 is overloaded: split it by message (docs/daraja.md "Errors").
	{code: "500.001.1001", msg: "unable to lock subscriber", reason: ReasonSubscriberBusy, class: ClassRetryable},
	{code: "500.001.1001", msg: "being processed", reason: ReasonBeingProcessed, class: ClassRetryable},
	{code: "500.001.1001", msg: "transaction does not exist", reason: ReasonTransactionNotFound, class: ClassRetryable},
	{code: "500.001.1001", msg: "wrong credentials", reason: ReasonWrongCredentials, class: ClassConfiguration},
	{code: "500.001.1001", msg: "merchant does not exist", reason: ReasonMerchantNotFound, class: ClassConfiguration},
	{op: opSTKQuery, code: "500.001.1001", reason: ReasonBeingProcessed, class: ClassRetryable},

	{code: "404.001.03", reason: ReasonInvalidToken, class: ClassConfiguration},
	{code: "400.003.01", reason: ReasonInvalidToken, class: ClassConfiguration},
	{code: "401.002.01", reason: ReasonInvalidToken, class: ClassConfiguration},
	{code: "401.003.01", reason: ReasonNoAPIProduct, class: ClassConfiguration},

	{code: "400.002.02", reason: ReasonInvalidField},
	{code: "400.003.02", msg: "invalid ", reason: ReasonInvalidField},
	{code: "400.003.02", reason: ReasonBadRequest, class: ClassFinal},
	{code: "400.002.05", reason: ReasonBadRequest, class: ClassFinal},
	{code: "400.008.01", reason: ReasonWrongCredentials, class: ClassConfiguration},
	{code: "400.008.02", reason: ReasonBadRequest, class: ClassConfiguration},
	{code: "404.001.04", reason: ReasonBadRequest, class: ClassFinal},
	{code: "405.001", reason: ReasonBadRequest, class: ClassFinal},
	{code: "404.001.01", reason: ReasonWrongEndpoint, class: ClassConfiguration},
	{code: "404.003.01", reason: ReasonWrongEndpoint, class: ClassConfiguration},

	{code: "500.003.02", reason: ReasonRateLimited, class: ClassRetryable},
	{code: "500.003.03", reason: ReasonRateLimited, class: ClassRetryable},

	{msg: "already registered", reason: ReasonAlreadyRegistered, class: ClassConfiguration},
	{msg: "duplicate notification info", reason: ReasonAlreadyRegistered, class: ClassConfiguration},

	{code: "00.002.1001", reason: ReasonMaintenance, class: ClassRetryable},
	{msg: "under maintenance", reason: ReasonMaintenance, class: ClassRetryable},

	// Pull Transactions' own codes (docs/daraja.md "Pull Transactions").
	{code: "401.001", reason: ReasonInvalidToken, class: ClassConfiguration},
	{code: "400.001", msg: "invalid ", reason: ReasonInvalidField},
}

// configFields are request fields whose rejection means Lipa's Daraja
// settings are wrong rather than the payer's input (400.002.02).
var configFields = map[string]bool{
	"businessshortcode": true, "shortcode": true, "partyb": true, "transactiontype": true,
	"password": true, "timestamp": true, "callbackurl": true, "confirmationurl": true,
	"validationurl": true, "resulturl": true, "queuetimeouturl": true,
	"securitycredential": true, "initiator": true, "responsetype": true,
	"receiverparty": true, "nominatednumber": true,
}

func classify(op, code, msg string) rule {
	code = strings.TrimSpace(code)
	m := normalise(msg)
	for _, r := range rules {
		if (r.op == "" || r.op == op) && (r.code == "" || r.code == code) && strings.Contains(m, r.msg) {
			return r
		}
	}
	return rule{reason: ReasonUnknown}
}

func normalise(msg string) string {
	return strings.Join(strings.Fields(strings.ToLower(msg)), " ")
}

var fieldRE = regexp.MustCompile(`(?i)\binvalid\s+([A-Za-z][A-Za-z0-9_]*)`)

// APIError is Daraja's synchronous error envelope
// {"requestId","errorCode","errorMessage"} (docs/daraja.md "Errors"), received
// with any HTTP status including 200 (docs/daraja.md "STK query"). It also
// reports an HTTP 200 body whose ResponseCode is not zero (a refused STK
// initiation, docs/daraja.md "M-Pesa Express") or a C2B registration
// answered "already registered" (docs/daraja.md "C2B"); ErrorCode and
// ErrorMessage then hold ResponseCode and ResponseDescription.
type APIError struct {
	// Op is the operation: "oauth", "stk push", "stk query", "c2b register",
	// "c2b simulate", "reversal", "transaction status", "pull register" or
	// "pull query".
	Op         string
	HTTPStatus int
	// RequestID is Daraja's requestId; it may be empty.
	RequestID string
	// ErrorCode is e.g. "500.001.1001"; it may be empty for legacy bodies.
	ErrorCode string
	// ErrorMessage is Daraja's text, verbatim; it may be empty.
	ErrorMessage string
}

// Error reads like "daraja stk push: 500.001.1001 Unable to lock subscriber,
// ... (HTTP 500)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("daraja ")
	b.WriteString(e.Op)
	b.WriteString(":")
	if e.ErrorCode != "" {
		b.WriteString(" " + e.ErrorCode)
	}
	if e.ErrorMessage != "" {
		b.WriteString(" " + e.ErrorMessage)
	}
	if e.ErrorCode == "" && e.ErrorMessage == "" {
		b.WriteString(" error")
	}
	fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	return b.String()
}

// Reason classifies the error by Op, ErrorCode and ErrorMessage using the
// package's one classification table; ReasonUnknown when nothing matches.
func (e *APIError) Reason() Reason { return classify(e.Op, e.ErrorCode, e.ErrorMessage).reason }

// Class says whether to retry, give up, or alert an operator. Invalid-field
// errors are ClassConfiguration for settings (BusinessShortCode, PartyB,
// CallBackURL, Timestamp, Password, the C2B URLs, ...) and ClassFinal for the
// payer's input (PhoneNumber, Amount, AccountReference, ...). Errors not in
// the table are ClassRetryable with HTTP 429 or 5xx and ClassFinal otherwise.
func (e *APIError) Class() Class {
	r := classify(e.Op, e.ErrorCode, e.ErrorMessage)
	switch {
	case r.class != "":
		return r.class
	case r.reason == ReasonInvalidField:
		if configFields[strings.ToLower(e.Field())] {
			return ClassConfiguration
		}
		return ClassFinal
	default:
		return statusClass(e.HTTPStatus)
	}
}

// Field returns the rejected request field named by a ReasonInvalidField
// message, e.g. "PhoneNumber" for "Bad Request - Invalid PhoneNumber", or ""
// for any other error.
func (e *APIError) Field() string {
	if e.Reason() != ReasonInvalidField {
		return ""
	}
	if m := fieldRE.FindStringSubmatch(e.ErrorMessage); m != nil {
		return m[1]
	}
	return ""
}

func statusClass(status int) Class {
	if status == 429 || status >= 500 {
		return ClassRetryable
	}
	return ClassFinal
}

// AuthError reports that Daraja's OAuth endpoint refused the consumer key and
// secret with HTTP 400 or 401 and no error envelope, usually an empty body
// (docs/daraja.md "OAuth"). Causes: a wrong key or secret, or keys of one
// environment used against the other's base URL.
type AuthError struct {
	HTTPStatus  int
	ContentType string
	// Snippet is the start of the body, sanitised; usually empty.
	Snippet string
}

// Error names the consumer key and secret as the likely cause.
func (e *AuthError) Error() string {
	body := "empty body"
	if e.Snippet != "" {
		body = fmt.Sprintf("body %q", e.Snippet)
	}
	return fmt.Sprintf("daraja oauth: consumer key or secret refused (HTTP %d, %s): check ConsumerKey and ConsumerSecret, and that they belong to the environment of BaseURL", e.HTTPStatus, body)
}

// Reason is always ReasonWrongCredentials.
func (e *AuthError) Reason() Reason { return ReasonWrongCredentials }

// Class is always ClassConfiguration.
func (e *AuthError) Class() Class { return ClassConfiguration }

// BadResponseError reports an answer that is neither the expected body nor
// Daraja's error envelope: an HTML page from a proxy, an empty body, malformed
// JSON, a 2xx body missing a required field, a redirect.
//
// For an STK push with a 2xx status the outcome is unknown: Daraja may have
// accepted the push, so do not resend it.
type BadResponseError struct {
	Op          string // as in APIError.Op
	HTTPStatus  int
	ContentType string
	// Problem says what was wrong, e.g. "empty body".
	Problem string
	// Fault is the error code of an Apigee fault body, the gateway in
	// front of Daraja ({"fault": {"faultstring", "detail": {"errorcode"}}}),
	// e.g. "policies.ratelimit.SpikeArrestViolation"; empty for any other
	// body. Only the rate-limit policies' codes (see RateLimited) prove that
	// the request went no further than the gateway.
	Fault string
	// Snippet is the first ~200 bytes of the body as valid UTF-8 with
	// control characters and runs of white space folded to one space.
	// Empty for OAuth 2xx answers, which may hold a token.
	Snippet string
}

// Error reads like `daraja stk push: unexpected answer (HTTP 503,
// text/html): no Daraja error envelope: "<html>..."`.
func (e *BadResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "daraja %s: unexpected answer (HTTP %d", e.Op, e.HTTPStatus)
	if e.ContentType != "" {
		b.WriteString(", " + e.ContentType)
	}
	b.WriteString(")")
	if e.Problem != "" {
		b.WriteString(": " + e.Problem)
	}
	if e.Snippet != "" {
		fmt.Fprintf(&b, ": %q", e.Snippet)
	}
	return b.String()
}

// Class is ClassRetryable for HTTP 429 and 5xx, ClassFinal otherwise.
func (e *BadResponseError) Class() Class { return statusClass(e.HTTPStatus) }

func (a *answer) badResponse(op, problem string) *BadResponseError {
	if len(strings.TrimSpace(string(a.body))) == 0 {
		problem = "empty body"
	}
	var fault struct {
		Fault struct {
			Detail struct {
				ErrorCode flexString `json:"errorcode"`
			} `json:"detail"`
		} `json:"fault"`
	}
	json.Unmarshal(a.body, &fault) // an unreadable body has no fault code
	return &BadResponseError{
		Op:          op,
		HTTPStatus:  a.status,
		ContentType: a.contentType,
		Problem:     problem,
		Fault:       strings.TrimSpace(string(fault.Fault.Detail.ErrorCode)),
		Snippet:     snippet(a.body),
	}
}

// rateLimitFaults are the Apigee fault codes of its rate-limit policies
// (Apigee's policy error reference: SpikeArrest and Quota), answered with
// HTTP 429 (or 500 by older gateways) before the request reaches Daraja.
var rateLimitFaults = map[string]bool{
	"policies.ratelimit.SpikeArrestViolation": true,
	"policies.ratelimit.QuotaViolation":       true,
}

// RateLimited reports whether err is Daraja, or the gateway in front of it,
// refusing a request for the caller's rate: any answer with HTTP 429
// (whatever its body: Apigee's spike-arrest fault, a proxy's text page,
// Daraja's envelope), Daraja's 500.003.02 or 500.003.03 envelope
// (ReasonRateLimited), or an Apigee rate-limit fault with another status.
// Such a request was refused at the gate, never acted on, so an STK push
// refused this way sent no prompt and may be sent again later. It also
// holds for a request never sent because its token fetch was rate limited
// (ErrNoToken wrapping such an error).
func RateLimited(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Reason() == ReasonRateLimited || apiErr.HTTPStatus == http.StatusTooManyRequests
	}
	var bad *BadResponseError
	if errors.As(err, &bad) {
		return bad.HTTPStatus == http.StatusTooManyRequests || rateLimitFaults[bad.Fault]
	}
	return false
}

// envelope is Daraja's error body (docs/daraja.md "Errors").
type envelope struct {
	RequestID    flexString `json:"requestId"`
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage flexString `json:"errorMessage"`
}

// apiError returns the answer's error envelope as an *APIError, or nil when
// the body is not one (no non-empty errorCode).
func (a *answer) apiError(op string) *APIError {
	var env envelope
	if json.Unmarshal(a.body, &env) != nil || strings.TrimSpace(string(env.ErrorCode)) == "" {
		return nil
	}
	return &APIError{
		Op:           op,
		HTTPStatus:   a.status,
		RequestID:    strings.TrimSpace(string(env.RequestID)),
		ErrorCode:    strings.TrimSpace(string(env.ErrorCode)),
		ErrorMessage: string(env.ErrorMessage),
	}
}

// snippet returns about the first 200 bytes of body, safe to log and print.
func snippet(body []byte) string {
	const max = 200
	if len(body) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut]
	}
	s := strings.ToValidUTF8(string(body), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// flexString decodes a JSON string, number or null as text; Daraja types the
// same field differently across APIs and years (docs/daraja.md
// "Conventions").
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*f = flexString(b)
	default:
		return fmt.Errorf("daraja: %s is not a string or number", b)
	}
	return nil
}

// zeroCode reports whether a ResponseCode consists only of zeros ("0",
// "00000000"), Daraja's success (docs/daraja.md "M-Pesa Express", "C2B").
func zeroCode(code string) bool {
	code = strings.TrimSpace(code)
	return code != "" && strings.Trim(code, "0") == ""
}

// rejected returns the *APIError for a 2xx body with a non-zero ResponseCode.
func (a *answer) rejected(op, code, desc string) *APIError {
	return &APIError{Op: op, HTTPStatus: a.status, ErrorCode: strings.TrimSpace(code), ErrorMessage: desc}
}
