package darajasim_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa/internal/darajasim"
)

var eat = time.FixedZone("EAT", 3*60*60)

// newSim serves a simulator configured by cfg over real HTTP and returns it
// with its base URL. Cleanup closes the listener, then the simulator.
func newSim(t *testing.T, cfg darajasim.Config) (*darajasim.Server, string) {
	t.Helper()
	sim := darajasim.New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(sim.Close)
	t.Cleanup(ts.Close)
	return sim, ts.URL
}

// delivery is one request a receiver got.
type delivery struct {
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is a loopback HTTP server recording every request, standing in
// for Lipa's callback endpoints.
type receiver struct {
	URL string
	got chan delivery
}

// newReceiver starts a receiver; reply picks the status and body answered for
// a path (nil: 200 with an acceptance body).
func newReceiver(t *testing.T, reply func(path string) (int, string)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan delivery, 100)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.got <- delivery{Path: r.URL.Path, Header: r.Header.Clone(), Body: b}
		status, body := http.StatusOK, `{"ResultCode":"0","ResultDesc":"Accepted"}`
		if reply != nil {
			status, body = reply(r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	rc.URL = ts.URL
	return rc
}

// next returns the receiver's next request, failing after 5 s.
func (rc *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the receiver within 5s")
		return delivery{}
	}
}

// none fails if the receiver has a request queued.
func (rc *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case d := <-rc.got:
		t.Fatalf("receiver got an unexpected request to %s: %s", d.Path, d.Body)
	default:
	}
}

// clock is a settable clock for Config.Now.
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
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// call sends a request and returns the status and body. body may be a
// string, []byte, or any value to encode as JSON; token, when non-empty, is
// sent as a Bearer token.
func call(t *testing.T, method, u, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got
}

// token fetches an access token with any credentials.
func token(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/oauth/v1/generate?grant_type=client_credentials", nil)
	req.SetBasicAuth("key", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: got HTTP %d, %v; want 200 with a token", resp.StatusCode, err)
	}
	return tok.AccessToken
}

type envelope struct {
	RequestID    string `json:"requestId"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// wantError checks that an answer is Daraja's error envelope with the given
// status, code and message and a non-empty requestId, and returns it.
func wantError(t *testing.T, status int, body []byte, wantStatus int, wantCode, wantMessage string) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("got body %q, want an error envelope: %v", body, err)
	}
	if status != wantStatus || env.ErrorCode != wantCode || env.ErrorMessage != wantMessage {
		t.Errorf("got HTTP %d %s %q, want HTTP %d %s %q", status, env.ErrorCode, env.ErrorMessage, wantStatus, wantCode, wantMessage)
	}
	if env.RequestID == "" {
		t.Errorf("got an empty requestId in %s", body)
	}
	return env
}

// fixture returns a file from testdata/daraja.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "daraja", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode decodes JSON keeping numbers as json.Number.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// shape replaces every JSON scalar by its type name, so two bodies compare
// equal when they have the same keys, nesting and value types.
func shape(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = shape(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = shape(e)
		}
		return s
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	default:
		return "null"
	}
}

// wantShape checks that got has the same shape as a testdata fixture.
func wantShape(t *testing.T, got []byte, fixtureName string) {
	t.Helper()
	if diff := cmp.Diff(shape(decode(t, fixture(t, fixtureName))), shape(decode(t, got))); diff != "" {
		t.Errorf("body shape differs from %s (-fixture +got):\n%s", fixtureName, diff)
	}
}

// password is Daraja's STK Password.
func password(shortCode, passkey, timestamp string) string {
	return base64.StdEncoding.EncodeToString([]byte(shortCode + passkey + timestamp))
}

// redirect is a RoundTripper sending every request to target, keeping the
// path, so callbacks to the fixture's public CallBackURL land on a receiver.
type redirect struct{ target *url.URL }

func (rt redirect) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9]{28}$`)

func TestOAuth(t *testing.T) {
	_, open := newSim(t, darajasim.Config{})
	_, strict := newSim(t, darajasim.Config{ConsumerKey: "ck", ConsumerSecret: "cs"})
	tests := []struct {
		name       string
		base       string
		query      string
		auth       func(*http.Request)
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"any credentials", open, "grant_type=client_credentials", func(r *http.Request) { r.SetBasicAuth("a", "b") }, 200, "", ""},
		{"configured credentials", strict, "grant_type=client_credentials", func(r *http.Request) { r.SetBasicAuth("ck", "cs") }, 200, "", ""},
		{"wrong secret", strict, "grant_type=client_credentials", func(r *http.Request) { r.SetBasicAuth("ck", "nope") }, 400, "400.008.01", "Invalid Authentication passed"},
		{"wrong key", strict, "grant_type=client_credentials", func(r *http.Request) { r.SetBasicAuth("x", "cs") }, 400, "400.008.01", "Invalid Authentication passed"},
		{"empty secret", open, "grant_type=client_credentials", func(r *http.Request) { r.SetBasicAuth("a", "") }, 400, "400.008.01", "Invalid Authentication passed"},
		{"no auth", open, "grant_type=client_credentials", func(*http.Request) {}, 400, "400.008.01", "Invalid Authentication passed"},
		{"bearer auth", open, "grant_type=client_credentials", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, 400, "400.008.01", "Invalid Authentication passed"},
		{"wrong grant type", open, "grant_type=password", func(r *http.Request) { r.SetBasicAuth("a", "b") }, 400, "400.008.02", "Invalid grant type passed"},
		{"no grant type", open, "", func(r *http.Request) { r.SetBasicAuth("a", "b") }, 400, "400.008.02", "Invalid grant type passed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.base+"/oauth/v1/generate?"+tt.query, nil)
			tt.auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.wantCode != "" {
				wantError(t, resp.StatusCode, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got HTTP %d %s, want 200", resp.StatusCode, body)
			}
			wantShape(t, body, "oauth-token.json")
			var tok struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   string `json:"expires_in"`
			}
			json.Unmarshal(body, &tok)
			if !tokenRE.MatchString(tok.AccessToken) || tok.ExpiresIn != "3599" {
				t.Errorf("got token %q expiring in %q, want 28 alphanumerics expiring in \"3599\"", tok.AccessToken, tok.ExpiresIn)
			}
		})
	}
}

func TestTokenRejected(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 6, 9, 0, 0, 0, eat)}
	_, base := newSim(t, darajasim.Config{Now: clk.Now, CallbackDelay: time.Hour})
	expired := token(t, base)
	clk.Advance(darajasim.TokenLifetime)
	fresh := token(t, base)
	clk.Advance(darajasim.TokenLifetime - time.Second) // fresh is still valid for one second

	paths := []struct {
		path      string
		wantStat  int
		wantCode  string
		validBody any
	}{
		{"/mpesa/stkpush/v1/processrequest", 404, "404.001.03", pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", "1")},
		{"/mpesa/stkpushquery/v1/query", 404, "404.001.03", queryRequest("ws_CO_unknown")},
		{"/mpesa/c2b/v1/registerurl", 400, "400.003.01", registerRequest("600984", "Completed", "https://example.com/c", "https://example.com/v")},
		{"/mpesa/c2b/v2/registerurl", 400, "400.003.01", registerRequest("600984", "Completed", "https://example.com/c", "https://example.com/v")},
		{"/mpesa/c2b/v1/simulate", 400, "400.003.01", simulateRequest("600984", 10)},
		{"/mpesa/c2b/v2/simulate", 400, "400.003.01", simulateRequest("600984", 10)},
	}
	tokens := []struct{ name, token string }{
		{"missing", ""},
		{"unknown", "c9SQxWWhmdVRlyh0zh8gZDTkubVF"},
		{"expired", expired},
	}
	for _, p := range paths {
		for _, tk := range tokens {
			t.Run(p.path+"/"+tk.name, func(t *testing.T) {
				status, body := call(t, http.MethodPost, base+p.path, tk.token, p.validBody)
				wantError(t, status, body, p.wantStat, p.wantCode, "Invalid Access Token")
			})
		}
		t.Run(p.path+"/fresh", func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+p.path, fresh, p.validBody)
			var env envelope
			json.Unmarshal(body, &env)
			if env.ErrorCode == p.wantCode {
				t.Errorf("got HTTP %d %s with a valid token, want the token accepted", status, body)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	_, base := newSim(t, darajasim.Config{})
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantMsg      string
	}{
		{http.MethodPost, "/mpesa/stkpush/v2/processrequest", 404, "404.001.01", "Resource not found"},
		{http.MethodGet, "/", 404, "404.001.01", "Resource not found"},
		{http.MethodGet, "/mpesa/stkpush/v1/processrequest", 405, "405.001", "GET Method Not Allowed"},
		{http.MethodPut, "/mpesa/c2b/v2/registerurl", 405, "405.001", "PUT Method Not Allowed"},
		{http.MethodPost, "/oauth/v1/generate", 405, "405.001", "POST Method Not Allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body := call(t, tt.method, base+tt.path, "", nil)
			wantError(t, status, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
		})
	}
}

func TestCloseTwice(t *testing.T) {
	rc := newReceiver(t, nil)
	sim, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour})
	tok := token(t, base)
	status, body := call(t, http.MethodPost, base+"/mpesa/stkpush/v1/processrequest", tok, pushRequest(darajasim.PhoneSuccess, rc.URL+"/cb", "1"))
	if status != http.StatusOK {
		t.Fatalf("got HTTP %d %s, want 200", status, body)
	}
	done := make(chan struct{})
	go func() {
		sim.Close()
		sim.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close with a pending callback timer did not return within 2s")
	}
	rc.none(t)
}
