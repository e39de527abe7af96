package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

const obsAdminKey = "observe-admin-key-0123456789"

// obsGet sends GET path with X-ADMIN-KEY adminKey (none when empty) and
// returns the status, the body and the headers.
func obsGet(t *testing.T, s *testService, path, adminKey string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if adminKey != "" {
		req.Header.Set("X-ADMIN-KEY", adminKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// promSample is one sample line of Prometheus' text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

var promLabelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// parseProm reads Prometheus' text exposition format; a sample line it
// cannot read fails the test.
func parseProm(t *testing.T, text string) []promSample {
	t.Helper()
	var out []promSample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics line %q: not a sample of Prometheus' text format", line)
		}
		s := promSample{name: line[:i], labels: map[string]string{}, value: v}
		if j := strings.IndexByte(s.name, '{'); j >= 0 {
			for _, m := range promLabelRE.FindAllStringSubmatch(s.name[j:], -1) {
				s.labels[m[1]] = m[2]
			}
			s.name = s.name[:j]
		}
		out = append(out, s)
	}
	return out
}

// promSum adds up the samples of name whose labels include want; ok is
// false when there is none.
func promSum(samples []promSample, name string, want map[string]string) (sum float64, ok bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			sum, ok = sum+s.value, true
		}
	}
	return sum, ok
}

// TestMetricsMoveUnderTraffic drives a push, its callback, verify, claim, a
// webhook delivery and a reconciliation through the real service and reads
// GET /metrics (X-ADMIN-KEY) in Prometheus' text format: every metric Lipa
// promises has moved.
func TestMetricsMoveUnderTraffic(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, map[string]string{"LIPA_ADMIN_KEY": obsAdminKey, "LIPA_RECONCILE_AFTER": "1s"})
		key := svc.createApp(t, "shop")
		rc := newWHReceiver(t, whAlways(http.StatusOK))
		rc.setSecret(whSetWebhook(t, svc.Env, "shop", rc.URL))

		paid := svc.pushOK(t, key, freshPhone(), 10, freshRef())
		id := jsonStr(paid.Body, "payment_id")
		p := svc.waitStatus(t, key, id, "SUCCESS")
		wantStatus(t, "verify", svc.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {jsonStr(p, "mpesa_receipt_number")}}.Encode(), key, nil), http.StatusOK)
		wantStatus(t, "claim", svc.do(t, http.MethodPost, "/api/payments/claim/", key, map[string]any{"payment_id": id}), http.StatusOK)
		failed := svc.pushOK(t, key, darajasim.PhoneCancelled, 10, freshRef())
		svc.waitStatus(t, key, jsonStr(failed.Body, "payment_id"), "FAILED")
		// No callback comes for this one: the reconciler's query settles it.
		quiet := svc.pushOK(t, key, darajasim.PhoneNoCallback, 10, freshRef())
		svc.waitStatus(t, key, jsonStr(quiet.Body, "payment_id"), "SUCCESS")
		rc.waitOK(t, whWait, whIDs(whFeedAll(t, svc, key, 4))...)

		var samples []promSample
		type want struct {
			name   string
			labels map[string]string
		}
		wants := []want{
			{"lipa_http_requests_total", map[string]string{"route": "/api/stk-push/", "method": "POST", "status": "200"}},
			{"lipa_http_requests_total", map[string]string{"route": "/api/payments/verify/", "method": "GET", "status": "200"}},
			{"lipa_http_requests_total", map[string]string{"route": "/api/payments/claim/", "method": "POST", "status": "200"}},
			{"lipa_http_requests_total", map[string]string{"route": "/api/stk/callback/{token}/", "method": "POST", "status": "200"}},
			{"lipa_http_request_duration_seconds_count", map[string]string{"route": "/api/stk-push/", "method": "POST", "status": "200"}},
			{"lipa_daraja_requests_total", map[string]string{"api": "oauth", "outcome": "ok"}},
			{"lipa_daraja_requests_total", map[string]string{"api": "stk_push", "outcome": "ok"}},
			{"lipa_daraja_requests_total", map[string]string{"api": "stk_query", "outcome": "ok"}},
			{"lipa_daraja_request_duration_seconds_count", map[string]string{"api": "stk_push", "outcome": "ok"}},
			{"lipa_payments_settled_total", map[string]string{"type": "STK", "status": "SUCCESS", "reason": "none"}},
			{"lipa_payments_settled_total", map[string]string{"type": "STK", "status": "FAILED", "reason": "cancelled_by_user"}},
			{"lipa_payments_claimed_total", nil},
			{"lipa_stk_callback_lag_seconds_count", nil},
			{"lipa_reconcile_payments_total", map[string]string{"outcome": "succeeded"}},
			{"lipa_webhook_attempts_total", map[string]string{"result": "delivered"}},
			{"lipa_webhook_delivery_lag_seconds_count", nil},
		}
		end := time.Now().Add(e2eWaitTimeout)
		for {
			status, body, h := obsGet(t, svc, "/metrics", obsAdminKey)
			if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
				t.Fatalf("GET /metrics with the admin key: got %d %s, want 200 in Prometheus' text format", status, h.Get("Content-Type"))
			}
			samples = parseProm(t, body)
			missing := 0
			for _, w := range wants {
				if v, _ := promSum(samples, w.name, w.labels); v < 1 {
					missing++
				}
			}
			if v, _ := promSum(samples, "lipa_webhook_backlog", nil); v != 0 {
				missing++
			}
			if missing == 0 || time.Now().After(end) {
				break
			}
			time.Sleep(e2ePollInterval) // the last webhook's record may trail its answer
		}
		for _, w := range wants {
			if v, ok := promSum(samples, w.name, w.labels); v < 1 {
				t.Errorf("/metrics: got %s%v = %v (present %v), want at least 1", w.name, w.labels, v, ok)
			}
		}
		backend := string(sqlstore.SQLite)
		if strings.HasPrefix(databaseURL, "postgres") {
			backend = string(sqlstore.Postgres)
		}
		for _, w := range []want{
			{"lipa_webhook_backlog", nil},
			{"go_sql_open_connections", map[string]string{"db_name": backend}},
			{"go_goroutines", nil},
			{"process_resident_memory_bytes", nil},
		} {
			if _, ok := promSum(samples, w.name, w.labels); !ok {
				t.Errorf("/metrics: got no %s%v, want it", w.name, w.labels)
			}
		}
		if v, _ := promSum(samples, "lipa_webhook_backlog", nil); v != 0 {
			t.Errorf("lipa_webhook_backlog once every event was delivered: got %v, want 0", v)
		}
		for _, s := range samples {
			if r := s.labels["route"]; s.name == "lipa_http_requests_total" && strings.Contains(r, "callback/") &&
				!strings.HasSuffix(r, "/callback/") && !strings.HasSuffix(r, "-callback/") && !strings.HasSuffix(r, "{token}/") {
				t.Errorf("/metrics: got route label %q, want the route pattern (never the callback token)", r)
			}
		}
	})
}

// TestMetricsNeedTheAdminKey: /metrics and /debug/pprof/ answer only with
// X-ADMIN-KEY: 401 without it or with a wrong one, 404 when LIPA_ADMIN_KEY
// is not set at all; with LIPA_ADMIN_ADDR they are on the operators'
// listener only.
func TestMetricsNeedTheAdminKey(t *testing.T) {
	url := sqlstoretest.URL(t, sqlstore.SQLite)
	svc := startTestService(t, url, map[string]string{"LIPA_ADMIN_KEY": obsAdminKey})
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		for _, tt := range []struct {
			key    string
			status int
		}{{"", http.StatusUnauthorized}, {"wrong-key-wrong-key-wrong", http.StatusUnauthorized}, {obsAdminKey, http.StatusOK}} {
			status, body, _ := obsGet(t, svc, path, tt.key)
			if status != tt.status {
				t.Errorf("GET %s with X-ADMIN-KEY %q: got %d %.200s, want %d", path, tt.key, status, body, tt.status)
			}
			if status == http.StatusOK && path == "/metrics" && !strings.Contains(body, "lipa_http_requests_total") {
				t.Errorf("GET /metrics: got %.300s, want Lipa's metrics", body)
			}
		}
	}
	// With an operators' listener of its own (LIPA_ADMIN_ADDR), they move
	// there, behind the same key; the main listener no longer has them.
	own := startTestService(t, sqlstoretest.URL(t, sqlstore.SQLite), map[string]string{"LIPA_ADMIN_KEY": obsAdminKey, "LIPA_ADMIN_ADDR": "127.0.0.1:0"})
	admin := &testService{URL: own.srv.AdminURL, client: own.client}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if status, body, _ := obsGet(t, own, path, obsAdminKey); status != http.StatusNotFound {
			t.Errorf("GET %s on LISTEN_ADDR with LIPA_ADMIN_ADDR set: got %d %.200s, want 404", path, status, body)
		}
		if status, body, _ := obsGet(t, admin, path, ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s on LIPA_ADMIN_ADDR without X-ADMIN-KEY: got %d %.200s, want 401", path, status, body)
		}
		status, body, _ := obsGet(t, admin, path, obsAdminKey)
		if status != http.StatusOK {
			t.Errorf("GET %s on LIPA_ADMIN_ADDR with X-ADMIN-KEY: got %d %.200s, want 200", path, status, body)
		}
		if path == "/metrics" && !strings.Contains(body, "lipa_http_requests_total") {
			t.Errorf("GET /metrics on LIPA_ADMIN_ADDR: got %.300s, want Lipa's metrics", body)
		}
	}

	off := startTestService(t, sqlstoretest.URL(t, sqlstore.SQLite), nil)
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if status, body, _ := obsGet(t, off, path, obsAdminKey); status != http.StatusNotFound {
			t.Errorf("GET %s without LIPA_ADMIN_KEY configured: got %d %.200s, want 404", path, status, body)
		}
	}
}

// TestRequestID: every answer carries X-Request-ID, the caller's own when it
// is sane (one header, at most 64 visible characters) and a new one
// otherwise, and every log line about the request names it, from the API,
// the gateway and the Daraja client alike.
func TestRequestID(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		send := func(method, path string, ids []string, body string) (int, string) {
			t.Helper()
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, svc.URL+path, rd)
			req.Header.Set("X-API-KEY", key)
			req.Header.Set("Content-Type", "application/json")
			for _, id := range ids {
				req.Header.Add("X-Request-ID", id)
			}
			resp, err := svc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := resp.Header.Values("X-Request-ID"); len(got) != 1 {
				t.Fatalf("%s %s: got X-Request-ID %q, want exactly one", method, path, got)
			}
			return resp.StatusCode, resp.Header.Get("X-Request-ID")
		}

		pushBody := `{"phone_number": "` + freshPhone() + `", "amount": 10, "reference": "` + freshRef() + `"}`
		if st, id := send("POST", "/api/stk-push/", []string{"checkout-7f3a"}, pushBody); st != 200 || id != "checkout-7f3a" {
			t.Fatalf("push with X-Request-ID checkout-7f3a: got %d and X-Request-ID %q, want 200 echoing it", st, id)
		}
		lines := map[string]bool{}
		svc.waitLog(t, "stk push accepted with request_id checkout-7f3a", func(l map[string]any) bool {
			return l["msg"] == "stk push accepted" && l["request_id"] == "checkout-7f3a"
		})
		for _, l := range svc.logLines(t) {
			if l["request_id"] == "checkout-7f3a" {
				lines[jsonStr(l, "msg")] = true
			}
		}
		for _, msg := range []string{"stk push initiated", "daraja call", "stk push accepted"} {
			if !lines[msg] {
				t.Errorf("log: got no %q line with request_id checkout-7f3a (lines with it: %v), want one", msg, lines)
			}
		}

		if st, id := send("GET", "/api/payments/pay_doesnotexist/", []string{"trace-404"}, ""); st != 404 || id != "trace-404" {
			t.Errorf("error answer: got %d and X-Request-ID %q, want 404 echoing trace-404", st, id)
		}
		svc.waitLog(t, "the refused request with request_id trace-404", func(l map[string]any) bool {
			return l["msg"] == "request refused" && l["request_id"] == "trace-404"
		})

		hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
		seen := map[string]bool{}
		for _, tt := range []struct {
			name string
			ids  []string
		}{
			{"none", nil},
			{"empty", []string{""}},
			{"too long", []string{strings.Repeat("a", 65)}},
			{"a space", []string{"two words"}},
			{"not ASCII", []string{"kitambulisho-é"}},
			{"two headers", []string{"one", "two"}},
		} {
			st, id := send("GET", "/api/payments/?limit=1", tt.ids, "")
			if st != 200 || !hex32.MatchString(id) || seen[id] {
				t.Errorf("X-Request-ID %s: got %d and %q, want 200 and a new ID of 32 hex digits", tt.name, st, id)
			}
			seen[id] = true
		}
		if st, id := send("GET", "/healthz", []string{strings.Repeat("x", 64)}, ""); st != 200 || id != strings.Repeat("x", 64) {
			t.Errorf("X-Request-ID of 64 characters: got %d and %q, want it echoed", st, id)
		}
	})
}
