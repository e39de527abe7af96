package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultRetries is how many times a request that is safe to repeat is sent
// again after a network failure, unless WithRetries says otherwise.
const DefaultRetries = 2

// maxAnswer bounds the answer body the client reads: far more than any
// page of Lipa's.
const maxAnswer = 16 << 20

// Client calls one Lipa as one app. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     string
	hc      *http.Client
	retries int
	backoff time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (default: a
// client with a 60-second timeout). Its Timeout bounds each attempt; the
// context passed to each method bounds the whole call.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetries sets how many times a request that is safe to repeat (a read,
// or an STK push, which carries its Idempotency-Key) is sent again when no
// answer came (DefaultRetries; 0 never repeats). Answers from Lipa, errors
// included, are never repeated.
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(0, n) } }

// New returns a client for the Lipa at baseURL (such as
// "http://127.0.0.1:8000" or "https://lipa.example.com/"), calling it as the
// app whose API key is apiKey. The key may be empty for the endpoints that
// need none (Health, Ready, OpenAPI). An error means baseURL is not an
// absolute http or https URL.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("lipa: base URL %q is not an absolute http(s) URL", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, key: apiKey, hc: &http.Client{Timeout: 60 * time.Second}, retries: DefaultRetries, backoff: 200 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// call is one request to Lipa.
type call struct {
	method string
	path   string     // from the base URL, such as "/api/stk-push/"
	query  url.Values // may be nil
	body   any        // sent as JSON when not nil
	header http.Header
	retry  bool // safe to send again when no answer came
	noKey  bool // send no X-API-KEY
}

// answer is Lipa's answer to a call that succeeded (status below 400).
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends cl, repeating it after a network failure when it is safe to,
// and returns the answer; an answer of 400 or more is a *Error. When out
// is not nil the answer's JSON is decoded into it.
func (c *Client) do(ctx context.Context, cl call, out any) (*answer, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("lipa: encode %s %s: %w", cl.method, cl.path, err)
		}
	}
	u := *c.base
	u.Path += cl.path
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	attempts := 1
	if cl.retry {
		attempts += c.retries
	}
	var lastErr error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(c.backoff << (i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("lipa: %s %s: %w (after %v)", cl.method, cl.path, ctx.Err(), lastErr)
			case <-t.C:
			}
		}
		a, err := c.send(ctx, cl, u.String(), payload)
		if err == nil {
			if a.status >= 400 {
				return nil, errorFrom(a)
			}
			if out != nil {
				if err := json.Unmarshal(a.body, out); err != nil {
					return nil, fmt.Errorf("lipa: %s %s: decode the %d answer: %w", cl.method, cl.path, a.status, err)
				}
			}
			return a, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("lipa: %s %s: %w", cl.method, cl.path, lastErr)
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, cl call, u string, payload []byte) (*answer, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !cl.noKey && c.key != "" {
		req.Header.Set("X-API-KEY", c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the %d answer: %w", resp.StatusCode, err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// Error is an error answer from Lipa: {"error": {"code", "message",
// "details"}} with its HTTP status. Code is stable and documented in
// docs/API.md; Message is a sentence for people and may change. Test for
// common codes with errors.Is and the Err values (errors.Is(err,
// client.ErrAlreadyClaimed)).
type Error struct {
	StatusCode int            // the HTTP status, such as 409
	Code       string         // Lipa's error code, such as "already_claimed"; empty when the answer was not Lipa's error shape
	Message    string         // Lipa's message, or the start of an answer that was not Lipa's error shape
	Details    map[string]any // structured context (field, payment_id, claimed_at, expected, …); JSON numbers are float64
	RetryAfter time.Duration  // the Retry-After header (429), zero when absent
	RequestID  string         // the X-Request-ID header, when Lipa sent one
}

// Error returns "lipa: <status> <code>: <message>".
func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return "lipa: " + e.Code
	}
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("lipa: %d %s: %s", e.StatusCode, code, e.Message)
}

// Is reports whether target is one of the Err values (an *Error with only
// a Code) with e's code, so that errors.Is(err, ErrAlreadyClaimed) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.StatusCode == 0 && t.Code != "" && t.Code == e.Code
}

// PaymentID returns details.payment_id: the payment Lipa recorded before
// the error (a push Daraja refused or timed out), or "".
func (e *Error) PaymentID() string {
	s, _ := e.Details["payment_id"].(string)
	return s
}

// Field returns details.field: the request field at fault, or "".
func (e *Error) Field() string {
	s, _ := e.Details["field"].(string)
	return s
}

// Errors to test for with errors.Is; each matches any *Error with its
// code. docs/API.md lists every code.
var (
	ErrMissingAPIKey        = &Error{Code: "missing_api_key"}            // 401: the client has no key
	ErrInvalidAPIKey        = &Error{Code: "invalid_api_key"}            // 401: no app has this key
	ErrAppDisabled          = &Error{Code: "app_disabled"}               // 401: the app is disabled
	ErrPaymentNotFound      = &Error{Code: "payment_not_found"}          // 404: no such payment visible to this app
	ErrEventNotFound        = &Error{Code: "event_not_found"}            // 404: the events feed's after is not one of the app's events
	ErrAlreadyClaimed       = &Error{Code: "already_claimed"}            // 409: the payment was claimed before (Details["claimed_at"])
	ErrPaymentNotSuccessful = &Error{Code: "payment_not_successful"}     // 409: the payment is PENDING or FAILED
	ErrSubscriberBusy       = &Error{Code: "subscriber_busy"}            // 409: the customer already has a prompt open
	ErrAmountMismatch       = &Error{Code: "amount_mismatch"}            // 422: the payment's amount is not the one expected
	ErrIdempotencyKeyReused = &Error{Code: "idempotency_key_reused"}     // 422: the Idempotency-Key was used with other fields
	ErrRateLimited          = &Error{Code: "rate_limited"}               // 429: the app is over its request rate (RetryAfter)
	ErrPhoneRateLimited     = &Error{Code: "phone_rate_limited"}         // 429: too many pushes to this phone in an hour
	ErrDarajaError          = &Error{Code: "daraja_error"}               // 502: Daraja refused the push; the payment is FAILED
	ErrDarajaUnreachable    = &Error{Code: "daraja_unreachable"}         // 503: the push was not sent; a new push is safe
	ErrDarajaTimeout        = &Error{Code: "daraja_timeout"}             // 504: the prompt may still come: watch the payment
	ErrAlreadyRefunded      = &Error{Code: "already_refunded"}           // 409: the payment has a refund under way or done (Details["refund_id"])
	ErrPartialRefund        = &Error{Code: "partial_refund_unsupported"} // 422: M-Pesa reverses whole payments only
	ErrRefundNotFound       = &Error{Code: "refund_not_found"}           // 404: no such refund of this app
	ErrNotConfigured        = &Error{Code: "not_configured"}             // 501: this Lipa has no M-Pesa initiator credentials
)

// errorFrom builds the *Error of an answer of 400 or more.
func errorFrom(a *answer) *Error {
	e := &Error{StatusCode: a.status, RequestID: a.header.Get("X-Request-ID")}
	if s := a.header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	var body struct {
		Error *struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &body); err == nil && body.Error != nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
	} else {
		// Not Lipa's answer: a proxy in between, or a broken request.
		msg := strings.TrimSpace(string(a.body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		e.Message = msg
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return e
}

// NewIdempotencyKey returns a random Idempotency-Key: 32 hexadecimal
// digits (128 random bits).
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Health calls GET /healthz: nil while Lipa's process serves requests. It
// sends no key.
func (c *Client) Health(ctx context.Context) error {
	var out struct {
		Status string `json:"status"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/healthz", retry: true, noKey: true}, &out)
	return err
}

// Ready calls GET /readyz and returns the running build's version. The
// error is a *Error with code "database_unavailable" or
// "daraja_misconfigured" (503) when Lipa is not ready. It sends no key.
func (c *Client) Ready(ctx context.Context) (version string, err error) {
	var out struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/readyz", retry: true, noKey: true}, &out); err != nil {
		return "", err
	}
	return out.Version, nil
}

// OpenAPI returns Lipa's OpenAPI 3.1 document (GET /api/openapi.json) as
// JSON, for generating clients in other languages or checking
// compatibility. It sends no key.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	a, err := c.do(ctx, call{method: http.MethodGet, path: "/api/openapi.json", retry: true, noKey: true}, nil)
	if err != nil {
		return nil, err
	}
	if !json.Valid(a.body) {
		return nil, errors.New("lipa: GET /api/openapi.json: the answer is not JSON")
	}
	return a.body, nil
}
