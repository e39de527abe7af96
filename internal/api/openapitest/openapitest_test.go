package openapitest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/api/openapitest"
)

const errBody = `{"error":{"code":"not_found","message":"no endpoint","details":{}}}`

// TestCheckerRules: the checker passes exchanges that fit the document and
// names what does not fit.
func TestCheckerRules(t *testing.T) {
	c, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	health := `{"status":"ok"}`
	pushOK := `{"message":"STK initiated","payment_id":"pay_1","status":"PENDING","checkout_request_id":"ws_1","merchant_request_id":"m1","customer_message":"ok","daraja_response":null}`
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		reqBody string
		status  int
		ctype   string
		body    string
		wantErr string // a fragment of the error; "" for none
	}{
		{"a health answer", "GET", "/healthz", "", 200, "application/json", health, ""},
		{"a path without its trailing slash", "GET", "/api/payments/pay_1", "", 404, "application/json", `{"error":{"code":"payment_not_found","message":"m","details":{}}}`, ""},
		{"an answer with an extra field", "GET", "/healthz", "", 200, "application/json", `{"status":"ok","uptime":3}`, "does not name: uptime"},
		{"an answer of the wrong shape", "GET", "/healthz", "", 200, "application/json", `{"status":"fine"}`, "does not fit"},
		{"an undeclared status", "GET", "/healthz", "", 201, "application/json", health, "does not fit"},
		{"an unknown error code", "GET", "/api/payments/pay_1/", "", 404, "application/json", `{"error":{"code":"gone","message":"m","details":{}}}`, "does not fit"},
		{"an accepted push", "POST", "/api/stk-push/", `{"phone_number":"0708374149","amount":10,"reference":"R"}`, 200, "application/json", pushOK, ""},
		{"a refused bad push", "POST", "/api/stk-push/", `{"phone_number":"0708374149","amount":10,"reference":"R","amout":1}`, 400, "application/json", `{"error":{"code":"unknown_field","message":"m","details":{"field":"amout"}}}`, ""},
		{"an accepted bad push", "POST", "/api/stk-push/", `{"phone_number":"0708374149","amount":10,"reference":"R","amout":1}`, 200, "application/json", pushOK, "accepted (200) a request"},
		{"an unknown path", "GET", "/api/nothing/", "", 404, "application/json", errBody, ""},
		{"an unknown path served", "GET", "/api/nothing/", "", 200, "application/json", health, "no such operation"},
		{"another method", "DELETE", "/api/payments/pay_1/", "", 405, "application/json", `{"error":{"code":"method_not_allowed","message":"m","details":{}}}`, ""},
		{"another method, wrong status", "DELETE", "/api/payments/claim/", "", 404, "application/json", errBody, "want 405"},
		{"Safaricom's endpoint", "POST", "/api/mpesa/stk-callback/", "{}", 200, "application/json", `{"ResultCode":0}`, ""},
		{"Go's own 431", "GET", "/api/payments/", "", 431, "text/plain; charset=utf-8", "431 Request Header Fields Too Large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.reqBody))
			req.Header.Set("X-API-KEY", "lipa_x")
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			h := http.Header{"Content-Type": {tc.ctype}}
			err := c.Check(req, []byte(tc.reqBody), tc.status, h, []byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// TestCheckWebhook: event bodies are checked against the document's
// webhooks.
func TestCheckWebhook(t *testing.T) {
	c, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	payment := `{"id":"pay_1","app":"shop","payment_type":"STK","status":"SUCCESS","phone_number":"254708374149","amount":10,"currency":"KES",` +
		`"reference":"R","account_reference":"R","description":"Payment","shortcode":"174379","mpesa_receipt_number":"UL3X","checkout_request_id":"ws_1",` +
		`"merchant_request_id":"m1","result_code":"0","result_desc":"ok","failure_reason":null,"resolved_by":"callback","claimed":false,"claimed_at":null,` +
		`"transaction_date":"2025-01-02T03:04:05Z","created_at":"2025-01-02T03:04:00Z","updated_at":"2025-01-02T03:04:05Z"}`
	ok := `{"id":"evt_1","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":` + payment + `}`
	if err := c.CheckWebhook("payment.succeeded", []byte(ok)); err != nil {
		t.Errorf("a payment.succeeded event: got %v, want nil", err)
	}
	if err := c.CheckWebhook("payment.failed", []byte(ok)); err == nil {
		t.Errorf("a payment.succeeded body as payment.failed: got nil, want an error")
	}
	extra := strings.Replace(ok, `"id":"evt_1"`, `"id":"evt_1","attempt":2`, 1)
	if err := c.CheckWebhook("payment.succeeded", []byte(extra)); err == nil || !strings.Contains(err.Error(), "attempt") {
		t.Errorf("an event with an extra field: got %v, want an error naming it", err)
	}
	if err := c.CheckWebhook("payment.refunded", []byte(ok)); err == nil {
		t.Errorf("an unknown event type: got nil, want an error")
	}
}
