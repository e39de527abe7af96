package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
)

// readFields reads an app's JSON object body and returns the named fields as
// text: a JSON string's value, or a JSON number's digits exactly as written
// (so "10" and 10 read the same); null or absent is "". Other fields are
// refused with Invalid "unknown_field" naming it (a typo must not pass
// silently). A body over MaxAppBody is TooLarge "body_too_large"; one that is
// not a JSON object, or a field that is an object, array or boolean, is
// Invalid ("invalid_json", "invalid_<field>").
func readFields(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAppBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, lipa.Errorf(lipa.TooLarge, "body_too_large", "the request body is over %d bytes", MaxAppBody)
	}
	if err != nil {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_body", "the request body could not be read")
	}
	if !utf8.Valid(body) {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body must be a JSON object, e.g. {\"phone_number\": \"0712345678\", \"amount\": 10, \"reference\": \"ORDER1\"}")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body has data after its JSON object")
	}
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	for k := range obj {
		if !known[k] {
			return nil, lipa.InvalidField("unknown_field", k, "unknown field %q; this endpoint takes %s", truncate(k, 40), strings.Join(names, ", "))
		}
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		raw := bytes.TrimSpace(obj[n])
		switch {
		case len(raw) == 0 || string(raw) == "null":
			out[n] = ""
		case raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, lipa.InvalidField("invalid_"+n, n, "%s is not a valid JSON string", n)
			}
			if !cleanText(s) {
				return nil, lipa.InvalidField("invalid_"+n, n, "%s contains a NUL character", n)
			}
			out[n] = s
		case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
			out[n] = string(raw)
		default:
			return nil, lipa.InvalidField("invalid_"+n, n, "%s must be a string or a number", n)
		}
	}
	return out, nil
}

// readInbound reads a Safaricom request body whole, up to MaxInboundBody.
func readInbound(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInboundBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, lipa.Errorf(lipa.TooLarge, "body_too_large", "the request body is over %d bytes", MaxInboundBody)
	}
	if err != nil {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_body", "the request body could not be read")
	}
	return body, nil
}

// truncate cuts s to at most n runes, for echoing input in messages.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
