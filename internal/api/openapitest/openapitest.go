// Package openapitest holds HTTP traffic to Lipa's OpenAPI document
// (internal/api/openapi.json), for tests: a Checker validates one request
// and its answer with kin-openapi's openapi3filter, and Transport wraps an
// http.RoundTripper so that every call a test makes is checked. It is used
// only by tests.
//
// The rules: every answer to a path the document describes must be one the
// document declares (status, headers, body), with no field the document
// does not name; a request Lipa accepts (an answer below 400) must be one
// the document allows, while a request Lipa refuses may break the
// document's rules (tests send bad requests on purpose); a path that is
// neither in the document nor left out on purpose (api.Documented) must be
// answered 404, and a documented path called with another method 405.
// Answers from Go's HTTP server itself (a plain-text 400 or 431 to a
// request too broken to reach Lipa) are not Lipa's and are not checked.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/lipa-gateway/lipa/internal/api"
)

// Checker validates requests and answers against the document. It is safe
// for concurrent use.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	loadOnce sync.Once
	loaded   *Checker
	loadErr  error
)

// Load parses and validates the document (once per process) and returns a
// Checker for it.
func Load() (*Checker, error) {
	loadOnce.Do(func() {
		loaded, loadErr = load(api.OpenAPI())
	})
	return loaded, loadErr
}

func load(data []byte) (*Checker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load internal/api/openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("internal/api/openapi.json is not a valid OpenAPI document: %w", err)
	}
	// Route on paths alone: the document's server is relative ("/"), and
	// tests call Lipa on any loopback address.
	routed := *doc
	routed.Servers = nil
	router, err := legacy.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("route internal/api/openapi.json: %w", err)
	}
	return &Checker{doc: doc, router: router}, nil
}

// Doc returns the parsed document. Callers must not modify it.
func (c *Checker) Doc() *openapi3.T { return c.doc }

// Check validates one exchange: req as sent with its body reqBody, and the
// answer's status, header and body. It returns nil when the exchange fits
// the document (see the package comment), else an error that says what
// does not.
func (c *Checker) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	what := req.Method + " " + req.URL.Path
	if fromNetHTTP(status, header) {
		return nil
	}
	route, params, err := c.find(req)
	if err != nil {
		if !api.Documented(req.URL.Path) {
			return nil
		}
		want, code := http.StatusNotFound, "not_found"
		if errors.Is(err, errNoMethod) {
			want, code = http.StatusMethodNotAllowed, "method_not_allowed"
		}
		if status != want {
			return fmt.Errorf("%s: Lipa answered %d, but internal/api/openapi.json has no such operation (want %d %s, or add the operation to the document)", what, status, want, code)
		}
		return c.checkError(what, status, body)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    cloneWithBody(req, reqBody),
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && status < 400 {
		return fmt.Errorf("%s: Lipa accepted (%d) a request that internal/api/openapi.json refuses: %v", what, status, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s: the %d answer does not fit internal/api/openapi.json: %v\nbody: %s", what, status, err, truncate(body))
	}
	if extra := c.extraFields(route.Operation, status, header, body); len(extra) > 0 {
		return fmt.Errorf("%s: the %d answer has fields internal/api/openapi.json does not name: %s (add them to the schema)\nbody: %s", what, status, strings.Join(extra, ", "), truncate(body))
	}
	return nil
}

// Why find found no operation.
var (
	errNoPath   = errors.New("no such path")
	errNoMethod = errors.New("no such method on the path")
)

// find routes req, also trying its path with a trailing slash (Lipa
// serves both). Without a match the error is errNoMethod when the path is
// in the document with other methods, else errNoPath.
func (c *Checker) find(req *http.Request) (*routers.Route, map[string]string, error) {
	paths := []string{req.URL.Path}
	if !strings.HasSuffix(req.URL.Path, "/") {
		paths = append(paths, req.URL.Path+"/")
	}
	try := func(method, path string) (*routers.Route, map[string]string, bool) {
		r := req.Clone(req.Context())
		u := *req.URL
		u.Path, u.RawPath = path, ""
		r.URL, r.Method = &u, method
		route, params, err := c.router.FindRoute(r)
		return route, params, err == nil
	}
	for _, p := range paths {
		if route, params, ok := try(req.Method, p); ok {
			return route, params, nil
		}
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if _, _, ok := try(m, p); ok {
				return nil, nil, errNoMethod
			}
		}
	}
	return nil, nil, errNoPath
}

// fromNetHTTP reports whether an answer came from Go's HTTP server
// rather than from Lipa: a request too broken to reach Lipa's handler
// (over 1 MB of headers, a garbled request line) gets a plain-text 400 or
// 431.
func fromNetHTTP(status int, header http.Header) bool {
	plain := strings.HasPrefix(header.Get("Content-Type"), "text/plain")
	return plain && (status == http.StatusBadRequest || status == http.StatusRequestHeaderFieldsTooLarge)
}

// checkError validates an error answer to an operation the document does
// not have against the Error schema.
func (c *Checker) checkError(what string, status int, body []byte) error {
	s := c.doc.Components.Schemas["Error"]
	v, err := decode(body)
	if err != nil {
		return fmt.Errorf("%s: the %d answer is not JSON: %v", what, status, err)
	}
	if err := s.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s: the %d answer is not an Error of internal/api/openapi.json: %v\nbody: %s", what, status, err, truncate(body))
	}
	if extra := extraFields(v, s, ""); len(extra) > 0 {
		return fmt.Errorf("%s: the %d answer has fields the Error schema does not name: %s", what, status, strings.Join(extra, ", "))
	}
	return nil
}

// CheckWebhook validates a webhook delivery's body against the document's
// webhook for its event type.
func (c *Checker) CheckWebhook(eventType string, body []byte) error {
	item := c.doc.Webhooks[eventType]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil {
		return fmt.Errorf("internal/api/openapi.json has no webhook %q (add it under webhooks)", eventType)
	}
	mt := item.Post.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return fmt.Errorf("webhook %q declares no JSON body", eventType)
	}
	v, err := decode(body)
	if err != nil {
		return fmt.Errorf("webhook %q: the body is not JSON: %v", eventType, err)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsRequest()); err != nil {
		return fmt.Errorf("webhook %q: the body does not fit internal/api/openapi.json: %v\nbody: %s", eventType, err, truncate(body))
	}
	if extra := extraFields(v, mt.Schema, ""); len(extra) > 0 {
		return fmt.Errorf("webhook %q: the body has fields the document does not name: %s", eventType, strings.Join(extra, ", "))
	}
	return nil
}

// extraFields returns the fields of a JSON answer that its schema does not
// name, as dotted paths.
func (c *Checker) extraFields(op *openapi3.Operation, status int, header http.Header, body []byte) []string {
	resp := op.Responses.Status(status)
	if resp == nil {
		resp = op.Responses.Default()
	}
	if resp == nil || resp.Value == nil || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		return nil
	}
	mt := resp.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	v, err := decode(body)
	if err != nil {
		return nil // ValidateResponse has said so
	}
	return extraFields(v, mt.Schema, "")
}

// extraFields walks v along s and returns the object keys s does not
// name. An object schema that names no properties at all (details,
// daraja_response) takes any key.
func extraFields(v any, s *openapi3.SchemaRef, at string) []string {
	if s == nil || s.Value == nil {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		props := properties(s.Value, 0)
		if len(props) == 0 {
			return nil
		}
		for k, val := range x {
			p, ok := props[k]
			if !ok {
				out = append(out, strings.TrimPrefix(at+"."+k, "."))
				continue
			}
			out = append(out, extraFields(val, p, at+"."+k)...)
		}
	case []any:
		if s.Value.Items != nil {
			for i, val := range x {
				out = append(out, extraFields(val, s.Value.Items, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	sort.Strings(out)
	return out
}

// properties returns the properties s names, directly or through allOf,
// anyOf and oneOf.
func properties(s *openapi3.Schema, depth int) map[string]*openapi3.SchemaRef {
	out := map[string]*openapi3.SchemaRef{}
	if s == nil || depth > 16 {
		return out
	}
	for k, v := range s.Properties {
		out[k] = v
	}
	for _, sub := range slices.Concat(s.AllOf, s.AnyOf, s.OneOf) {
		if sub == nil {
			continue
		}
		for k, v := range properties(sub.Value, depth+1) {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

func decode(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func cloneWithBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if r.URL.Host == "" {
		u := *req.URL
		r.URL = &u
	}
	return r
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// Transport returns an http.RoundTripper that sends every request through
// next (http.DefaultTransport when nil) and checks the exchange with the
// document, failing t (t.Errorf) on a mismatch. A check that cannot run
// (the document does not load) fails t at once. Exchanges after t's test
// has ended are not checked.
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	tr := &transport{t: t, c: c, next: next}
	t.Cleanup(func() {
		tr.mu.Lock()
		tr.done = true
		tr.mu.Unlock()
	})
	return tr
}

type transport struct {
	t    testing.TB
	c    *Checker
	next http.RoundTripper

	mu   sync.Mutex
	done bool
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the short body; nothing to check
	}
	if cerr := tr.c.Check(req, reqBody, resp.StatusCode, resp.Header, body); cerr != nil {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if !tr.done {
			tr.t.Errorf("OpenAPI: %v", cerr)
		}
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the wrapped
// transport, so that http.Client.CloseIdleConnections reaches it.
func (tr *transport) CloseIdleConnections() {
	if c, ok := tr.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
