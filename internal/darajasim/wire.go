package darajasim

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// value is a request field Daraja accepts as a JSON string or a JSON number
// (docs/daraja.md "Conventions"). text is the string's content or the
// number's literal text; null and absence leave set false; any other JSON
// type (object, array, boolean) sets bad, so validation reports the field as
// invalid rather than the payload as malformed.
type value struct {
	text string
	set  bool
	bad  bool
	// boolean is true for JSON true or false (also bad: no Daraja field is
	// a boolean), truth its value.
	boolean, truth bool
}

func (v *value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*v = value{}
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = value{text: s, set: true}
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*v = value{text: string(b), set: true}
	case string(b) == "true" || string(b) == "false":
		*v = value{set: true, bad: true, boolean: true, truth: string(b) == "true"}
	default:
		*v = value{set: true, bad: true}
	}
	return nil
}

// str returns the field's text, or "" when it is missing or of a wrong type.
func (v value) str() string {
	if !v.set || v.bad {
		return ""
	}
	return v.text
}

// check is one field rule: the field's name as Daraja spells it in its
// message, its value, and whether the value is valid.
type check struct {
	name string
	v    value
	ok   func(string) bool
}

// firstInvalid returns the 400.002.02 refusal for the first failing check, or
// nil. A missing, null or wrongly typed field fails every rule.
func firstInvalid(checks ...check) *failure {
	for _, c := range checks {
		if !c.v.set || c.v.bad || !c.ok(c.v.text) {
			return invalid(c.name)
		}
	}
	return nil
}

// MaxAmount is the largest amount, in whole shillings, a single STK push or
// C2B payment may carry (docs/daraja.md "M-Pesa Express").
const MaxAmount = 250_000

var (
	shortCodeRE = regexp.MustCompile(`^[0-9]{5,7}$`)
	msisdnRE    = regexp.MustCompile(`^254[17][0-9]{8}$`)
	digitsRE    = regexp.MustCompile(`^[0-9]+$`)
	amountRE    = regexp.MustCompile(`^[0-9]+(\.0+)?$`)
)

func validShortCode(s string) bool { return shortCodeRE.MatchString(s) }
func validMSISDN(s string) bool    { return msisdnRE.MatchString(s) }
func validDigits(s string) bool    { return digitsRE.MatchString(s) }
func nonEmpty(s string) bool       { return s != "" }

// validTimestamp reports whether s is a real yyyyMMddHHmmss time.
func validTimestamp(s string) bool {
	if len(s) != len(timestampLayout) || !digitsRE.MatchString(s) {
		return false
	}
	_, err := time.ParseInLocation(timestampLayout, s, eat)
	return err == nil
}

// parseAmount parses a whole-shilling amount between 1 and MaxAmount. A zero
// fraction ("1.00", as JSON numbers from float-minded clients come) is
// accepted; any other fraction, sign, exponent or space is not.
func parseAmount(s string) (int64, bool) {
	if !amountRE.MatchString(s) {
		return 0, false
	}
	whole, _, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n < 1 || n > MaxAmount {
		return 0, false
	}
	return n, true
}

func validAmount(s string) bool { _, ok := parseAmount(s); return ok }

// validURL reports whether s is an absolute http or https URL with a host.
func validURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Opaque == ""
}

// lengthBetween returns a rule accepting strings of min to max characters.
func lengthBetween(min, max int) func(string) bool {
	return func(s string) bool {
		n := utf8.RuneCountInString(s)
		return n >= min && n <= max
	}
}

func oneOf(allowed ...string) func(string) bool {
	return func(s string) bool {
		for _, a := range allowed {
			if s == a {
				return true
			}
		}
		return false
	}
}

// jsonContentType reports whether r says its body is JSON: a Content-Type
// of application/json, with or without parameters such as charset. Daraja
// refuses an STK push without it (docs/daraja.md "M-Pesa Express").
func jsonContentType(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
