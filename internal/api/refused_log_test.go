package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusedRequestsLogBounded: 3,000 refused requests from one client
// (wrong callback token, a source not allowed, wrong API keys, unknown
// paths) add less than 50 KB to the JSON log and to the text log each, as
// `lipa serve` writes them, and the first refusals are still logged with
// their reason.
func TestRefusedRequestsLogBounded(t *testing.T) {
	const token = "abcdefghijklmnopqrstuvwxyz012345"
	body := []byte(`{"Body":{"stkCallback":{"MerchantRequestID":"10000-2000001-1","CheckoutRequestID":"ws_CO_flood","ResultCode":0,"ResultDesc":"x",` +
		`"CallbackMetadata":{"Item":[{"Name":"Amount","Value":10},{"Name":"MpesaReceiptNumber","Value":"FLOOD00001"},{"Name":"PhoneNumber","Value":254708374149}]}}}}`)
	floods := []struct {
		name    string
		allowed string // LIPA_CALLBACK_ALLOWED_IPS
		req     func(i int) *http.Request
	}{
		{"wrong callback token", "", func(i int) *http.Request {
			r, _ := http.NewRequest("POST", "/api/mpesa/stk-callback/wrongtoken"+strings.Repeat("x", i%7)+"/", bytes.NewReader(body))
			return r
		}},
		{"source not allowed", "196.201.214.200", func(i int) *http.Request {
			r, _ := http.NewRequest("POST", "/api/c2b/confirmation/"+token+"/", bytes.NewReader(body))
			return r
		}},
		{"wrong API key", "", func(i int) *http.Request {
			r, _ := http.NewRequest("GET", "/api/payments/", nil)
			r.Header.Set("X-API-KEY", "lipa_wrong"+strings.Repeat("k", i%5))
			return r
		}},
		{"unknown path", "", func(i int) *http.Request {
			r, _ := http.NewRequest("GET", "/wp-login.php", nil)
			return r
		}},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		db := sqlstoretest.OpenURL(t, databaseURL)
		for _, f := range floods {
			t.Run(f.name, func(t *testing.T) {
				var jsonLog, textLog syncBuffer
				opts := &slog.HandlerOptions{Level: slog.LevelInfo}
				log := slog.New(slog.NewMultiHandler(slog.NewJSONHandler(&jsonLog, opts), slog.NewTextHandler(&textLog, opts)))
				gw := gateway.New(db, nil, gateway.Config{ShortCode: "174379", Logger: log})
				guard := api.CallbackGuard{Token: token}
				if f.allowed != "" {
					guard.Allowed, _ = api.ParsePrefixes(f.allowed)
				}
				srv := httptest.NewServer(api.New(gw, api.Config{Logger: log, Callbacks: guard, AuthFailuresPerMinute: 20, AppRateLimit: 50}))
				defer srv.Close()
				client := srv.Client()
				codes := map[int]int{}
				for i := range 3000 {
					r := f.req(i)
					r.URL.Scheme, r.URL.Host, r.Host = "http", strings.TrimPrefix(srv.URL, "http://"), strings.TrimPrefix(srv.URL, "http://")
					res, err := client.Do(r)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					codes[res.StatusCode]++
				}
				for code := range codes {
					if code < 400 || code >= 500 {
						t.Errorf("answers: got %v, want only refusals (4xx)", codes)
						break
					}
				}
				j, x := len(jsonLog.String()), len(textLog.String())
				t.Logf("3000 refused requests (%v): JSON log %d B, text log %d B", codes, j, x)
				if j >= 50_000 || x >= 50_000 {
					t.Errorf("3000 refused requests: got JSON log %d B, text log %d B, want each < 50 KB", j, x)
				}
				// The first refusals are there, with what was refused and why.
				first := map[string]any{}
				sc := bufio.NewScanner(strings.NewReader(jsonLog.String()))
				for sc.Scan() {
					var l map[string]any
					if json.Unmarshal(sc.Bytes(), &l) == nil && (l["reason"] != nil || l["code"] != nil) {
						first = l
						break
					}
				}
				if first["source"] != "127.0.0.1" {
					t.Errorf("first refusal logged: got %v, want a line naming the source 127.0.0.1 and the reason or code", first)
				}
			})
		}
	})
}
