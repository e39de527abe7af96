package lipa

import (
	"errors"
	"fmt"
)

// Kind is the category of an Error. The API maps each kind to one HTTP
// status in a single place (internal/api); every other layer only chooses a
// kind and a code.
type Kind string

// The kinds of Error. Anything that is not a *Error is treated as Internal.
const (
	Invalid          Kind = "invalid"            // bad input: 400
	Unauthorized     Kind = "unauthorized"       // missing, unknown or disabled API key: 401
	Forbidden        Kind = "forbidden"          // the caller may not use this endpoint from where it is (callback source): 403
	NotFound         Kind = "not_found"          // no such object, or one the app may not see: 404
	MethodNotAllowed Kind = "method_not_allowed" // the endpoint exists for other methods: 405
	Conflict         Kind = "conflict"           // the object's state forbids the request: 409
	RequestTimeout   Kind = "request_timeout"    // the client did not send its whole request in time: 408
	TooLarge         Kind = "too_large"          // the request body is over the limit: 413
	Unprocessable    Kind = "unprocessable"      // well-formed but contradicts stored data (amount mismatch): 422
	TooManyRequests  Kind = "too_many_requests"  // a rate limit was hit: 429
	Upstream         Kind = "upstream"           // Daraja refused or failed: 502
	Timeout          Kind = "timeout"            // Daraja did not answer in time: 504
	Unavailable      Kind = "unavailable"        // a dependency (database, Daraja) cannot be reached: 503
	NotConfigured    Kind = "not_configured"     // the feature needs settings the operator has not made (initiator credentials): 501
	Internal         Kind = "internal"           // a bug or an unexpected failure: 500
)

// Error is Lipa's one error type. Code is a stable snake_case identifier that
// clients may branch on (documented in docs/API.md); Message is a sentence safe
// to show an app; Details carries structured context (the field that was
// wrong, the payment id); Err is the cause, for logs only.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Details map[string]any
	Err     error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind and code with a formatted
// message and no details.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with key=value added to its details.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// Wrap returns a copy of e whose cause is err.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// InvalidField returns an Invalid error with the given code whose details name
// the offending request field.
func InvalidField(code, field, format string, args ...any) *Error {
	return Errorf(Invalid, code, format, args...).With("field", field)
}

// ErrorKind returns the kind of err's first *Error, or Internal when there is
// none (an unknown error is a bug until proven otherwise).
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ErrorCode returns the code of err's first *Error, or "internal_error".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal_error"
}
