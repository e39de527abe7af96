package daraja

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
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
	if !json.Valid(body) {
		return repeatedKeyTokens(body)
	}
	// body is valid JSON, so every string ends and every bracket closes:
	// a scan that only tracks objects, keys and strings is enough (and
	// allocates little, unlike a token stream). Keys are compared as a
	// JSON decoder reads them (escapes decoded, invalid UTF-8 as U+FFFD).
	type frame struct {
		object bool
		keys   [][]byte
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			stack = append(stack, frame{object: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
			expectKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			expectKey = stack[len(stack)-1].object
		case ':':
			expectKey = false
		case '"':
			j, escaped := i+1, false
			for ; body[j] != '"'; j++ {
				if body[j] == '\\' {
					escaped = true
					j++
				}
			}
			if expectKey {
				k := body[i+1 : j]
				if escaped || !utf8.Valid(k) {
					var dec string
					json.Unmarshal(body[i:j+1], &dec)
					k = []byte(dec)
				}
				top := &stack[len(stack)-1]
				for _, seen := range top.keys {
					if bytes.Equal(seen, k) {
						return string(k), true
					}
				}
				top.keys = append(top.keys, k)
				expectKey = false
			}
			i = j
		}
	}
	return "", false
}

// repeatedKeyTokens is RepeatedKey on a body that is not valid JSON: it
// reads the body token by token and reports a key repeated before the
// first error.
func repeatedKeyTokens(body []byte) (string, bool) {
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
