package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/api"
)

// TestCommittedCollectionIsCurrent: the committed Postman collection is
// exactly what the command writes from the current OpenAPI document.
func TestCommittedCollectionIsCurrent(t *testing.T) {
	want, err := collection(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "..", filepath.FromSlash(output)))
	if err != nil {
		t.Fatalf("read the committed collection: %v; run `go generate ./internal/api` and commit %s", err, output)
	}
	if string(got) != string(want) {
		t.Errorf("%s is not what internal/api/openapi.json gives: run `go generate ./internal/api` (or `go run ./internal/api/postman`) and commit it", output)
	}
}

// TestCollectionCoversEveryOperation: one request per operation of the
// document, with the path parameters, the key and an idempotency key on
// the push.
func TestCollectionCoversEveryOperation(t *testing.T) {
	raw, err := collection(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var c pmCollection
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	got := map[string]pmRequest{}
	for _, f := range c.Item {
		for _, it := range f.Item {
			got[it.Request.Method+" "+strings.TrimPrefix(it.Request.URL.Raw, "{{baseUrl}}")] = it.Request
		}
	}
	for _, want := range []string{"POST /api/stk-push/", "GET /api/payments/", "GET /api/payments/:id/", "GET /api/payments/verify/",
		"POST /api/payments/claim/", "GET /api/events/", "GET /healthz", "GET /readyz", "GET /api/openapi.json"} {
		if _, ok := got[want]; !ok {
			t.Errorf("collection: got no request %s, want one (requests: %d)", want, len(got))
		}
	}
	push := got["POST /api/stk-push/"]
	if push.Body == nil || !strings.Contains(push.Body.Raw, `"phone_number"`) {
		t.Errorf("push: got body %+v, want the document's example", push.Body)
	}
	var key bool
	for _, h := range push.Header {
		key = key || (h.Key == "Idempotency-Key" && h.Value == "{{$guid}}" && !h.Disabled)
	}
	if !key {
		t.Errorf("push headers: got %+v, want Idempotency-Key {{$guid}}", push.Header)
	}
	if p := got["GET /api/payments/:id/"]; len(p.URL.Variable) != 1 || p.URL.Variable[0].Key != "id" {
		t.Errorf("GET /api/payments/:id/: got variables %+v, want id", p.URL.Variable)
	}
	if r := got["GET /readyz"]; r.Auth == nil || r.Auth.Type != "noauth" {
		t.Errorf("GET /readyz: got auth %+v, want noauth (no key)", r.Auth)
	}
	if c.Auth == nil || c.Auth.Type != "apikey" {
		t.Errorf("collection auth: got %+v, want apikey in X-API-KEY", c.Auth)
	}
}
