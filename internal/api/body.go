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
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
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

// decodeObject reads a body that must be exactly one JSON object whose
// keys are all different (a repeated key would mean different things to
// different parsers), and returns its fields unparsed.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	notObject := lipa.Errorf(lipa.Invalid, "invalid_json", "the request body must be a JSON object, e.g. {\"phone_number\": \"0712345678\", \"amount\": 10, \"reference\": \"ORDER1\"}")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, notObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, notObject
		}
		if _, dup := obj[key]; dup {
			return nil, lipa.InvalidField("duplicate_field", key, "field %q appears more than once", truncate(key, 40))
		}
		obj[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body has data after its JSON object")
	}
	return obj, nil
}
