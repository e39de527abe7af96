package daraja

import (
	"bytes"
	"encoding/json"
)

// MaxReceiptLength is the longest M-Pesa receipt number Lipa accepts.
// Daraja's receipts (MpesaReceiptNumber, C2B TransID) are 10 upper-case
// letters and digits (docs/daraja.md "Receipt and ID shapes"); Lipa allows up to 20, the
// length of Daraja's own receipt fields, in case the format grows.
const MaxReceiptLength = 20

// ValidReceipt reports whether s has the shape of an M-Pesa receipt
// number: 1 to MaxReceiptLength characters, each an upper-case ASCII letter
// or a digit. Anything else (lower case, spaces, quotes, emoji, control
// characters) is not a receipt Daraja issued, whatever the body says.
func ValidReceipt(s string) bool {
	if len(s) == 0 || len(s) > MaxReceiptLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// RepeatedKey reports the first JSON object key that body names twice in
// one object, at any depth ({"TransID":"X1","TransID":"X2"}): Go's decoder
// keeps the last value, another reader may keep the first, so such a body
// says two things at once. It returns false for a body without repeated
// keys and for one that is not JSON (the parsers report that).
func RepeatedKey(body []byte) (string, bool) {
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object && top.expectKey {
			k, _ := tok.(string)
			if top.keys[k] {
				return k, true
			}
			top.keys[k] = true
			top.expectKey = false
			continue
		}
		if top != nil && top.object {
			top.expectKey = true // this token starts the value; a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expectKey: true, keys: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}
