package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestE2EReferencePrice: an order is never answered as paid for less than
// it costs. A 5,000 KES push under ORDER777 is cancelled; the customer then
// pays 1 KES to the paybill under ORDER777 (lipa simulate c2b). Verify by
// reference says not paid (amount_expected 5000, amount_paid 1) and claim by
// reference is 422 amount_mismatch; a full 5,000 paid to the paybill later is
// paid, from the intake, and claimed by reference without an amount.
func TestE2EReferencePrice(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		ref := url.Values{"reference": {"ORDER777"}}

		push := svc.pushOK(t, key, darajasim.PhoneCancelled, 5000, "ORDER777")
		svc.waitStatus(t, key, jsonStr(push.Body, "payment_id"), "FAILED")
		simulateC2B := func(amount string) {
			t.Helper()
			code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", amount, "--account", "ORDER777", "--phone", "254708374149", "--url", svc.URL)
			if code != 0 {
				t.Fatalf("lipa simulate c2b --amount %s: got exit code %d (stdout %q, stderr %q), want 0", amount, code, stdout, stderr)
			}
		}
		simulateC2B("1")

		v := svc.verify(t, key, ref)
		wantStatus(t, "verify ORDER777 after 1 KES", v, http.StatusOK)
		want := map[string]any{"paid": false, "amount_expected": float64(5000), "amount_paid": float64(1),
			"payment_id": jsonStr(push.Body, "payment_id"), "payment_type": "STK", "from_intake": false, "status": "FAILED"}
		for k, w := range want {
			if v.Body[k] != w {
				t.Errorf("verify ORDER777 after 1 KES: %s: got %v, want %v (body %s)", k, v.Body[k], w, v.Raw)
			}
		}
		c := svc.claim(t, key, map[string]any{"reference": "ORDER777"})
		wantError(t, "claim ORDER777 after 1 KES", c, http.StatusUnprocessableEntity, "amount_mismatch")
		if jsonAt(c.Body, "error", "details", "expected") != float64(5000) || jsonAt(c.Body, "error", "details", "actual") != float64(1) {
			t.Errorf("claim ORDER777 after 1 KES: got details %v, want expected 5000, actual 1", jsonAt(c.Body, "error", "details"))
		}

		simulateC2B("5000")
		v = svc.verify(t, key, ref)
		wantStatus(t, "verify ORDER777 after 5000 KES", v, http.StatusOK)
		want = map[string]any{"paid": true, "amount": float64(5000), "amount_expected": float64(5000), "amount_paid": float64(5001),
			"payment_type": "C2B", "from_intake": true, "status": "SUCCESS", "claimed": false}
		for k, w := range want {
			if v.Body[k] != w {
				t.Errorf("verify ORDER777 after 5000 KES: %s: got %v, want %v (body %s)", k, v.Body[k], w, v.Raw)
			}
		}
		c = svc.claim(t, key, map[string]any{"reference": "ORDER777"})
		wantStatus(t, "claim ORDER777 after 5000 KES", c, http.StatusOK)
		if c.Body["amount"] != float64(5000) || jsonStr(c.Body, "payment_id") != jsonStr(v.Body, "payment_id") {
			t.Errorf("claim ORDER777: got %s, want payment %s of 5000", c.Raw, jsonStr(v.Body, "payment_id"))
		}

		// A reference the app never pushed under: no price to compare with.
		inv77 := url.Values{"reference": {"INV77"}}
		code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", "100", "--account", "INV77", "--phone", "254708374149", "--url", svc.URL)
		if code != 0 {
			t.Fatalf("lipa simulate c2b INV77: got exit code %d (stdout %q, stderr %q), want 0", code, stdout, stderr)
		}
		v = svc.verify(t, key, inv77)
		wantStatus(t, "verify INV77", v, http.StatusOK)
		want = map[string]any{"paid": true, "amount": float64(100), "amount_expected": nil, "amount_paid": float64(100),
			"payment_type": "C2B", "from_intake": true}
		for k, w := range want {
			if got, ok := v.Body[k]; !ok || got != w {
				t.Errorf("verify INV77: %s: got %v (present %v), want %v (body %s)", k, got, ok, w, v.Raw)
			}
		}
	})
}
