package daraja

import "testing"

func TestValidReceipt(t *testing.T) {
	for _, c := range []struct {
		receipt string
		want    bool
	}{
		{"RKL51ZDR4F", true},                 // docs/daraja.md "Receipt and ID shapes"
		{"NLJ7RT61SV", true},                 // the STK callback fixture
		{"A", true},                          // short, but of the alphabet
		{"ABCDEFGHIJKLMNOPQRST", true},       // 20: the margin
		{"ABCDEFGHIJKLMNOPQRSTU", false},     // 21
		{"", false},                          // none
		{"rkl51zdr4f", false},                // lower case
		{"RKL51 ZDR4", false},                // space
		{"R'💸;--", false},                    // quote, emoji
		{"RKL51ZDR4F\x00", false},            // NUL
		{"RKL51ZDR4F\n", false},              // line break
		{"ＲＫＬ51ZDR4F", false},                // full-width letters
		{"HLONG0A1B2CABCDEFGHIJKLMN", false}, // 25
	} {
		if got := ValidReceipt(c.receipt); got != c.want {
			t.Errorf("ValidReceipt(%q): got %v, want %v", c.receipt, got, c.want)
		}
	}
}

func TestRepeatedKey(t *testing.T) {
	for _, c := range []struct {
		body string
		key  string
		ok   bool
	}{
		{`{"TransID":"X1","TransAmount":"10","TransID":"X2"}`, "TransID", true},
		{`{"a":{"b":1,"b":2}}`, "b", true},
		{`{"a":[{"b":1},{"b":2}],"c":{"b":3}}`, "", false}, // the same key in different objects
		{`{"a":[{"b":1,"c":[1,2],"b":2}]}`, "b", true},
		{`{"a":{"x":1},"a":2}`, "a", true},
		{`{"a":1,"A":2}`, "", false}, // keys are case-sensitive here
		{`{"TransID":"X1"}`, "", false},
		{`not json`, "", false},
		{`{"a":1,"a"`, "a", true}, // reported before the error
	} {
		key, ok := RepeatedKey([]byte(c.body))
		if key != c.key || ok != c.ok {
			t.Errorf("RepeatedKey(%s): got %q %v, want %q %v", c.body, key, ok, c.key, c.ok)
		}
	}
}

// FuzzRepeatedKey: the scan RepeatedKey makes of valid JSON finds the
// same repeated key as reading the body token by token.
func FuzzRepeatedKey(f *testing.F) {
	for _, s := range []string{
		`{"TransID":"X1","TransAmount":"10","TransID":"X2"}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":2}],"c":{"b":3}}`,
		`{"a":"x\"y","a\"b":1,"a\u0022b":2}`, `{"\u00e9":1,"é":2}`, "{\"\xff\":1,\"\xfe\":2}", `[{"a":[]},{"a":{}}]`,
		`{"TransactionType":"Pay Bill","TransID":"RKL51ZDR4F","MSISDN":"2547 ***** 149","FirstName":"John"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, ok := RepeatedKey(body)
		wantKey, wantOK := repeatedKeyTokens(body)
		if key != wantKey || ok != wantOK {
			t.Errorf("RepeatedKey(%q): got %q %v, want %q %v (token by token)", body, key, ok, wantKey, wantOK)
		}
	})
}
