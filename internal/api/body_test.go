package api

import "testing"

// TestLoneSurrogate checks the scan for half a UTF-16 surrogate pair in a
// JSON string literal, which encoding/json would turn into U+FFFD.
func TestLoneSurrogate(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{`"plain"`, false},
		{`""`, false},
		{`"\u00e9t\u00E9"`, false},
		{`"\ud83d\ude00"`, false},
		{`"\uD83D\uDE00 and \ud83d\ude01"`, false},
		{`"a\\ud800b"`, false},       // an escaped backslash, then the letters ud800
		{`"a\\\ud83d\ude00"`, false}, // an escaped backslash, then a complete pair
		{`"\ud800"`, true},
		{`"a\ud800b"`, true},
		{`"\ud800\u0041"`, true},
		{`"\ud800\n"`, true},
		{`"\udc00"`, true},
		{`"\ude00\ud83d"`, true},
		{`"\ud83d\ud83d\ude00"`, true},
		{`"a\\\ud800"`, true},
	} {
		if got := loneSurrogate([]byte(c.raw)); got != c.want {
			t.Errorf("loneSurrogate(%s): got %v, want %v", c.raw, got, c.want)
		}
	}
}
