package api

import (
	_ "embed"
	"net/http"
	"slices"
	"strings"
)

// openAPIDocument is the OpenAPI 3.1 document of the app-facing API, kept
// in the repository as internal/api/openapi.json and served at
// GET /api/openapi.json. Tests hold it to the routes (Server.Routes), to
// every request and answer of the end-to-end tests, and to docs/API.md.
//
//go:embed openapi.json
var openAPIDocument []byte

// The Postman collection is generated from the document.
//go:generate go run ./postman

// OpenAPI returns a copy of the OpenAPI 3.1 document (JSON) that describes
// the app-facing API, the health checks and the webhook events; Safaricom's
// endpoints, the operators' API and console are left out (see Documented).
func OpenAPI() []byte { return slices.Clone(openAPIDocument) }

// undocumented lists the path prefixes the OpenAPI document leaves out on
// purpose, with the reason. A route under none of them must have a path in
// the document.
var undocumented = []struct{ prefix, why string }{
	{"/api/mpesa/", "Safaricom's STK callback and the C2B aliases: Safaricom calls them, apps never do"},
	{"/api/stk/", "Safaricom's STK callback at a path without the words Safaricom refuses"},
	{"/api/c2b/", "Safaricom's C2B validation and confirmation"},
	{"/api/admin/", "the operators' API (X-ADMIN-KEY), not for apps"},
	{"/metrics", "the operators' Prometheus metrics (X-ADMIN-KEY), not for apps"},
	{"/debug/", "Go's profiler for operators (X-ADMIN-KEY), not for apps"},
	{"/admin/", "the operators' web console (internal/console): HTML pages for people, not an API"},
	{"/api/reversal/", "Daraja's Reversal Results and queue timeout notices"},
	{"/api/status/", "Daraja's Transaction Status Results and queue timeout notices"},
	{"/api/pull/", "Daraja's Pull Transactions registration callback"},
}

// Documented reports whether the OpenAPI document describes the endpoints
// at path: true for everything but Safaricom's endpoints, the operators'
// API and the operators' console.
func Documented(path string) bool {
	for _, u := range undocumented {
		if strings.HasPrefix(path, u.prefix) {
			return false
		}
	}
	return true
}

// Route is one endpoint a Server serves: its method and path as registered
// ("POST", "/api/stk-push/", "/api/payments/{id}/"). A path that ends in "/"
// is served without it too.
type Route struct {
	Method string
	Path   string
}

// Routes returns every endpoint the server serves, in the order they were
// registered.
func (s *Server) Routes() []Route { return slices.Clone(s.routeList) }

// openAPI serves GET /api/openapi.json: the document, to anyone (no key).
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(openAPIDocument)
	return err
}
