package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderName is the HTTP header that carries a delivery's signature.
const HeaderName = "Lipa-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock, either side, when Verify is given a tolerance <= 0 and
// always in VerifyRequest.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBytes is the largest body VerifyRequest reads when given a limit
// <= 0: 1 MiB, far more than any Lipa event.
const DefaultMaxBytes = 1 << 20

// The event types Lipa sends (Event.Type). Receivers should ignore types they
// do not know: Lipa may add more.
const (
	TypePaymentSucceeded = "payment.succeeded" // a payment of the app became SUCCESS
	TypePaymentFailed    = "payment.failed"    // a payment of the app became FAILED
	TypePaymentClaimed   = "payment.claimed"   // the app claimed a payment
	TypeC2BReceived      = "c2b.received"      // a C2B payment arrived and waits to be claimed
	TypeWebhookTest      = "webhook.test"      // an operator tested the webhook from the console; Payment is null
	TypeRefundSucceeded  = "refund.succeeded"  // a refund of the app's payment succeeded (the event also carries "refund")
	TypeRefundFailed     = "refund.failed"     // a refund of the app's payment failed or was rejected
)

// Event is the JSON body of a delivery. ID is unique per event and stays the
// same across retries and redeliveries, so it is the key to deduplicate on.
// CreatedAt is when the event happened (RFC 3339, UTC), not when it was sent.
// Payment is the payment as GET /api/payments/{id}/ shows it, left undecoded
// so that a receiver decodes only the fields it needs.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Payment   json.RawMessage `json:"payment"`
}

// Errors returned by Verify and VerifyRequest, possibly wrapped with detail;
// test for them with errors.Is.
var (
	// ErrMissingHeader means the Lipa-Signature header is absent or blank.
	ErrMissingHeader = errors.New("webhook: missing " + HeaderName + " header")
	// ErrMalformedHeader means the header has no t=, more than one t=, a t=
	// that is not a decimal integer, or no v1=.
	ErrMalformedHeader = errors.New("webhook: malformed " + HeaderName + " header")
	// ErrTooOld means a signature matched but its timestamp is further than
	// the tolerance from now, in the past or the future: a replayed delivery,
	// or a receiver (or Lipa) whose clock is wrong.
	ErrTooOld = errors.New("webhook: signature timestamp outside tolerance")
	// ErrNoMatch means no v1 signature matches the body and secret: a wrong
	// secret, a modified body, or a request not sent by Lipa.
	ErrNoMatch = errors.New("webhook: no matching signature")
)

// Sign returns the Lipa-Signature header value for body sent at time t (whole
// seconds; anything finer is dropped), signed with secret:
// "t=<unix seconds>,v1=<lower-case hex HMAC-SHA256 of "<t>.<body>">".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// mac returns the HMAC-SHA256 of "<ts>.<body>" keyed with secret.
func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify reports whether header, a Lipa-Signature value, proves that body was
// signed with secret at a time within tolerance of now, either side; a
// tolerance <= 0 means DefaultTolerance. It returns nil when at least one v1
// entry matches (several are allowed, one per secret during a rotation) and
// the timestamp is in range. Entries are separated by commas, with optional
// spaces; keys other than t and v1 are ignored, and a v1 value that is not hex
// simply does not match. Signatures are compared in constant time.
//
// The error, testable with errors.Is, is ErrMissingHeader for a blank header,
// ErrMalformedHeader when the header cannot be parsed, ErrNoMatch when no
// signature matches, and ErrTooOld when one matches but the timestamp is out
// of range. The signature is checked first, so ErrTooOld is only ever reported
// for a delivery genuinely signed with secret.
func Verify(header string, body []byte, secret []byte, tolerance time.Duration, now time.Time) error {
	if strings.TrimSpace(header) == "" {
		return ErrMissingHeader
	}
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return err
	}
	want := mac(secret, strconv.FormatInt(ts, 10), body)
	matched := false
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err != nil {
			continue
		}
		// Compare every entry, not stopping at a match, so the time taken
		// does not depend on which entry matched.
		if hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return ErrNoMatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Sub saturates rather than overflows for absurd timestamps, so the
	// comparison stays correct without taking an absolute value.
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now", ErrTooOld, ts, d.Round(time.Second))
	}
	return nil
}

// parseHeader splits a Lipa-Signature value into its timestamp and its v1
// signatures, in order.
func parseHeader(header string) (ts int64, sigs []string, err error) {
	seenT := false
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch key {
		case "t":
			if seenT {
				return 0, nil, fmt.Errorf("%w: more than one t=", ErrMalformedHeader)
			}
			seenT = true
			ts, err = strconv.ParseInt(value, 10, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: t= is not a decimal integer", ErrMalformedHeader)
			}
		case "v1":
			sigs = append(sigs, value)
		}
	}
	if !seenT {
		return 0, nil, fmt.Errorf("%w: no t=", ErrMalformedHeader)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: no v1=", ErrMalformedHeader)
	}
	return ts, sigs, nil
}

// VerifyRequest reads r.Body, at most maxBytes of it (DefaultMaxBytes, 1 MiB,
// when maxBytes <= 0), verifies it against r's Lipa-Signature header with
// secret, DefaultTolerance and the current time, and returns the body for the
// caller to decode. It is meant for a handler: it consumes r.Body and does not
// restore it.
//
// Besides Verify's errors it returns ErrMissingHeader without reading the body
// when the header is absent, an error wrapping *http.MaxBytesError (test with
// errors.As) when the body is longer than maxBytes, and the read error when
// reading fails. The body is returned only when the error is nil.
func VerifyRequest(r *http.Request, secret []byte, maxBytes int64) ([]byte, error) {
	header := r.Header.Get(HeaderName)
	if strings.TrimSpace(header) == "" {
		return nil, ErrMissingHeader
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	var body []byte
	if r.Body != nil {
		limit := maxBytes
		if limit < math.MaxInt64 {
			limit++ // one byte more, to tell a full body from a cut one
		}
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, limit))
		if err != nil {
			return nil, fmt.Errorf("webhook: read body: %w", err)
		}
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("webhook: body longer than %d bytes: %w", maxBytes, &http.MaxBytesError{Limit: maxBytes})
	}
	if err := Verify(header, body, secret, DefaultTolerance, time.Now()); err != nil {
		return nil, err
	}
	return body, nil
}
