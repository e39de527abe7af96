package lipa

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is a sum of Kenya shillings counted in cents (KES 1 = 100). STK push
// amounts are always whole shillings (Daraja refuses fractions,
// docs/daraja.md "Phone numbers and amounts"); C2B amounts may carry cents. In JSON an Amount is a number
// of shillings: 1000 cents is 10, 10050 cents is 100.5.
type Amount int64

// Limits of an STK push amount in whole shillings (docs/daraja.md "Phone
// numbers and amounts", from the portal's M-Pesa Express FAQ 5).
const (
	MinSTKShillings = 1
	MaxSTKShillings = 250000
)

// Shillings returns n whole shillings as an Amount.
func Shillings(n int64) Amount { return Amount(n * 100) }

// WholeShillings returns the amount in shillings and whether it has no cents.
func (a Amount) WholeShillings() (int64, bool) { return int64(a) / 100, a%100 == 0 }

// String formats the amount as shillings without a float: "10", "100.5",
// "0.05".
func (a Amount) String() string {
	neg := a < 0
	u := uint64(a)
	if neg {
		u = -u // two's complement: right for math.MinInt64 too
	}
	s := strconv.FormatUint(u/100, 10)
	if c := u % 100; c != 0 {
		s += strings.TrimRight("."+strconv.FormatUint(100+c, 10)[1:], "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// MarshalJSON writes the amount as a JSON number of shillings.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads a JSON number (or numeric string) of shillings with
// at most two decimal places, as MarshalJSON writes it.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	neg := strings.HasPrefix(s, "-")
	v, err := ParseAmount(strings.TrimPrefix(s, "-"))
	if err != nil {
		return fmt.Errorf("amount %s: %w", b, err)
	}
	if neg {
		v = -v
	}
	*a = v
	return nil
}

// ParseAmount reads a decimal number of shillings with at most two decimal
// places of cents ("100", "100.5", "100.50", "100.000") into an Amount,
// exactly, with no float arithmetic. Signs, exponents, thousand separators
// and empty strings are refused. The error is plain (not an *Error): callers
// choose the field and code.
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, errNotDecimal
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return 0, errTooPrecise
	}
	frac += strings.Repeat("0", 2-len(frac))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/100-1 {
		return 0, errTooLarge
	}
	c, _ := strconv.ParseInt(frac, 10, 64)
	return Amount(w*100 + c), nil
}

// ParseSTKAmount reads the amount of an STK push: a whole number of
// shillings from MinSTKShillings to MaxSTKShillings, written as digits with
// an optional fraction of zeros ("10", "10.0", "10.00"). A fraction, zero, a
// negative, a non-number or more than the maximum is an Invalid error with
// code "invalid_amount" naming the field amount. Nothing is rounded.
func ParseSTKAmount(s string) (Amount, error) {
	a, err := ParseAmount(s)
	switch {
	case strings.TrimSpace(s) == "":
		return 0, InvalidField("invalid_amount", "amount", "amount is required: a whole number of shillings from %d to %d", MinSTKShillings, MaxSTKShillings)
	case strings.HasPrefix(strings.TrimSpace(s), "-"):
		return 0, InvalidField("invalid_amount", "amount", "amount must be at least %d shilling", MinSTKShillings)
	case err == errTooPrecise || (err == nil && a%100 != 0):
		return 0, InvalidField("invalid_amount", "amount", "amount %s is not a whole number of shillings; M-Pesa takes whole shillings only", truncate(s, 30))
	case err == errTooLarge:
		return 0, InvalidField("invalid_amount", "amount", "amount must be at most %d shillings", MaxSTKShillings)
	case err != nil:
		return 0, InvalidField("invalid_amount", "amount", "amount %q is not a number of shillings; send digits such as 10 or \"10\"", truncate(s, 30))
	case a < Shillings(MinSTKShillings):
		return 0, InvalidField("invalid_amount", "amount", "amount must be at least %d shilling", MinSTKShillings)
	case a > Shillings(MaxSTKShillings):
		return 0, InvalidField("invalid_amount", "amount", "amount must be at most %d shillings", MaxSTKShillings)
	}
	return a, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

type amountError string

func (e amountError) Error() string { return string(e) }

const (
	errNotDecimal amountError = "not a decimal number"
	errTooPrecise amountError = "more than two decimal places"
	errTooLarge   amountError = "too large"
)
