package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/api/openapitest"
)

// loadDoc returns the parsed and validated OpenAPI document.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	c, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c.Doc()
}

// TestOpenAPIDocumentValid: the document parses, passes kin-openapi's
// validation as OpenAPI 3.1, and every error answer it declares is the
// Error schema.
func TestOpenAPIDocumentValid(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi: got %q, want 3.1.0", doc.OpenAPI)
	}
	errSchema := doc.Components.Schemas["Error"]
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			what := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: got no operationId, want one (clients name their methods after it)", what)
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s: got no default response, want the Error one", what)
			}
			for status, r := range op.Responses.Map() {
				if status != "default" && !strings.HasPrefix(status, "4") && !strings.HasPrefix(status, "5") {
					continue
				}
				mt := r.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Value != errSchema.Value {
					t.Errorf("%s %s: got a response that is not the Error schema, want every error answer to be one", what, status)
				}
			}
		}
	}
	types := doc.Components.Schemas["EventType"].Value.Enum
	var hooks []string
	for name := range doc.Webhooks {
		hooks = append(hooks, name)
	}
	for _, ty := range types {
		if doc.Webhooks[ty.(string)] == nil {
			t.Errorf("event type %q: got no webhook of that name, want one under webhooks", ty)
		}
	}
	if len(hooks) != len(types) {
		t.Errorf("webhooks: got %v, want one per EventType %v", hooks, types)
	}
}

// TestOpenAPIServed: GET /api/openapi.json answers the document, with or
// without a key.
func TestOpenAPIServed(t *testing.T) {
	srv := api.New(nil, api.Config{Logger: slog.New(slog.DiscardHandler)})
	for _, path := range []string{"/api/openapi.json"} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: got %d %s, want 200", path, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: got Content-Type %q, want application/json", path, ct)
		}
		body, _ := io.ReadAll(w.Body)
		if string(body) != string(api.OpenAPI()) {
			t.Errorf("GET %s: got a body that is not internal/api/openapi.json", path)
		}
	}
}

// TestOpenAPIRoutesMatchDocument: every route the server registers has its
// operation in the document, unless its path is left out on purpose
// (api.Documented), and every operation of the document is a route.
func TestOpenAPIRoutesMatchDocument(t *testing.T) {
	doc := loadDoc(t)
	srv := api.New(nil, api.Config{Logger: slog.New(slog.DiscardHandler)})
	served := map[string]bool{}
	for _, r := range srv.Routes() {
		served[r.Method+" "+r.Path] = true
		if !api.Documented(r.Path) {
			continue
		}
		item := doc.Paths.Value(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is served but internal/api/openapi.json has no operation for it: add %q: {%q: {…}} under \"paths\" "+
				"(parameters, request body, answers and error responses, as docs/API.md describes it), "+
				"or, if apps never call it, add its path prefix to undocumented in internal/api/openapi.go with the reason",
				r.Method, r.Path, r.Path, strings.ToLower(r.Method))
		}
	}
	for path, item := range doc.Paths.Map() {
		if !api.Documented(path) {
			t.Errorf("internal/api/openapi.json describes %s, which internal/api/openapi.go lists as undocumented: remove one of the two", path)
		}
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("internal/api/openapi.json describes %s %s but the server has no such route: remove it from the document, or register it in (*Server).routes in internal/api/api.go", method, path)
			}
		}
	}
}

// apiDoc returns docs/API.md.
func apiDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpenAPIAgreesWithAPIDocs: docs/API.md and the document name the same
// error codes, the same app-facing endpoints and the same event types.
func TestOpenAPIAgreesWithAPIDocs(t *testing.T) {
	doc := loadDoc(t)
	md := apiDoc(t)

	// Error codes: the rows of the Errors table against ErrorCode's enum.
	// The row `invalid_<field>` stands for invalid_ and each request body
	// field of the document.
	enum := map[string]bool{}
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum[v.(string)] = true
	}
	section := md[strings.Index(md, "## Errors"):]
	section = section[:strings.Index(section[1:], "\n## ")+1]
	row := regexp.MustCompile("(?m)^\\| *[0-9]{3} *\\| *([^|]*)\\|")
	code := regexp.MustCompile("`([a-z_<>]+)`")
	inMD := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, c := range code.FindAllStringSubmatch(m[1], -1) {
			inMD[c[1]] = true
		}
	}
	if len(inMD) < 20 {
		t.Fatalf("docs/API.md: got %d error codes from the Errors table, want its rows (| status | `code` | when |)", len(inMD))
	}
	if inMD["invalid_<field>"] {
		delete(inMD, "invalid_<field>")
		for _, name := range []string{"STKPushRequest", "ClaimRequest"} {
			for field := range doc.Components.Schemas[name].Value.Properties {
				inMD["invalid_"+field] = true
			}
		}
	}
	for c := range inMD {
		if !enum[c] {
			t.Errorf("docs/API.md lists the error code %q but internal/api/openapi.json does not: add %q to components.schemas.ErrorCode.enum", c, c)
		}
	}
	for c := range enum {
		if !inMD[c] {
			t.Errorf("internal/api/openapi.json has the error code %q but docs/API.md's Errors table does not: add a row | status | `%s` | when |", c, c)
		}
	}

	// Endpoints: every "METHOD /path" docs/API.md mentions, against the
	// document's operations (trailing slashes aside).
	norm := func(p string) string { return strings.TrimSuffix(p, "/") }
	mention := regexp.MustCompile(`\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./{}-]*)`)
	mentioned := map[string]bool{}
	for _, m := range mention.FindAllStringSubmatch(md, -1) {
		if !api.Documented(m[2]) {
			continue
		}
		op := m[1] + " " + norm(m[2])
		mentioned[op] = true
	}
	inDoc := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc[method+" "+norm(path)] = true
		}
	}
	for op := range mentioned {
		if !inDoc[op] {
			t.Errorf("docs/API.md mentions %s but internal/api/openapi.json does not describe it: add it to the document's paths", op)
		}
	}
	for op := range inDoc {
		if !mentioned[op] {
			t.Errorf("internal/api/openapi.json describes %s but docs/API.md never mentions it: document it there", op)
		}
	}

	// Event types.
	for _, ty := range doc.Components.Schemas["EventType"].Value.Enum {
		if !strings.Contains(md, "`"+ty.(string)+"`") {
			t.Errorf("docs/API.md does not name the event type %q of internal/api/openapi.json", ty)
		}
	}
}
