package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

const reviewAdminKey = "review-admin-key-0123456789abcdefXYZ"

// reviewServer is Lipa's HTTP API on loopback over a fresh database, with
// the operators' API on and tokenless callbacks accepted.
func reviewServer(t *testing.T, databaseURL string) (*httptest.Server, string) {
	t.Helper()
	gw := gateway.New(sqlstoretest.OpenURL(t, databaseURL), nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
	_, key, err := gw.CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "tester"}, "shop")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(gw, api.Config{Logger: slog.New(slog.DiscardHandler), AdminKey: reviewAdminKey,
		Callbacks: api.CallbackGuard{AllowTokenless: true}}))
	t.Cleanup(srv.Close)
	return srv, key.Reveal()
}

// reviewCall sends a request and decodes the JSON answer.
func reviewCall(t *testing.T, srv *httptest.Server, method, path string, header map[string]string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: got %d %q, want JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func confirmation(transID, amount string) map[string]any {
	return map[string]any{"TransactionType": "Pay Bill", "TransID": transID, "TransTime": "20261129101500", "TransAmount": amount,
		"BusinessShortCode": "174379", "BillRefNumber": "INV5", "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
		"MSISDN": "254708374149", "FirstName": "JANE", "MiddleName": "", "LastName": ""}
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestAdminReviewAPI: Safaricom's zero-shilling confirmation is
// acknowledged and listed under /api/admin/review/; an operator creates its
// payment with the right amount through the API, with a reason, and the
// action is in the item's history and the audit log as "admin-api".
func TestAdminReviewAPI(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		srv, key := reviewServer(t, databaseURL)
		admin := map[string]string{"X-ADMIN-KEY": reviewAdminKey}
		st, ack := reviewCall(t, srv, "POST", "/api/c2b/confirmation/", nil, confirmation("UKAPI00001", "0.00"))
		if st != 200 || ack["ResultCode"] != float64(0) {
			t.Fatalf("zero-shilling confirmation: got %d %v, want 200 ResultCode 0", st, ack)
		}
		st, m := reviewCall(t, srv, "POST", "/api/payments/claim/", map[string]string{"X-API-KEY": key}, map[string]any{"receipt": "UKAPI00001"})
		if st == 200 {
			t.Fatalf("claim of the zero-shilling confirmation: got 200 %v, want a refusal", m)
		}
		for _, c := range []struct {
			name   string
			header map[string]string
			status int
			code   string
		}{
			{"no admin key", nil, 401, "invalid_admin_key"},
			{"wrong admin key", map[string]string{"X-ADMIN-KEY": "not-the-admin-key-0123456789"}, 401, "invalid_admin_key"},
		} {
			if st, m := reviewCall(t, srv, "GET", "/api/admin/review/", c.header, nil); st != c.status || errCode(m) != c.code {
				t.Errorf("GET /api/admin/review/ with %s: got %d %v, want %d %s", c.name, st, m, c.status, c.code)
			}
		}
		st, m = reviewCall(t, srv, "GET", "/api/admin/review/", admin, nil)
		items, _ := m["items"].([]any)
		if st != 200 || len(items) != 1 {
			t.Fatalf("GET /api/admin/review/: got %d %v, want one item", st, m)
		}
		it := items[0].(map[string]any)
		if it["reason"] != "invalid_amount" || it["receipt"] != "UKAPI00001" || it["state"] != "open" {
			t.Fatalf("item: got %v, want open invalid_amount naming UKAPI00001", it)
		}
		id := fmt.Sprint(it["id"])
		st, m = reviewCall(t, srv, "GET", "/api/admin/review/"+id+"/", admin, nil)
		payload, _ := m["payload"].(map[string]any)
		body, _ := payload["body"].(map[string]any)
		if st != 200 || body["TransID"] != "UKAPI00001" || body["TransAmount"] != "0.00" {
			t.Fatalf("GET /api/admin/review/%s/: got %d %v, want the stored confirmation", id, st, m)
		}
		for _, c := range []struct {
			name, path string
			body       any
			status     int
			code       string
		}{
			{"without a reason", "/create-payment/", map[string]any{"amount": 50}, 400, "reason_required"},
			{"with an unknown field", "/dismiss/", map[string]any{"reason": "x", "why": "y"}, 400, "unknown_field"},
			{"of an unknown item", "/../999999/dismiss/", map[string]any{"reason": "x"}, 404, "review_item_not_found"},
			{"settle of an item without a payment", "/settle/", map[string]any{"status": "FAILED", "reason": "x"}, 409, "no_payment"},
			{"match without a payment_id", "/match/", map[string]any{"reason": "x"}, 400, "missing_parameter"},
		} {
			path := "/api/admin/review/" + id + c.path
			if strings.HasPrefix(c.path, "/../") {
				path = "/api/admin/review/" + strings.TrimPrefix(c.path, "/../")
			}
			if st, m := reviewCall(t, srv, "POST", path, admin, c.body); st != c.status || errCode(m) != c.code {
				t.Errorf("POST %s (%s): got %d %v, want %d %s", path, c.name, st, m, c.status, c.code)
			}
		}
		st, m = reviewCall(t, srv, "POST", "/api/admin/review/"+id+"/create-payment/", admin,
			map[string]any{"amount": 50, "reason": "statement shows 50 KES for UKAPI00001"})
		pay, _ := m["payment"].(map[string]any)
		if st != 200 || pay["amount"] != float64(50) || pay["mpesa_receipt_number"] != "UKAPI00001" {
			t.Fatalf("create-payment: got %d %v, want the 50 KES payment", st, m)
		}
		st, m = reviewCall(t, srv, "POST", "/api/payments/claim/", map[string]string{"X-API-KEY": key}, map[string]any{"receipt": "UKAPI00001", "amount": 50})
		if st != 200 {
			t.Fatalf("claim of the created payment: got %d %v, want 200", st, m)
		}
		st, m = reviewCall(t, srv, "POST", "/api/admin/review/"+id+"/dismiss/", admin, map[string]any{"reason": "again"})
		if st != 409 || errCode(m) != "review_item_resolved" {
			t.Errorf("dismiss of a resolved item: got %d %v, want 409 review_item_resolved", st, m)
		}
		st, m = reviewCall(t, srv, "GET", "/api/admin/review/"+id+"/", admin, nil)
		hist, _ := m["history"].([]any)
		if st != 200 || len(hist) != 1 || hist[0].(map[string]any)["actor"] != "admin-api" ||
			hist[0].(map[string]any)["reason"] != "statement shows 50 KES for UKAPI00001" {
			t.Errorf("history: got %d %v, want the create-payment by admin-api with its reason", st, hist)
		}
		if st, m := reviewCall(t, srv, "GET", "/api/admin/review/", admin, nil); st != 200 || len(m["items"].([]any)) != 0 {
			t.Errorf("open items after the resolution: got %d %v, want none", st, m)
		}
		if st, m := reviewCall(t, srv, "GET", "/api/admin/review/?state=all", admin, nil); st != 200 || len(m["items"].([]any)) != 1 {
			t.Errorf("all items: got %d %v, want one", st, m)
		}
		if st, m := reviewCall(t, srv, "GET", "/api/admin/review/?state=closed", admin, nil); st != 400 || errCode(m) != "invalid_state" {
			t.Errorf("state=closed: got %d %v, want 400 invalid_state", st, m)
		}
		st, m = reviewCall(t, srv, "GET", "/api/admin/audit/?actor=admin-api", admin, nil)
		entries, _ := m["entries"].([]any)
		if st != 200 || len(entries) != 1 || entries[0].(map[string]any)["action"] != "review.create_payment" ||
			entries[0].(map[string]any)["target"] != "review:"+id {
			t.Errorf("GET /api/admin/audit/?actor=admin-api: got %d %v, want the create-payment", st, m)
		}
	})
}
