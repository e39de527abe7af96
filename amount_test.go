package lipa_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/lipa-gateway/lipa"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want lipa.Amount
	}{
		{"100", 10000},
		{"100.5", 10050},
		{"100.50", 10050},
		{"100.000", 10000},
		{"0.05", 5},
		{"0", 0},
		{"0.00", 0},
		{"1.00", 100},
		{"007", 700},
		{" 7 ", 700},
		{"49197.00", 4919700},
		{"92233720368547757.99", 9223372036854775799}, // the largest accepted
	}
	for _, tt := range tests {
		got, err := lipa.ParseAmount(tt.in)
		if err != nil {
			t.Errorf("ParseAmount(%q): got error %v, want %d", tt.in, err, tt.want)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseAmount(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseAmountRefused(t *testing.T) {
	for _, in := range []string{
		"", " ", ".", "1.", ".5", "-1", "+1", "1e3", "1,500", "1.005", "abc",
		"99999999999999999999", "92233720368547758", "1 000", "1..0", "0x10",
		"１０", // full-width digits
	} {
		got, err := lipa.ParseAmount(in)
		if err == nil {
			t.Errorf("ParseAmount(%q) = %d, want an error", in, got)
			continue
		}
		if got != 0 {
			t.Errorf("ParseAmount(%q) with error: got %d, want 0", in, got)
		}
		// The error is plain: callers choose the field and code.
		var e *lipa.Error
		if errors.As(err, &e) {
			t.Errorf("ParseAmount(%q): got *lipa.Error %v, want a plain error", in, err)
		}
	}
}

func TestParseSTKAmount(t *testing.T) {
	tests := []struct {
		in   string
		want lipa.Amount
	}{
		{"10", 1000}, // a JSON number 10 arrives as its text
		{"10.0", 1000},
		{"10.00", 1000},
		{" 10 ", 1000},
		{"1", 100},
		{"250000", 25000000},
		{"250000.00", 25000000},
	}
	for _, tt := range tests {
		got, err := lipa.ParseSTKAmount(tt.in)
		if err != nil {
			t.Errorf("ParseSTKAmount(%q): got error %v, want %d", tt.in, err, tt.want)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSTKAmount(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseSTKAmountRefused(t *testing.T) {
	for _, in := range []string{
		"10.5", "1500.50", "0", "0.00", "-5", "-0", "250001", "250000.01",
		"abc", "1,500", "1e3", "", "99999999999999999999", "10.001", "0.5",
	} {
		got, err := lipa.ParseSTKAmount(in)
		if err == nil {
			t.Errorf("ParseSTKAmount(%q) = %d, want an error", in, got)
			continue
		}
		if got != 0 {
			t.Errorf("ParseSTKAmount(%q) with error: got %d, want 0", in, got)
		}
		if k := lipa.ErrorKind(err); k != lipa.Invalid {
			t.Errorf("ParseSTKAmount(%q): got kind %q, want %q", in, k, lipa.Invalid)
		}
		if c := lipa.ErrorCode(err); c != "invalid_amount" {
			t.Errorf("ParseSTKAmount(%q): got code %q, want %q", in, c, "invalid_amount")
		}
		var e *lipa.Error
		if errors.As(err, &e) && e.Details["field"] != "amount" {
			t.Errorf("ParseSTKAmount(%q): got Details[field] %v, want %q", in, e.Details["field"], "amount")
		}
	}
}

func TestAmountString(t *testing.T) {
	tests := []struct {
		in   lipa.Amount
		want string
	}{
		{0, "0"},
		{5, "0.05"},
		{50, "0.5"},
		{100, "1"},
		{1000, "10"},
		{10050, "100.5"},
		{10005, "100.05"},
		{10099, "100.99"},
		{-150, "-1.5"},
		{-5, "-0.05"},
		{-100, "-1"},
		{lipa.Shillings(250000), "250000"},
		{9223372036854775799, "92233720368547757.99"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Amount(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		b, err := json.Marshal(tt.in)
		if err != nil {
			t.Errorf("json.Marshal(Amount(%d)): got error %v, want nil", int64(tt.in), err)
			continue
		}
		if string(b) != tt.want {
			t.Errorf("json.Marshal(Amount(%d)) = %s, want %s", int64(tt.in), b, tt.want)
		}
	}

	// Inside a struct the amount is a JSON number, not a string.
	b, err := json.Marshal(struct {
		Amount lipa.Amount `json:"amount"`
	}{10050})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if got, want := string(b), `{"amount":100.5}`; got != want {
		t.Errorf("json.Marshal(struct) = %s, want %s", got, want)
	}
}

func TestAmountWholeShillings(t *testing.T) {
	tests := []struct {
		in    lipa.Amount
		n     int64
		whole bool
	}{
		{0, 0, true},
		{1000, 10, true},
		{1050, 10, false},
		{5, 0, false},
	}
	for _, tt := range tests {
		n, whole := tt.in.WholeShillings()
		if n != tt.n || whole != tt.whole {
			t.Errorf("Amount(%d).WholeShillings() = %d, %t; want %d, %t", int64(tt.in), n, whole, tt.n, tt.whole)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{
		"100", "100.5", "100.50", "0.05", "100.000", " 7 ", "", ".", "1.",
		".5", "-1", "+1", "1e3", "1,500", "1.005", "abc", "99999999999999999999",
		"92233720368547757.99", "92233720368547758",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := lipa.ParseAmount(s)
		if err != nil {
			if a != 0 {
				t.Errorf("ParseAmount(%q) with error: got %d, want 0", s, a)
			}
			return
		}
		if a < 0 {
			t.Fatalf("ParseAmount(%q) = %d, want >= 0", s, a)
		}
		again, err := lipa.ParseAmount(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAmount(%q) = %d, %v; want %d, nil (from ParseAmount(%q))", a.String(), again, err, a, s)
		}
	})
}

func FuzzParseSTKAmount(f *testing.F) {
	for _, s := range []string{
		"10", "10.0", "10.00", "1", "250000", "10.5", "0", "-5", "250001",
		"abc", "1,500", "1e3", "", "+10", " 10 ", "99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := lipa.ParseSTKAmount(s)
		if err != nil {
			if c := lipa.ErrorCode(err); c != "invalid_amount" {
				t.Errorf("ParseSTKAmount(%q): got code %q, want %q", s, c, "invalid_amount")
			}
			return
		}
		n, whole := a.WholeShillings()
		if !whole || n < lipa.MinSTKShillings || n > lipa.MaxSTKShillings {
			t.Fatalf("ParseSTKAmount(%q) = %d cents, want whole shillings within %d..%d", s, a, lipa.MinSTKShillings, lipa.MaxSTKShillings)
		}
	})
}
