package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
)

// funcs are the templates' helpers. Times are shown in Kenya time, the
// operators' and Daraja's; amounts as KES with thousands separators.
var funcs = template.FuncMap{
	"kes":      kes,
	"when":     when,
	"iso":      iso,
	"dur":      dur,
	"pct":      pct,
	"count":    count,
	"lower":    strings.ToLower,
	"reason":   reasonText,
	"contains": strings.Contains,
	"set":      func(t time.Time) bool { return !t.IsZero() },
	"list":     func(s ...string) []string { return s },
	"review":   reviewReasonText,
}

// kes formats an amount as "KES 1,250.50" (cents only when there are some).
func kes(a lipa.Amount) string {
	s := a.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return "KES " + out
}

// count formats a count with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// when formats a time in Kenya time, "2026-12-03 14:05:09"; "" for zero.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(lipa.NairobiTime).Format("2006-01-02 15:04:05")
}

// iso formats a time as RFC 3339 in UTC, for <time datetime>.
func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// dur formats a duration for people: "850 ms", "2.4 s", "3 min 5 s".
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// pct formats a ratio from 0 to 1 as a percentage; a negative ratio (none
// measured) as a dash.
func pct(f float64) string {
	if f < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", f*100)
}

// reasonText names a failure reason in words.
func reasonText(r lipa.FailureReason) string {
	switch r {
	case lipa.ReasonCancelledByUser:
		return "cancelled by the customer"
	case lipa.ReasonInsufficientFunds:
		return "insufficient funds"
	case lipa.ReasonWrongPIN:
		return "wrong PIN"
	case lipa.ReasonCustomerUnreachable:
		return "customer unreachable"
	case lipa.ReasonExpired:
		return "expired"
	case "":
		return ""
	}
	return strings.ReplaceAll(string(r), "_", " ")
}
