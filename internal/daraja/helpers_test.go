package daraja_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

const (
	oauthRoute = "GET /oauth/v1/generate"
	pushRoute  = "POST /mpesa/stkpush/v1/processrequest"
	queryRoute = "POST /mpesa/stkpushquery/v1/query"

	// fixtureToken is the access_token in oauth-token.json.
	fixtureToken = "c9SQxWWhmdVRlyh0zh8gZDTkubVF"

	testKey    = "test-consumer-key"
	testSecret = "test-consumer-secret"
)

// fixture returns the contents of testdata/daraja/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "daraja", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// fake is a Daraja stand-in on loopback: real HTTP, answers chosen per test.
type fake struct {
	URL        string
	tokenCalls atomic.Int64 // requests to the OAuth endpoint
	calls      atomic.Int64 // requests to every other route
}

// newFake serves routes (ServeMux patterns) on an httptest server. Unless
// routes has its own, the OAuth route checks Basic auth and grant_type and
// answers oauth-token.json.
func newFake(t *testing.T, routes map[string]http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	if routes == nil {
		routes = map[string]http.HandlerFunc{}
	}
	if _, ok := routes[oauthRoute]; !ok {
		routes[oauthRoute] = tokenHandler(t, fixture(t, "oauth-token.json"))
	}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if pattern == oauthRoute {
				f.tokenCalls.Add(1)
			} else {
				f.calls.Add(1)
			}
			h(w, r)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// tokenHandler checks the OAuth request (docs/daraja.md "OAuth") and answers
// body, or HTTP 400 with an empty body when the credentials are not
// testKey/testSecret.
func tokenHandler(t *testing.T, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("grant_type"); got != "client_credentials" {
			t.Errorf("grant_type: got %q, want %q", got, "client_credentials")
		}
		if k, s, ok := r.BasicAuth(); !ok || k != testKey || s != testSecret {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// rotatingTokens issues "tok-1", "tok-2", ... and remembers which one is
// valid; revoke makes the current one invalid, as if it had expired early.
type rotatingTokens struct {
	mu     sync.Mutex
	issued int
	valid  string
}

func (rt *rotatingTokens) handler(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	rt.issued++
	tok := "tok-" + strconv.Itoa(rt.issued)
	rt.valid = tok
	rt.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // widen the window for concurrent callers
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "expires_in": "3599"})
}

func (rt *rotatingTokens) revoke() {
	rt.mu.Lock()
	rt.valid = ""
	rt.mu.Unlock()
}

func (rt *rotatingTokens) accepts(r *http.Request) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.valid != "" && r.Header.Get("Authorization") == "Bearer "+rt.valid
}

// serve answers status with body and an application/json content type.
func serve(status int, body []byte) http.HandlerFunc {
	return serveType(status, "application/json", body)
}

func serveType(status int, contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write(body)
	}
}

// hang answers nothing until the client goes away (or 2 s pass). It drains
// the body first: the server notices a closed connection only after that.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(2 * time.Second):
	}
}

// clock is an adjustable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClient returns a client for baseURL with the test credentials and a 2 s
// timeout, changed by mods.
func newClient(t *testing.T, baseURL string, mods ...func(*daraja.Config)) *daraja.Client {
	t.Helper()
	cfg := daraja.Config{
		BaseURL:        baseURL,
		ConsumerKey:    testKey,
		ConsumerSecret: testSecret,
		Timeout:        2 * time.Second,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := daraja.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// pushRequest is a valid paybill push to the sandbox shortcode.
func pushRequest() daraja.STKPushRequest {
	return daraja.STKPushRequest{
		ShortCode:        "174379",
		Passkey:          "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
		TransactionType:  daraja.PayBillOnline,
		Amount:           1,
		PhoneNumber:      "254708374149",
		CallBackURL:      "https://mydomain.com/path",
		AccountReference: "accountref",
		TransactionDesc:  "txndesc",
	}
}
