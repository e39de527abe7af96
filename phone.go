package lipa

import "strings"

// MSISDN is a Kenyan mobile number in Daraja's canonical form: "254"
// followed by nine digits, the first of which is 7 or 1 ("2547XXXXXXXX" or
// "2541XXXXXXXX"), as Daraja wants in PartyA and PhoneNumber
// (docs/daraja.md "Phone numbers and amounts").
type MSISDN string

// ParsePhone normalises a phone number typed in any common Kenyan form to an
// MSISDN: "0712345678", "712345678", "+254 712 345 678", "254712345678",
// "00254712345678", "0112345678", with spaces, dashes, dots or parentheses
// anywhere. It checks the format only, never the operator (numbers are
// ported). Anything else, including a zero after the country code
// ("+2540712345678"), is an Invalid error with code "invalid_phone_number"
// naming the field phone_number.
func ParsePhone(s string) (MSISDN, error) {
	t := strings.TrimSpace(s)
	plus := strings.HasPrefix(t, "+")
	t = strings.TrimPrefix(t, "+")
	var b strings.Builder
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", invalidPhone(s)
		}
	}
	d := b.String()
	var local string
	switch {
	case plus && strings.HasPrefix(d, "254"):
		local = d[3:]
	case plus:
		return "", invalidPhone(s)
	case strings.HasPrefix(d, "00254"):
		local = d[5:]
	case strings.HasPrefix(d, "254") && len(d) == 12:
		local = d[3:]
	case strings.HasPrefix(d, "0") && len(d) == 10:
		local = d[1:]
	case len(d) == 9:
		local = d
	default:
		return "", invalidPhone(s)
	}
	if len(local) != 9 || (local[0] != '7' && local[0] != '1') {
		return "", invalidPhone(s)
	}
	return MSISDN("254" + local), nil
}

func invalidPhone(s string) error {
	// The input is not echoed: it may be a real phone number, and error
	// messages are logged.
	return InvalidField("invalid_phone_number", "phone_number",
		"phone_number is not a Kenyan mobile number; use a form such as 0712345678, +254712345678 or 254712345678")
}

// Masked returns the number with its middle hidden ("2547****4149"), the only
// form in which Lipa writes a phone number to its logs. Values too short to
// mask become "****".
func (m MSISDN) Masked() string { return MaskPhone(string(m)) }

// MaskPhone hides the middle of any phone-like string for logging: the first
// four and last four characters stay, the rest becomes "****". Strings of
// eight characters or fewer become "****".
func MaskPhone(s string) string {
	r := []rune(s)
	if len(r) <= 8 {
		return "****"
	}
	return string(r[:4]) + "****" + string(r[len(r)-4:])
}

// truncate cuts s to at most n runes, for echoing bad input in messages.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
