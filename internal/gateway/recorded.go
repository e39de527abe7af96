package gateway

import (
	"errors"

	"github.com/lipa-gateway/lipa"
)

// recordedError marks an error of InitiateSTKPush that came after the
// request stored its payment (and, with an Idempotency-Key, reserved the
// key for it).
type recordedError struct {
	payment lipa.PaymentID
	err     error
}

func (e *recordedError) Error() string { return e.err.Error() }
func (e *recordedError) Unwrap() error { return e.err }

// recorded wraps err, returned after payment was stored.
func recorded(payment lipa.PaymentID, err error) error {
	if err == nil {
		return nil
	}
	return &recordedError{payment: payment, err: err}
}

// RecordedPayment returns the payment that InitiateSTKPush stored before
// failing with err: the payment of the request that reserved its
// Idempotency-Key, whose answer is the one to keep for repeats. It returns
// "" for an error that came before anything was stored, and for a repeat of
// the key (idempotency_key_reused names the first request's payment in its
// details, but that answer is not this request's to keep).
func RecordedPayment(err error) lipa.PaymentID {
	var r *recordedError
	if errors.As(err, &r) {
		return r.payment
	}
	return ""
}
