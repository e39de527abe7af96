package gateway

import (
	"fmt"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

// callbackPhoneMismatch checks a success callback's PhoneNumber against the
// payment's phone, comparing what is visible of it (daraja.ComparePhone:
// every digit a mask shows must match the digit at its place; a SHA-256
// hash must be the payment's number's). It returns why the callback must
// not be applied, or "" when it may: the phone differs, or it is missing or
// shows too little to compare while Config.CallbackPhoneOptional is off.
// Notes hold phone numbers masked only.
func (g *Gateway) callbackPhoneMismatch(reported, paymentPhone string) string {
	switch daraja.ComparePhone(reported, paymentPhone) {
	case daraja.PhoneMatches:
		return ""
	case daraja.PhoneHidden:
		if g.cfg.CallbackPhoneOptional {
			return ""
		}
		if reported == "" {
			return "success callback has no PhoneNumber to compare with the payment's; not applied (LIPA_CALLBACK_PHONE_OPTIONAL=true accepts it)"
		}
		return fmt.Sprintf("callback phone %s shows too little to compare with the payment's %s; not applied (LIPA_CALLBACK_PHONE_OPTIONAL=true accepts it)",
			lipa.MaskPhone(reported), lipa.MaskPhone(paymentPhone))
	}
	return fmt.Sprintf("callback phone %s differs from the payment's %s; not applied", lipa.MaskPhone(reported), lipa.MaskPhone(paymentPhone))
}
