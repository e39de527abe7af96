package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/api/openapitest"
)

// e2eWaitTimeout bounds every wait for something the service does in the
// background (a callback landing, a log line). It is a failure deadline,
// never an assertion on how long things take.
const e2eWaitTimeout = 10 * time.Second

// e2ePollInterval is how often waits look again.
const e2ePollInterval = 20 * time.Millisecond

// testService is a real Lipa started in-process by startService: simulator
// mode, its own database, its own LOG_FILE, listening on a free loopback
// port.
type testService struct {
	URL     string            // base URL, e.g. http://127.0.0.1:41234
	Env     map[string]string // the environment it was configured from; pass it to the CLI
	LogFile string            // path of its JSON log
	srv     *service          // the running service, for its simulator's counters
	client  *http.Client
}

// lookupIn returns a lookup function over env, standing in for
// os.LookupEnv so that no real environment variable leaks into a test.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// startTestService starts Lipa on databaseURL in simulator mode with a 20ms
// callback delay, no reconciliation within the test, and a LOG_FILE in a temporary directory; extra overrides or
// adds environment variables. The service is shut down at cleanup.
func startTestService(t *testing.T, databaseURL string, extra map[string]string) *testService {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":                  databaseURL,
		"LISTEN_ADDR":                   "127.0.0.1:0",
		"LOG_FILE":                      filepath.Join(t.TempDir(), "payments.log"),
		"LIPA_SIMULATOR_CALLBACK_DELAY": "20ms",
		// Keep the reconciler (STK push query after a while PENDING) out
		// of these tests: they post or await the callbacks themselves.
		"LIPA_RECONCILE_AFTER": "10m",
		// The tests post Safaricom's callbacks to the seed's bare paths
		// (/api/mpesa/stk-callback/, /api/c2b/…), which since issue 5 need
		// this opt-in; the simulator itself uses the secret-token paths.
		"MPESA_ALLOW_TOKENLESS_CALLBACKS": "true",
	}
	maps.Copy(env, extra)
	cfg, err := loadConfig(lookupIn(env), "")
	if err != nil {
		t.Fatalf("loadConfig: got error %v, want nil", err)
	}
	log, closeLog, err := newLogger(cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("newLogger: got error %v, want nil", err)
	}
	s, err := startService(context.Background(), cfg, log, io.Discard)
	if err != nil {
		closeLog()
		t.Fatalf("startService: got error %v, want nil", err)
	}
	ts := &testService{
		URL:     s.URL,
		Env:     env,
		LogFile: cfg.LogFile,
		srv:     s,
		client:  checkedClient(t, &http.Transport{MaxIdleConnsPerHost: 256}),
	}
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("shutdown: got error %v, want nil", err)
		}
		closeLog()
	})
	return ts
}

// checkedClient returns an HTTP client that sends through tr and checks
// every exchange against the OpenAPI document, failing t on a mismatch.
// Every request a test sends to Lipa goes through one.
func checkedClient(t *testing.T, tr *http.Transport) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: openapitest.Transport(t, tr)}
}

// processClient returns Lipa's Go client for the lipa process at base (a
// `lipa serve` the test started), as the app with key (none for ""), each
// request bounded by timeout and checked against the OpenAPI document. It
// never repeats a request, so that what the test records is single
// exchanges.
func processClient(t *testing.T, base, key string, timeout time.Duration) *client.Client {
	t.Helper()
	hc := checkedClient(t, &http.Transport{})
	hc.Timeout = timeout
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(base, key, client.WithHTTPClient(hc), client.WithRetries(0))
	if err != nil {
		t.Fatalf("client.New(%s): %v", base, err)
	}
	return c
}

// runCLI runs a lipa command in-process with env as its environment and
// returns its exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, lookupIn(env), &out, &errb)
	return code, out.String(), errb.String()
}

// createApp creates an app through `lipa apps create NAME --json` and
// returns its API key.
func (s *testService) createApp(t *testing.T, name string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, s.Env, "apps", "create", name, "--json")
	if code != 0 {
		t.Fatalf("lipa apps create %s: got exit code %d (stderr %q), want 0", name, code, stderr)
	}
	var out struct {
		Name   string `json:"name"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("lipa apps create %s --json: got %q, want a JSON object: %v", name, stdout, err)
	}
	if out.Name != name || !strings.HasPrefix(out.APIKey, "lipa_") {
		t.Fatalf("lipa apps create %s --json: got name %q key %q, want name %q and a key starting lipa_", name, out.Name, out.APIKey, name)
	}
	return out.APIKey
}

// appClient returns Lipa's Go client for the app with key (none for ""),
// sending its requests through s's checking transport. The end-to-end
// tests call the app API (push, payment, list, verify, claim, events,
// health) through it; raw is for what the client cannot express.
func (s *testService) appClient(t *testing.T, key string) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatalf("client.New(%s): %v", s.URL, err)
	}
	return c
}

// waitPayment polls the payment through c every 20ms until its status is
// want and returns it; it fails the test when the status is final and
// different, or at the deadline.
func waitPayment(t *testing.T, c *client.Client, id string, want client.Status) *client.Payment {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		p, err := c.Payment(context.Background(), id)
		if err != nil {
			t.Fatalf("payment %s: %v", id, err)
		}
		if p.Status == want {
			return p
		}
		if p.Status != client.StatusPending || time.Now().After(deadline) {
			t.Fatalf("payment %s: got status %s, want %s (payment %+v)", id, p.Status, want, p)
		}
		time.Sleep(e2ePollInterval)
	}
}

// wantClientError fails the test unless err is a *client.Error with the
// given status and code, and returns it.
func wantClientError(t *testing.T, what string, err error, status int, code string) *client.Error {
	t.Helper()
	var le *client.Error
	if !errors.As(err, &le) || le.StatusCode != status || le.Code != code {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
	return le
}

// pushOK pushes amount shillings to phone for reference through c, with
// the description "Test", and returns the answer, which must be a success
// carrying a payment id and a CheckoutRequestID.
func pushOK(t *testing.T, c *client.Client, phone string, amount int64, reference string) *client.PushResult {
	t.Helper()
	r, err := c.Push(context.Background(), client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(amount), Reference: reference, Description: "Test"})
	if err != nil {
		t.Fatalf("push %d to %s for %s: %v", amount, phone, reference, err)
	}
	if r.PaymentID == "" || r.CheckoutRequestID == "" {
		t.Fatalf("push %d to %s for %s: got %+v, want a payment id and a CheckoutRequestID", amount, phone, reference, r)
	}
	return r
}

// paymentOK returns the payment as c's app sees it, which must be found.
func paymentOK(t *testing.T, c *client.Client, id string) *client.Payment {
	t.Helper()
	p, err := c.Payment(context.Background(), id)
	if err != nil {
		t.Fatalf("payment %s: %v", id, err)
	}
	return p
}

// verifyOK verifies q through c, which must find a payment.
func verifyOK(t *testing.T, c *client.Client, q client.VerifyQuery) *client.Verification {
	t.Helper()
	v, err := c.Verify(context.Background(), q)
	if err != nil {
		t.Fatalf("verify %+v: %v", q, err)
	}
	return v
}

// claimOK claims r through c, which must succeed.
func claimOK(t *testing.T, c *client.Client, r client.ClaimRequest) *client.Claim {
	t.Helper()
	cl, err := c.Claim(context.Background(), r)
	if err != nil {
		t.Fatalf("claim %+v: %v", r, err)
	}
	return cl
}

// apiResponse is one answer from the service.
type apiResponse struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any // the JSON object answered (numbers as float64)
}

// send sends one request to the service through its checking transport
// and returns its answer, or the transport error; it never touches a
// testing.T, so it may run on any goroutine. body is nil (no body), a
// string or []byte (sent as is, so a test can send malformed JSON), or any
// other value (sent as its JSON); a body goes with Content-Type
// application/json unless header sets another. header is sent as given
// (several values of one name are sent as several header lines). An answer
// that is not a JSON object is returned with a nil Body and an error.
func (s *testService) send(method, path string, header http.Header, body any) (apiResponse, error) {
	return s.sendVia(s.client, method, path, header, body)
}

// sendVia is send through hc, for the tests that need connections of
// their own (another source address); hc must check the exchanges too
// (checkedClient).
func (s *testService) sendVia(hc *http.Client, method, path string, header http.Header, body any) (apiResponse, error) {
	return sendTo(hc, s.URL, method, path, header, body)
}

// sendTo is send to the Lipa at base (a lipa process the test started)
// through hc, which must check the exchanges (checkedClient).
func sendTo(hc *http.Client, base, method, path string, header http.Header, body any) (apiResponse, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return apiResponse{}, fmt.Errorf("marshal request body: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return apiResponse{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &r.Body); err != nil || r.Body == nil {
		return r, fmt.Errorf("%s %s: got body %q (status %d), want a JSON object", method, path, raw, r.Status)
	}
	return r, nil
}

// raw sends a request the typed client cannot express (Safaricom's
// callbacks, malformed JSON, a duplicate header, a field of the wrong
// type) through the service's checking transport and returns its answer.
// It is the one way the end-to-end tests call Lipa besides the client.
// Every answer must be a JSON object; every error answer (4xx, 5xx) must be
// Lipa's error shape with Content-Type application/json.
func (s *testService) raw(t *testing.T, method, path string, header http.Header, body any) apiResponse {
	t.Helper()
	r, err := s.send(method, path, header, body)
	if err != nil && r.Raw == nil && r.Status == 0 {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if err != nil {
		t.Errorf("%v", err)
	}
	if r.Status >= 400 {
		checkErrorShape(t, method+" "+path, r)
	}
	return r
}

// keyHeader is the header that names the app with key; none for "".
func keyHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"X-Api-Key": {key}}
}

// do is raw with key, when not empty, sent as X-API-KEY.
func (s *testService) do(t *testing.T, method, path, key string, body any) apiResponse {
	t.Helper()
	return s.raw(t, method, path, keyHeader(key), body)
}

// checkErrorShape checks that an error answer is
// {"error": {"code": "…", "message": "…", "details": {…}}} served as
// application/json.
func checkErrorShape(t *testing.T, what string, r apiResponse) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: got Content-Type %q on a %d, want application/json", what, ct, r.Status)
	}
	e, ok := r.Body["error"].(map[string]any)
	if !ok {
		t.Errorf("%s: got body %s on a %d, want {\"error\": {…}}", what, r.Raw, r.Status)
		return
	}
	if c, _ := e["code"].(string); c == "" {
		t.Errorf("%s: got error.code %v, want a non-empty string (body %s)", what, e["code"], r.Raw)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("%s: got error.message %v, want a non-empty string (body %s)", what, e["message"], r.Raw)
	}
	if _, ok := e["details"].(map[string]any); !ok {
		t.Errorf("%s: got error.details %v, want an object (body %s)", what, e["details"], r.Raw)
	}
}

// jsonAt walks nested JSON objects along path and returns the value found, or
// nil.
func jsonAt(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

// jsonStr returns the string at path, or "" when there is none.
func jsonStr(m map[string]any, path ...string) string {
	s, _ := jsonAt(m, path...).(string)
	return s
}

// wantStatus fails the test unless r has the given HTTP status.
func wantStatus(t *testing.T, what string, r apiResponse, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: got status %d, want %d (body %s)", what, r.Status, status, r.Raw)
	}
}

// wantError fails the test unless r is an error answer with the given
// status and code.
func wantError(t *testing.T, what string, r apiResponse, status int, code string) {
	t.Helper()
	if r.Status != status || jsonStr(r.Body, "error", "code") != code {
		t.Fatalf("%s: got %d %q, want %d %q (body %s)", what, r.Status, jsonStr(r.Body, "error", "code"), status, code, r.Raw)
	}
}

// push, pushOK, payment and waitStatus below are the raw-JSON form of the
// app API that only the console tests still use; the other end-to-end
// tests use the client and the functions above.

// push sends POST /api/stk-push/ with body.
func (s *testService) push(t *testing.T, key string, body any) apiResponse {
	t.Helper()
	return s.do(t, http.MethodPost, "/api/stk-push/", key, body)
}

// pushOK pushes amount to phone for reference and returns the answer, which
// must be 200.
func (s *testService) pushOK(t *testing.T, key, phone string, amount any, reference string) apiResponse {
	t.Helper()
	r := s.push(t, key, map[string]any{"phone_number": phone, "amount": amount, "reference": reference, "description": "Test"})
	wantStatus(t, "POST /api/stk-push/", r, http.StatusOK)
	if jsonStr(r.Body, "payment_id") == "" || jsonStr(r.Body, "checkout_request_id") == "" {
		t.Fatalf("POST /api/stk-push/: got %s, want a payment_id and a checkout_request_id", r.Raw)
	}
	return r
}

// payment returns GET /api/payments/{id}/ as the app with key sees it,
// which must be 200.
func (s *testService) payment(t *testing.T, key, id string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/api/payments/"+id+"/", key, nil)
	wantStatus(t, "GET /api/payments/"+id+"/", r, http.StatusOK)
	return r.Body
}

// waitStatus polls the payment every 20ms until its status is want and
// returns it; it fails the test when the status is final and different, or
// at the deadline.
func (s *testService) waitStatus(t *testing.T, key, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		p := s.payment(t, key, id)
		got := jsonStr(p, "status")
		if got == want {
			return p
		}
		if got != "PENDING" || time.Now().After(deadline) {
			t.Fatalf("payment %s: got status %s, want %s (payment %v)", id, got, want, p)
		}
		time.Sleep(e2ePollInterval)
	}
}

// logLines returns the service's complete log lines so far, each decoded;
// a line that is not a JSON object fails the test.
func (s *testService) logLines(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatalf("read LOG_FILE: %v", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1] // a line still being written is not complete yet
	} else {
		data = nil
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m == nil {
			t.Fatalf("LOG_FILE line %q: got something that is not a JSON object, want JSON lines", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// waitLog polls the log until a line matches and returns that line.
func (s *testService) waitLog(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		for _, l := range s.logLines(t) {
			if match(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("LOG_FILE: got no line with %s, want one", what)
		}
		time.Sleep(e2ePollInterval)
	}
}

// waitSimCallbackDelivered waits until the built-in simulator has accepted
// an STK push to phone and delivered its callback to Lipa (Lipa has
// answered it). It reads the simulator's log lines: its CheckoutRequestIDs
// end in the last nine digits of the phone.
func (s *testService) waitSimCallbackDelivered(t *testing.T, phone string) {
	t.Helper()
	pushed := s.waitLog(t, "the simulator accepting a push to "+phone, func(l map[string]any) bool {
		return l["component"] == "simulator" && l["msg"] == "stk push accepted" &&
			strings.HasSuffix(jsonStr(l, "checkout_request_id"), phone[len(phone)-9:])
	})
	id := jsonStr(pushed, "checkout_request_id")
	s.waitLog(t, "the simulator delivering the callback of "+id, func(l map[string]any) bool {
		return l["component"] == "simulator" && l["msg"] == "stk callback delivered" && l["checkout_request_id"] == id
	})
}

// e2eSeq numbers the phones and references the tests make up.
var e2eSeq atomic.Int64

// freshPhone returns an ordinary (always paying) MSISDN no other push in
// this process has used.
func freshPhone() string { return fmt.Sprintf("25471%07d", 1000000+e2eSeq.Add(1)) }

// freshRef returns a reference no other push in this process has used; it
// fits Daraja's 12-character AccountReference.
func freshRef() string { return fmt.Sprintf("REF%d", 100000+e2eSeq.Add(1)) }

// paymentIDs returns the ids of a raw GET /api/payments/ answer, in order.
func paymentIDs(t *testing.T, r apiResponse) []string {
	t.Helper()
	list, ok := r.Body["payments"].([]any)
	if !ok {
		t.Fatalf("list: got %s, want a payments array", r.Raw)
	}
	var ids []string
	for _, p := range list {
		m, _ := p.(map[string]any)
		ids = append(ids, jsonStr(m, "id"))
	}
	return ids
}
