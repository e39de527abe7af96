package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// testAdminKey is the operators' key of inputAPI servers.
const testAdminKey = "input-test-admin-key-0123456789"

// inputAPI is Lipa's HTTP handler on a real loopback server over a fresh
// database, with one app ("shop"), its STK pushes sent over HTTP to a Daraja
// simulator whose callbacks go to a sink. Callbacks are accepted on the
// bare paths from any address.
type inputAPI struct {
	URL string
	Key string // the API key of "shop"
	GW  *gateway.Gateway
}

// newInputAPI starts an inputAPI on databaseURL; cfg's Logger, AdminKey and
// Callbacks are set here, readTimeout is the server's ReadTimeout (0: none).
func newInputAPI(t *testing.T, databaseURL string, cfg api.Config, readTimeout time.Duration) *inputAPI {
	t.Helper()
	db := sqlstoretest.OpenURL(t, databaseURL)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ResultCode":0,"ResultDesc":"Accepted"}`)
	}))
	t.Cleanup(sink.Close)
	sim := darajasim.New(darajasim.Config{})
	t.Cleanup(sim.Close)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	client, err := daraja.New(daraja.Config{BaseURL: simSrv.URL, ConsumerKey: "input-test", ConsumerSecret: "input-test"})
	if err != nil {
		t.Fatalf("daraja.New: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	gw := gateway.New(db, client, gateway.Config{ShortCode: darajasim.SandboxShortCode, Passkey: darajasim.SandboxPasskey,
		CallbackURL: sink.URL + "/callback", Logger: log})
	t.Cleanup(gw.Wait)
	_, key, err := gw.CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "test"}, "shop")
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	cfg.Logger, cfg.AdminKey, cfg.Callbacks = log, testAdminKey, api.CallbackGuard{AllowTokenless: true}
	srv := httptest.NewUnstartedServer(api.New(gw, cfg))
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return &inputAPI{URL: srv.URL, Key: key.Reveal(), GW: gw}
}

// answer is one HTTP answer, its body decoded as a JSON object.
type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// code returns the answer's error.code, or "".
func (a answer) code() string {
	e, _ := a.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// field returns the answer's error.details.field, or "".
func (a answer) field() string {
	e, _ := a.Body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	f, _ := d["field"].(string)
	return f
}

// message returns the answer's error.message, or "".
func (a answer) message() string {
	e, _ := a.Body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// send makes one request; headers are name, value pairs (a name may come
// twice); body "" sends none.
func (s *inputAPI) send(t *testing.T, method, path string, headers [][2]string, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	json.Unmarshal(raw, &a.Body)
	return a
}

// asApp makes a request as the app "shop" (X-API-KEY), with more headers.
func (s *inputAPI) asApp(t *testing.T, method, path, body string, more ...[2]string) answer {
	t.Helper()
	return s.send(t, method, path, append([][2]string{{"X-API-KEY", s.Key}}, more...), body)
}

// payments returns how many payments the app "shop" sees.
func (s *inputAPI) payments(t *testing.T) int {
	t.Helper()
	a := s.asApp(t, http.MethodGet, "/api/payments/", "")
	ps, ok := a.Body["payments"].([]any)
	if a.Status != http.StatusOK || !ok {
		t.Fatalf("GET /api/payments/: got %d %s, want 200 with a list", a.Status, a.Raw)
	}
	return len(ps)
}

// TestRepeatedHeadersAndParametersRefused: a key header or a query
// parameter given twice is 400 naming it, before anything is done, on app
// and operator routes alike; with two Idempotency-Key headers no payment is
// made (the first key winning let a retry with the second send a second
// prompt).
func TestRepeatedHeadersAndParametersRefused(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{}, 0)
		push := `{"phone_number": "254708374149", "amount": 10, "reference": "ORDER9"}`
		for _, c := range []struct {
			name         string
			method, path string
			headers      [][2]string
			body         string
			wantCode     string
			wantField    string
		}{
			{"two X-API-KEY headers", http.MethodGet, "/api/payments/", [][2]string{{"X-API-KEY", s.Key}, {"X-API-KEY", "lipa_other"}}, "", "duplicate_header", "X-API-KEY"},
			{"two X-API-KEY headers, the same key twice", http.MethodGet, "/api/payments/", [][2]string{{"X-API-KEY", s.Key}, {"X-API-KEY", s.Key}}, "", "duplicate_header", "X-API-KEY"},
			{"two Idempotency-Key headers", http.MethodPost, "/api/stk-push/", [][2]string{{"X-API-KEY", s.Key}, {"Idempotency-Key", "order9-a"}, {"Idempotency-Key", "order9-b"}}, push, "duplicate_header", "Idempotency-Key"},
			{"reference twice on verify", http.MethodGet, "/api/payments/verify/?reference=A&reference=B", [][2]string{{"X-API-KEY", s.Key}}, "", "duplicate_parameter", "reference"},
			{"status twice on the list", http.MethodGet, "/api/payments/?status=SUCCESS&status=FAILED", [][2]string{{"X-API-KEY", s.Key}}, "", "duplicate_parameter", "status"},
			{"after twice on the events feed", http.MethodGet, "/api/events/?after=&after=evt_x", [][2]string{{"X-API-KEY", s.Key}}, "", "duplicate_parameter", "after"},
			{"a parameter twice on a push", http.MethodPost, "/api/stk-push/?x=1&x=2", [][2]string{{"X-API-KEY", s.Key}}, push, "duplicate_parameter", "x"},
			{"two X-ADMIN-KEY headers", http.MethodGet, "/api/admin/callbacks/unmatched/", [][2]string{{"X-ADMIN-KEY", testAdminKey}, {"X-ADMIN-KEY", "wrong"}}, "", "duplicate_header", "X-ADMIN-KEY"},
			{"limit twice on an operators' list", http.MethodGet, "/api/admin/callbacks/unmatched/?limit=1&limit=1000", [][2]string{{"X-ADMIN-KEY", testAdminKey}}, "", "duplicate_parameter", "limit"},
		} {
			t.Run(c.name, func(t *testing.T) {
				a := s.send(t, c.method, c.path, c.headers, c.body)
				if a.Status != http.StatusBadRequest || a.code() != c.wantCode || a.field() != c.wantField || !strings.Contains(a.message(), c.wantField) {
					t.Errorf("got %d %s, want 400 %s naming %s", a.Status, a.Raw, c.wantCode, c.wantField)
				}
			})
		}
		if n := s.payments(t); n != 0 {
			t.Errorf("payments after the refused requests: got %d, want 0", n)
		}
		// Once each, the same requests pass.
		if a := s.asApp(t, http.MethodGet, "/api/payments/?status=SUCCESS", ""); a.Status != http.StatusOK {
			t.Errorf("GET /api/payments/?status=SUCCESS: got %d %s, want 200", a.Status, a.Raw)
		}
		if a := s.send(t, http.MethodGet, "/api/admin/callbacks/unmatched/?limit=1", [][2]string{{"X-ADMIN-KEY", testAdminKey}}, ""); a.Status != http.StatusOK {
			t.Errorf("GET /api/admin/callbacks/unmatched/?limit=1: got %d %s, want 200", a.Status, a.Raw)
		}
	})
}

// TestBodyFieldsThatWouldChangeRefused: a negative JSON number (a phone
// number -711000989 must not read as 711000989) and a string escaping half
// a UTF-16 surrogate pair (stored as U+FFFD, text the app never sent) are
// 400 naming the field, and nothing is stored; a complete pair and a
// literal backslash are text like any other.
func TestBodyFieldsThatWouldChangeRefused(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{}, 0)
		for _, c := range []struct {
			name      string
			path      string
			body      string
			wantCode  string
			wantField string
		}{
			{"phone_number a negative JSON number", "/api/stk-push/", `{"phone_number": -711000989, "amount": 10, "reference": "R10A"}`, "invalid_phone_number", "phone_number"},
			{"amount a negative JSON number", "/api/stk-push/", `{"phone_number": "254708374149", "amount": -10, "reference": "R10B"}`, "invalid_amount", "amount"},
			{"reference with a lone high surrogate", "/api/stk-push/", `{"phone_number": "254708374149", "amount": 10, "reference": "a\ud800b", "account_reference": "R10C"}`, "invalid_reference", "reference"},
			{"reference ending in a high surrogate", "/api/stk-push/", `{"phone_number": "254708374149", "amount": 10, "reference": "ab\uD800", "account_reference": "R10D"}`, "invalid_reference", "reference"},
			{"reference with a lone low surrogate", "/api/stk-push/", `{"phone_number": "254708374149", "amount": 10, "reference": "\udc00ab", "account_reference": "R10E"}`, "invalid_reference", "reference"},
			{"reference with two high surrogates", "/api/stk-push/", `{"phone_number": "254708374149", "amount": 10, "reference": "\ud83d\ud83d", "account_reference": "R10F"}`, "invalid_reference", "reference"},
			{"description with a lone surrogate", "/api/stk-push/", `{"phone_number": "254708374149", "amount": 10, "reference": "R10G", "description": "x\udfffy"}`, "invalid_description", "description"},
			{"claim reference with a lone surrogate", "/api/payments/claim/", `{"reference": "a\ud800"}`, "invalid_reference", "reference"},
			{"claim amount a negative JSON number", "/api/payments/claim/", `{"reference": "R10H", "amount": -5}`, "invalid_amount", "amount"},
		} {
			t.Run(c.name, func(t *testing.T) {
				a := s.asApp(t, http.MethodPost, c.path, c.body)
				if a.Status != http.StatusBadRequest || a.code() != c.wantCode || a.field() != c.wantField {
					t.Errorf("got %d %s, want 400 %s naming %s", a.Status, a.Raw, c.wantCode, c.wantField)
				}
			})
		}
		if n := s.payments(t); n != 0 {
			t.Errorf("payments after the refused pushes: got %d, want 0", n)
		}
		for _, c := range []struct {
			name, body, wantRef string
		}{
			{"a complete surrogate pair", `{"phone_number": "254708374149", "amount": 10, "reference": "a\ud83d\ude00b", "account_reference": "R10I"}`, "a😀b"},
			{"an escaped backslash before u", `{"phone_number": "254708374150", "amount": 10, "reference": "a\\ud800b", "account_reference": "R10J"}`, `a\ud800b`},
		} {
			t.Run(c.name, func(t *testing.T) {
				a := s.asApp(t, http.MethodPost, "/api/stk-push/", c.body)
				id, _ := a.Body["payment_id"].(string)
				if a.Status != http.StatusOK || id == "" {
					t.Fatalf("got %d %s, want 200", a.Status, a.Raw)
				}
				p := s.asApp(t, http.MethodGet, "/api/payments/"+id+"/", "")
				if got, _ := p.Body["reference"].(string); got != c.wantRef {
					t.Errorf("stored reference: got %q, want %q", got, c.wantRef)
				}
			})
		}
	})
}

// TestEventsFeedLastIDIsAlwaysThePosition: last_id is what to pass back as
// after, always: "" before the app's first event (after= reads from the
// start), the last event's id after a page, and the after given once the
// app has caught up (it was null, and passing that back replayed the feed).
func TestEventsFeedLastIDIsAlwaysThePosition(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{}, 0)
		feed := func(query string) (events []any, lastID any) {
			t.Helper()
			a := s.asApp(t, http.MethodGet, "/api/events/"+query, "")
			evs, ok := a.Body["events"].([]any)
			if a.Status != http.StatusOK || !ok {
				t.Fatalf("GET /api/events/%s: got %d %s, want 200 with a list", query, a.Status, a.Raw)
			}
			return evs, a.Body["last_id"]
		}
		for _, q := range []string{"", "?after="} {
			if evs, last := feed(q); len(evs) != 0 || last != "" {
				t.Errorf("GET /api/events/%s before any event: got %d events, last_id %#v; want none and \"\"", q, len(evs), last)
			}
		}
		body, err := os.ReadFile("../../testdata/daraja/c2b-confirmation-v2-masked.json")
		if err != nil {
			t.Fatal(err)
		}
		if a := s.send(t, http.MethodPost, "/api/c2b/confirmation/", nil, string(body)); a.Status != http.StatusOK {
			t.Fatalf("C2B confirmation: got %d %s, want 200", a.Status, a.Raw)
		}
		evs, last := feed("")
		if len(evs) != 1 {
			t.Fatalf("events after a C2B confirmation: got %d, want 1", len(evs))
		}
		id, _ := evs[0].(map[string]any)["id"].(string)
		if id == "" || last != id {
			t.Fatalf("last_id: got %#v, want the event's id %q", last, id)
		}
		for range 2 {
			evs, last := feed("?after=" + id)
			if len(evs) != 0 || last != id {
				t.Errorf("GET /api/events/?after=%s once caught up: got %d events, last_id %#v; want none and %q", id, len(evs), last, id)
			}
		}
	})
}

// TestWrongAdminKeysLimited: wrong or missing X-ADMIN-KEY values count as
// failed authentications of their source address, as wrong API keys do:
// 401 up to LIPA_AUTH_FAILURES_PER_MINUTE, then 429 too_many_failed_auth
// with Retry-After. The right key still passes.
func TestWrongAdminKeysLimited(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{AuthFailuresPerMinute: 3}, 0)
		admin := func(key string) answer {
			var h [][2]string
			if key != "" {
				h = [][2]string{{"X-ADMIN-KEY", key}}
			}
			return s.send(t, http.MethodGet, "/api/admin/callbacks/unmatched/", h, "")
		}
		for i, key := range []string{"wrong-admin-key-0001", "", "wrong-admin-key-0002"} {
			if a := admin(key); a.Status != http.StatusUnauthorized || a.code() != "invalid_admin_key" {
				t.Fatalf("wrong admin key %d: got %d %s, want 401 invalid_admin_key", i+1, a.Status, a.Raw)
			}
		}
		for i, key := range []string{"wrong-admin-key-0003", ""} {
			a := admin(key)
			if a.Status != http.StatusTooManyRequests || a.code() != "too_many_failed_auth" || a.Header.Get("Retry-After") == "" {
				t.Errorf("wrong admin key %d past the limit: got %d %s (Retry-After %q), want 429 too_many_failed_auth with Retry-After",
					4+i, a.Status, a.Raw, a.Header.Get("Retry-After"))
			}
		}
		// The count is the address's, whichever key it got wrong.
		if a := s.send(t, http.MethodGet, "/api/payments/", [][2]string{{"X-API-KEY", "lipa_wrong"}}, ""); a.Status != http.StatusTooManyRequests {
			t.Errorf("wrong API key from the same address: got %d %s, want 429", a.Status, a.Raw)
		}
		if a := admin(testAdminKey); a.Status != http.StatusOK {
			t.Errorf("the right admin key past the limit: got %d %s, want 200", a.Status, a.Raw)
		}
	})
}

// TestMisleadingErrorAnswers: error answers say what is wrong with this
// request on this endpoint.
func TestMisleadingErrorAnswers(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{}, 0)
		for _, c := range []struct {
			name         string
			method, path string
			body         string
			wantStatus   int
			wantCode     string
			wantAllow    string
			wantIn       string // in the message
			wantNotIn    string // not in the message
		}{
			{"empty claim body", http.MethodPost, "/api/payments/claim/", "", 400, "invalid_json", "", "payment_id", "phone_number"},
			{"claim body not an object", http.MethodPost, "/api/payments/claim/", `["pay_x"]`, 400, "invalid_json", "", "reference", "phone_number"},
			{"empty push body", http.MethodPost, "/api/stk-push/", "", 400, "invalid_json", "", "phone_number", ""},
			{"GET on the claim path", http.MethodGet, "/api/payments/claim/", "", 405, "method_not_allowed", "POST", "POST", ""},
			{"GET on the claim path without the slash", http.MethodGet, "/api/payments/claim", "", 405, "method_not_allowed", "POST", "POST", ""},
			{"DELETE on the claim path", http.MethodDelete, "/api/payments/claim/", "", 405, "method_not_allowed", "POST", "POST", ""},
			{"Arabic description", http.MethodPost, "/api/stk-push/", `{"phone_number": "254708374149", "amount": 5, "reference": "R13A", "description": "دفع"}`, 400, "invalid_description", "", "ASCII letters", ""},
			{"emoji account_reference", http.MethodPost, "/api/stk-push/", `{"phone_number": "254708374149", "amount": 5, "reference": "R13B", "account_reference": "R13😀"}`, 400, "invalid_account_reference", "", "ASCII letters", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				a := s.asApp(t, c.method, c.path, c.body)
				if a.Status != c.wantStatus || a.code() != c.wantCode {
					t.Fatalf("got %d %s, want %d %s", a.Status, a.Raw, c.wantStatus, c.wantCode)
				}
				if got := a.Header.Get("Allow"); got != c.wantAllow {
					t.Errorf("Allow: got %q, want %q", got, c.wantAllow)
				}
				if !strings.Contains(a.message(), c.wantIn) || (c.wantNotIn != "" && strings.Contains(a.message(), c.wantNotIn)) {
					t.Errorf("message: got %q, want one with %q and without %q", a.message(), c.wantIn, c.wantNotIn)
				}
			})
		}
		if n := s.payments(t); n != 0 {
			t.Errorf("payments after the refused pushes: got %d, want 0", n)
		}
	})
}

// TestSlowBodyIsRequestTimeout: a body that has not arrived when the
// server's read timeout runs out is 408 request_timeout (it was 400, as if
// the client had sent something wrong), from apps and on the
// Safaricom-facing paths.
func TestSlowBodyIsRequestTimeout(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := newInputAPI(t, databaseURL, api.Config{}, 300*time.Millisecond)
		for _, c := range []struct {
			name, path, headers string
		}{
			{"STK push", "/api/stk-push/", "X-API-KEY: " + s.Key + "\r\n"},
			{"claim", "/api/payments/claim/", "X-API-KEY: " + s.Key + "\r\n"},
			{"C2B confirmation", "/api/c2b/confirmation/", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				// 100 bytes announced, 8 sent, and then nothing.
				io.WriteString(conn, "POST "+c.path+" HTTP/1.1\r\nHost: lipa\r\n"+c.headers+
					"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"phone_")
				conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a failure deadline, not a measurement
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("read the answer: %v", err)
				}
				defer resp.Body.Close()
				var body struct {
					Error struct{ Code string } `json:"error"`
				}
				json.NewDecoder(resp.Body).Decode(&body)
				if resp.StatusCode != http.StatusRequestTimeout || body.Error.Code != "request_timeout" {
					t.Errorf("got %d %q, want 408 request_timeout", resp.StatusCode, body.Error.Code)
				}
			})
		}
	})
}
