package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
)

// readFields reads an app's JSON object body and returns the named fields as
// text: a JSON string's value, or a JSON number's digits exactly as written
// (so "10" and 10 read the same); null or absent is "". Other fields are
// refused with Invalid "unknown_field" naming it (a typo must not pass
// silently). A body over MaxAppBody is TooLarge "body_too_large"; one that
// did not arrive within the server's read timeout is RequestTimeout
// "request_timeout"; one that is not a JSON object is Invalid "invalid_json"
// listing the fields the endpoint takes. A field that is an object, array or
// boolean, a negative number, or a string holding a NUL character or half of
// a UTF-16 surrogate pair (\ud800 alone, which a JSON decoder would turn into
// U+FFFD and so store text the app never sent) is Invalid "invalid_<field>"
// naming it.
func readFields(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, error) {
	return readBody(w, r, "", names)
}

// readBody is readFields whose "invalid_json" message shows example, a body
// the endpoint takes, instead of listing its fields.
func readBody(w http.ResponseWriter, r *http.Request, example string, names []string) (map[string]string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAppBody))
	if err != nil {
		return nil, bodyError(err, MaxAppBody)
	}
	if !utf8.Valid(body) {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body is not valid UTF-8")
	}
	if example == "" {
		example = "with the fields " + strings.Join(names, ", ")
	} else {
		example = "e.g. " + example
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, lipa.Errorf(lipa.Invalid, "invalid_json", "the request body is empty; send a JSON object, %s", example)
	}
	obj, err := decodeObject(body, example)
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
			if loneSurrogate(raw) {
				return nil, lipa.InvalidField("invalid_"+n, n, "%s contains half of a UTF-16 surrogate pair (an escape from \\ud800 to \\udfff without its other half), which is no character; send the text as UTF-8", n)
			}
			out[n] = s
		case raw[0] == '-':
			// No field of any endpoint is a negative quantity, and a phone
			// number written as -711000989 must not read as 711000989.
			return nil, lipa.InvalidField("invalid_"+n, n, "%s must not be a negative number", n)
		case raw[0] >= '0' && raw[0] <= '9':
			out[n] = string(raw)
		default:
			return nil, lipa.InvalidField("invalid_"+n, n, "%s must be a string or a number", n)
		}
	}
	return out, nil
}

// bodyError turns an error reading a request body into the error answered:
// TooLarge "body_too_large" past limit, RequestTimeout "request_timeout"
// when the server's read timeout (http.Server.ReadTimeout) ran out before
// the body arrived, else Invalid "invalid_body".
func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooBig):
		return lipa.Errorf(lipa.TooLarge, "body_too_large", "the request body is over %d bytes", limit)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return lipa.Errorf(lipa.RequestTimeout, "request_timeout", "the request body did not arrive in time; send the whole request again")
	}
	return lipa.Errorf(lipa.Invalid, "invalid_body", "the request body could not be read")
}

// loneSurrogate reports whether the JSON string literal raw (quotes
// included, already known to be valid JSON) escapes half of a UTF-16
// surrogate pair on its own: a high half (\ud800–\udbff) not followed at
// once by an escaped low half (\udc00–\udfff), or a low half with no high
// one before it.
func loneSurrogate(raw []byte) bool {
	high := false // the previous escape was a high half awaiting its low half
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			if high {
				return true
			}
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' || i+4 >= len(raw) {
			if high {
				return true
			}
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
		i += 4
		switch {
		case err != nil:
			return false // not valid JSON; the decoder has refused it already
		case v >= 0xD800 && v <= 0xDBFF:
			if high {
				return true
			}
			high = true
		case v >= 0xDC00 && v <= 0xDFFF:
			if !high {
				return true
			}
			high = false
		case high:
			return true
		}
	}
	return high
}

// readInbound reads a Safaricom request body whole, up to MaxInboundBody.
func readInbound(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInboundBody))
	if err != nil {
		return nil, bodyError(err, MaxInboundBody)
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
// different parsers), and returns its fields unparsed. hint ends the
// message of the error for a body that is not one ("e.g. {…}").
func decodeObject(body []byte, hint string) (map[string]json.RawMessage, error) {
	notObject := lipa.Errorf(lipa.Invalid, "invalid_json", "the request body must be a JSON object, %s", hint)
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
