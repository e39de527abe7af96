package lipa_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/lipa-gateway/lipa"
)

// canonicalMSISDN is the only shape ParsePhone may return (docs/daraja.md "Phone numbers and amounts").
var canonicalMSISDN = regexp.MustCompile(`^254[17]\d{8}$`)

func TestParsePhoneValid(t *testing.T) {
	tests := []struct {
		in   string
		want lipa.MSISDN
	}{
		{"0712345678", "254712345678"},
		{"712345678", "254712345678"},
		{"+254 712 345 678", "254712345678"},
		{"+254712345678", "254712345678"},
		{"254712345678", "254712345678"},
		{"00254712345678", "254712345678"},
		{"0112345678", "254112345678"},       // 01xx numbers
		{"254112345678", "254112345678"},     // 01xx numbers
		{"+254 112 345 678", "254112345678"}, // 01xx numbers
		{"112345678", "254112345678"},
		{"(0708) 374149", "254708374149"}, // written with punctuation, a prefix or nine digits
		{"0708-374-149", "254708374149"},  // written with punctuation, a prefix or nine digits
		{"0708.374.149", "254708374149"},
		{" 0712345678 ", "254712345678"},
		{"+254 708 374 149", "254708374149"}, // written with punctuation, a prefix or nine digits
		{"254 708 374 149", "254708374149"},  // written with punctuation, a prefix or nine digits
		{"00254708374149", "254708374149"},   // written with punctuation, a prefix or nine digits
		{"708374149", "254708374149"},        // written with punctuation, a prefix or nine digits
		{"\t0712345678\n", "254712345678"},
	}
	for _, tt := range tests {
		got, err := lipa.ParsePhone(tt.in)
		if err != nil {
			t.Errorf("ParsePhone(%q): got error %v, want %q", tt.in, err, tt.want)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParsePhoneInvalid(t *testing.T) {
	tests := []string{
		"",
		"   ",
		"12345",
		"07083741",         // too short
		"+2540708374149",   // a zero after the country code
		"0812345678",       // not 7 or 1 after the trunk 0
		"254812345678",     // not 7 or 1 after the country code
		"+243 812 345 678", // not Kenyan: DRC
		"07123456789",      // 11 digits
		"abc",
		"0712a45678",
		"++254712345678",
		"254 712 345 6789", // 13 digits
		"+0712345678",      // a plus without the country code
		"+712345678",
		"0254712345678",
		"00254 0712345678",
		"071234567８", // a full-width digit
		"0712345678 ext 1",
		"0712/345/678",
	}
	for _, in := range tests {
		got, err := lipa.ParsePhone(in)
		if err == nil {
			t.Errorf("ParsePhone(%q) = %q, want an error", in, got)
			continue
		}
		if got != "" {
			t.Errorf("ParsePhone(%q) with error: got %q, want \"\"", in, got)
		}
		if k := lipa.ErrorKind(err); k != lipa.Invalid {
			t.Errorf("ParsePhone(%q): got kind %q, want %q", in, k, lipa.Invalid)
		}
		if c := lipa.ErrorCode(err); c != "invalid_phone_number" {
			t.Errorf("ParsePhone(%q): got code %q, want %q", in, c, "invalid_phone_number")
		}
		var e *lipa.Error
		if !errors.As(err, &e) {
			t.Errorf("ParsePhone(%q): got %T, want *lipa.Error", in, err)
			continue
		}
		if f := e.Details["field"]; f != "phone_number" {
			t.Errorf("ParsePhone(%q): got Details[field] %v, want %q", in, f, "phone_number")
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"254708374149", "2547****4149"},
		{"254712345678", "2547****5678"},
		{"", "****"},
		{"1234", "****"},
		{"12345678", "****"},
		{"123456789", "1234****6789"},
		{"2547 ***** 149", "2547**** 149"},
		{"bbff37cea44ac0b2d964ee0dfb8d2df8513dc7ba1b36129a929fc3fbd6dd4af4", "bbff****4af4"},
	}
	for _, tt := range tests {
		if got := lipa.MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := lipa.MSISDN("254708374149").Masked(), "2547****4149"; got != want {
		t.Errorf("MSISDN.Masked() = %q, want %q", got, want)
	}
}

func FuzzParsePhone(f *testing.F) {
	for _, s := range []string{
		"0712345678", "712345678", "+254 712 345 678", "254712345678",
		"00254712345678", "0112345678", "(0708) 374149", "0708-374-149",
		"0708.374.149", " 0712345678 ", "", "+2540708374149", "0812345678",
		"++254712345678", "254 712 345 6789", "+243 812 345 678",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := lipa.ParsePhone(s)
		if err != nil {
			if got != "" {
				t.Errorf("ParsePhone(%q) with error: got %q, want \"\"", s, got)
			}
			if c := lipa.ErrorCode(err); c != "invalid_phone_number" {
				t.Errorf("ParsePhone(%q): got code %q, want %q", s, c, "invalid_phone_number")
			}
			return
		}
		if !canonicalMSISDN.MatchString(string(got)) {
			t.Fatalf("ParsePhone(%q) = %q, want a match for %s", s, got, canonicalMSISDN)
		}
		again, err := lipa.ParsePhone(string(got))
		if err != nil || again != got {
			t.Fatalf("ParsePhone(%q) = %q, %v; want %q, nil (idempotent)", got, again, err, got)
		}
	})
}
