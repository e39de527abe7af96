package gateway

import (
	"errors"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

// darajaCall names a call to Daraja for the errors apps and operators see:
// what it is, and what to do when it provably went nowhere or when its
// outcome is unknown.
type darajaCall struct {
	name      string // "STK push", "reversal", …
	retry     string // after a refusal at the gate (rate limit, maintenance): what was not done, and what to do
	unknown   string // when the outcome is unknown (no answer in time, an answer Lipa cannot read)
	isSTKPush bool   // the payer's input (phone, amount) is in the request
}

// The calls Lipa makes to Daraja.
var (
	callSTKPush = darajaCall{name: "STK push", isSTKPush: true,
		retry:   "no prompt was sent, so push again %s with a new Idempotency-Key",
		unknown: "the customer may still get the prompt, so watch this payment instead of pushing again"}
	callReversal = darajaCall{name: "reversal",
		retry:   "the reversal was not asked for; Lipa asks again %s",
		unknown: "the reversal may still be made, so watch this refund instead of asking again"}
	callStatus = darajaCall{name: "Transaction Status query",
		retry:   "nothing was asked; ask again %s",
		unknown: "its answer may still come; ask again in a minute"}
	callPull = darajaCall{name: "Pull Transactions query",
		retry:   "nothing was read; Lipa asks again %s",
		unknown: "nothing was read; Lipa asks again at its next pass"}
	callPullRegister = darajaCall{name: "Pull Transactions registration",
		retry:   "nothing was registered; register again %s",
		unknown: "the shortcode may have been registered; registering again is harmless"}
)

// darajaError is the one mapping from an error of a Daraja call to the
// error apps and operators get. Every Daraja call of the gateway answers
// through it:
//
//   - daraja.ErrNoInitiator: NotConfigured "not_configured", naming
//     MPESA_INITIATOR_NAME and MPESA_INITIATOR_PASSWORD;
//   - a refusal for the rate of requests (daraja.RateLimited): Unavailable
//     "daraja_rate_limited"; under maintenance: Unavailable
//     "daraja_unavailable";
//   - Daraja's error envelope: Upstream "daraja_error" with Daraja's code
//     and message; for an STK push, "Unable to lock subscriber" is Conflict
//     "subscriber_busy" and a refused phone number or amount is Invalid
//     "invalid_phone_number" or "invalid_amount";
//   - consumer key and secret refused: Upstream "daraja_error";
//   - no connection, or no token (the call was never sent): Unavailable
//     "daraja_unreachable";
//   - no answer in time: Timeout "daraja_timeout";
//   - anything else (an answer Lipa cannot read): Upstream "daraja_error".
//
// The cause is wrapped, for the log.
func darajaError(c darajaCall, err error) *lipa.Error {
	var (
		apiErr  *daraja.APIError
		authErr *daraja.AuthError
	)
	var e *lipa.Error
	switch {
	case errors.Is(err, daraja.ErrNoInitiator):
		e = lipa.Errorf(lipa.NotConfigured, "not_configured",
			"the %s needs M-Pesa initiator credentials, which this Lipa does not have: the operator must set MPESA_INITIATOR_NAME and MPESA_INITIATOR_PASSWORD", c.name).
			With("settings", []string{"MPESA_INITIATOR_NAME", "MPESA_INITIATOR_PASSWORD"})
	case daraja.RateLimited(err):
		e = lipa.Errorf(lipa.Unavailable, "daraja_rate_limited",
			"M-Pesa refused the %s because too many requests reached it at once; "+c.retry, c.name, "after Retry-After seconds")
	case errors.As(err, &apiErr) && apiErr.Reason() == daraja.ReasonMaintenance:
		e = lipa.Errorf(lipa.Unavailable, "daraja_unavailable", "M-Pesa refused the %s while under maintenance; "+c.retry, c.name, "later")
	case errors.As(err, &apiErr):
		e = lipa.Errorf(lipa.Upstream, "daraja_error", "M-Pesa refused the %s: %s %s", c.name, apiErr.ErrorCode, apiErr.ErrorMessage)
		switch {
		case c.isSTKPush && apiErr.Reason() == daraja.ReasonSubscriberBusy:
			e = lipa.Errorf(lipa.Conflict, "subscriber_busy", "the customer already has an M-Pesa prompt open; try again in a minute")
		case c.isSTKPush && apiErr.Reason() == daraja.ReasonInvalidField && apiErr.Field() == "PhoneNumber":
			e = lipa.InvalidField("invalid_phone_number", "phone_number", "M-Pesa refused the phone number: %s", apiErr.ErrorMessage)
		case c.isSTKPush && apiErr.Reason() == daraja.ReasonInvalidField && apiErr.Field() == "Amount":
			e = lipa.InvalidField("invalid_amount", "amount", "M-Pesa refused the amount: %s", apiErr.ErrorMessage)
		}
	case errors.As(err, &authErr):
		e = lipa.Errorf(lipa.Upstream, "daraja_error", "M-Pesa refused Lipa's credentials; the operator must check MPESA_CONSUMER_KEY and MPESA_CONSUMER_SECRET")
	case errors.Is(err, daraja.ErrUnreachable) || errors.Is(err, daraja.ErrNoToken):
		e = lipa.Errorf(lipa.Unavailable, "daraja_unreachable", "M-Pesa could not be reached; the %s was not sent, so it is safe to try again", c.name)
	case errors.Is(err, daraja.ErrTimeout):
		e = lipa.Errorf(lipa.Timeout, "daraja_timeout", "M-Pesa did not answer in time; %s", c.unknown)
	default:
		e = lipa.Errorf(lipa.Upstream, "daraja_error", "M-Pesa gave an answer Lipa could not read; %s", c.unknown)
	}
	return e.Wrap(err)
}

// provablyNotSent reports whether err shows that a Daraja call never
// reached Daraja, or was refused before Daraja acted on it (a rate limit,
// maintenance), so that sending it again cannot do the thing twice.
func provablyNotSent(err error) bool {
	var apiErr *daraja.APIError
	return daraja.RateLimited(err) || errors.Is(err, daraja.ErrUnreachable) || errors.Is(err, daraja.ErrNoToken) ||
		(errors.As(err, &apiErr) && apiErr.Reason() == daraja.ReasonMaintenance)
}
