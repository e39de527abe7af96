package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
)

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{kes(0), "KES 0"},
		{kes(lipa.Shillings(10)), "KES 10"},
		{kes(lipa.Amount(125050)), "KES 1,250.50"},
		{kes(lipa.Amount(100005)), "KES 1,000.05"},
		{kes(lipa.Shillings(250000)), "KES 250,000"},
		{kes(lipa.Shillings(1234567)), "KES 1,234,567"},
		{kes(-lipa.Shillings(1500)), "KES -1,500"},
		{count(0), "0"},
		{count(999), "999"},
		{count(1000000), "1,000,000"},
		{pct(-1), "–"},
		{pct(0.9345), "93.5 %"},
		{dur(850 * time.Millisecond), "850 ms"},
		{dur(2400 * time.Millisecond), "2.4 s"},
		{dur(185 * time.Second), "3 min 5 s"},
		{when(time.Date(2026, 12, 1, 21, 30, 0, 0, time.UTC)), "2026-12-02 00:30:00"},
		{when(time.Time{}), ""},
		{reasonText(lipa.ReasonLimitExceeded), "limit exceeded"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestChart: bars stack successful, failed and pending from the axis up,
// scaled to a round maximum, a day with payments never drawn empty.
func TestChart(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, lipa.NairobiTime)
	c := drawChart([]dayLine{{Day: day, Success: 70, Failed: 20, Pending: 10}, {Day: day.AddDate(0, 0, 1)}, {Day: day.AddDate(0, 0, 2), Success: 1}})
	if len(c.Bars) != 3 || len(c.Bars[0].Segments) != 3 || len(c.Bars[1].Segments) != 0 || len(c.Bars[2].Segments) != 1 {
		t.Fatalf("bars: got %+v", c.Bars)
	}
	full := c.Bars[0]
	if top := full.Segments[2]; top.Y != 10 || full.Segments[0].Y+full.Segments[0].Height != full.BaseY {
		t.Errorf("the fullest bar: got %+v, want it from the axis (%d) to the top (10)", full.Segments, full.BaseY)
	}
	if h := c.Bars[2].Segments[0].Height; h < 1 {
		t.Errorf("a day with one payment: got height %d, want at least 1", h)
	}
	if c.Ticks[len(c.Ticks)-1].Label != "100" {
		t.Errorf("scale: got top tick %q, want 100", c.Ticks[len(c.Ticks)-1].Label)
	}
	for _, x := range []struct{ n, want int64 }{{1, 1}, {3, 5}, {7, 10}, {11, 20}, {2740, 5000}} {
		if got := niceCeil(x.n); got != x.want {
			t.Errorf("niceCeil(%d): got %d, want %d", x.n, got, x.want)
		}
	}
}

// TestChanges: an audit entry's changes are the leaves that differ between
// before and after, by dotted path; a new document lists its set values.
func TestChanges(t *testing.T) {
	for _, c := range []struct {
		name, before, after string
		want                []string
	}{
		{"a flag flipped", `{"name":"shop","disabled":false}`, `{"name":"shop","disabled":true}`, []string{"disabled: false → true"}},
		{"nested", `{"item":{"state":"open","resolution":null},"payment":{"status":"PENDING"}}`,
			`{"item":{"state":"resolved","resolution":"settled"},"payment":{"status":"SUCCESS"}}`,
			[]string{`item.resolution: null → "settled"`, `item.state: "open" → "resolved"`, `payment.status: "PENDING" → "SUCCESS"`}},
		{"created", ``, `{"name":"duka","webhook_url":"","disabled":false}`, []string{"disabled: false", `name: "duka"`}},
		{"a document gained a part", `{"item":{"state":"open"}}`, `{"item":{"state":"resolved"},"payment":{"amount":"250","app":null}}`,
			[]string{`item.state: "open" → "resolved"`, `payment.amount: (none) → "250"`}},
		{"a field removed", `{"a":1,"b":2}`, `{"a":1}`, []string{"b: 2 → (none)"}},
		{"nothing changed", `{"a":1}`, `{"a":1}`, nil},
		{"no after", `{"a":1}`, ``, nil},
		{"not objects", `[1]`, `[2]`, nil},
	} {
		var before []byte
		if c.before != "" {
			before = []byte(c.before)
		}
		got := changes(before, []byte(c.after))
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	var many strings.Builder
	many.WriteString("{")
	for i := range maxChanges + 3 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"k%02d":%d`, i, i)
	}
	many.WriteString("}")
	if got := changes(nil, []byte(many.String())); len(got) != maxChanges+1 || !strings.Contains(got[maxChanges], "3 more") {
		t.Errorf("many changes: got %q, want %d and a line saying 3 more", got, maxChanges)
	}
}
