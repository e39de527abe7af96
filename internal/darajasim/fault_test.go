package darajasim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa/internal/darajasim"
)

// send POSTs body as JSON to u with client and, when tok is non-empty, a
// Bearer token; it returns the answer with its body read, or the transport
// error.
func send(client *http.Client, u, tok string, body any) (*http.Response, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp, got, err
}

// mediaType returns the answer's Content-Type without parameters.
func mediaType(t *testing.T, resp *http.Response) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("got Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	return mt
}

// wantPushes checks PushCount for phone and how many pushes sim recorded.
func wantPushes(t *testing.T, sim *darajasim.Server, phone string, wantCount, wantRecorded int) {
	t.Helper()
	if got := sim.PushCount(phone); got != wantCount {
		t.Errorf("got PushCount(%s) %d, want %d", phone, got, wantCount)
	}
	if got := darajasim.RecordedPushes(sim); got != wantRecorded {
		t.Errorf("got %d recorded pushes, want %d", got, wantRecorded)
	}
}

func TestFaultTable(t *testing.T) {
	success := darajasim.ResultDescSuccess
	want := []darajasim.Outcome{
		{Phone: "254700000010", Fault: darajasim.FaultNoAnswer},
		{Phone: "254700000011", Fault: darajasim.FaultUnavailable},
		{Phone: "254700000012", Fault: darajasim.FaultServerError},
		{Phone: "254700000013", Fault: darajasim.FaultTooManyRequests},
		{Phone: "254700000014", Fault: darajasim.FaultMalformedAnswer, ResultDesc: success, Deliveries: 1},
		{Phone: "254700000015", Fault: darajasim.FaultSpikeArrest},
		{Phone: "254700000016", Fault: darajasim.FaultTokenExpired, ResultDesc: success, Deliveries: 1},
		{Phone: "254700000017", Fault: darajasim.FaultGatewaySpikeArrest},
	}
	var got []darajasim.Outcome
	for _, o := range darajasim.Outcomes() {
		if o.Fault != darajasim.FaultNone {
			got = append(got, o)
		}
		if o != darajasim.OutcomeFor(o.Phone) {
			t.Errorf("got OutcomeFor(%s) %+v, want %+v", o.Phone, darajasim.OutcomeFor(o.Phone), o)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fault outcomes (-want +got):\n%s", diff)
	}
}

func TestSTKPushFaults(t *testing.T) {
	contains := func(want string) func(*testing.T, int, []byte) {
		return func(t *testing.T, _ int, body []byte) {
			if !strings.Contains(string(body), want) {
				t.Errorf("got body %q, want it to contain %q", body, want)
			}
		}
	}
	tests := []struct {
		phone      string
		wantStatus int
		wantType   string
		check      func(t *testing.T, status int, body []byte)
	}{
		{darajasim.PhoneUnavailable, 503, "text/html", contains("<title>503 Service Unavailable</title>")},
		{darajasim.PhoneServerError, 500, "text/html", contains("<title>500 Internal Server Error</title>")},
		{darajasim.PhoneTooManyRequests, 429, "text/plain", contains("Too Many Requests")},
		{darajasim.PhoneGatewayLimited, 429, "application/json", func(t *testing.T, status int, body []byte) {
			if string(body) != darajasim.BodyGatewaySpikeArrest || !strings.Contains(string(body), `"errorcode":"policies.ratelimit.SpikeArrestViolation"`) {
				t.Errorf("got body %q, want the gateway's spike-arrest fault", body)
			}
		}},
		{darajasim.PhoneSpikeArrest, 500, "application/json", func(t *testing.T, status int, body []byte) {
			wantError(t, status, body, http.StatusInternalServerError, "500.003.02", "Error Occurred: Spike Arrest Violation")
			wantShape(t, body, "stk-push-error-spike-arrest.json")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.phone, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			sim, base := newSim(t, darajasim.Config{})
			tok := token(t, base)
			client := &http.Client{Timeout: 5 * time.Second}
			resp, body, err := send(client, base+pushPath, tok, pushRequest(tt.phone, rc.URL+"/cb", 1))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got HTTP %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := mediaType(t, resp); got != tt.wantType {
				t.Errorf("got Content-Type %s, want %s", got, tt.wantType)
			}
			tt.check(t, resp.StatusCode, body)
			wantPushes(t, sim, tt.phone, 1, 0)
			sim.Close()
			rc.none(t)
		})
	}
}

// TestSTKPushFaultsAfterChecks shows that every fault comes after the field
// and Password checks: a push refused by them is refused as usual, at once,
// and leaves the fault unfired.
func TestSTKPushFaultsAfterChecks(t *testing.T) {
	for _, o := range darajasim.Outcomes() {
		if o.Fault == darajasim.FaultNone {
			continue
		}
		t.Run(o.Phone, func(t *testing.T) {
			t.Parallel()
			sim, base := newSim(t, darajasim.Config{})
			tok := token(t, base)
			client := &http.Client{Timeout: 2 * time.Second} // FaultNoAnswer must not hold these
			valid := pushRequest(o.Phone, "https://example.com/cb", 1)
			for _, req := range []struct {
				body       map[string]any
				wantStatus int
				wantCode   string
				wantMsg    string
			}{
				{with(valid, "AccountReference", "ABCDEFGHIJKLM"), 400, "400.002.02", "Bad Request - Invalid AccountReference"},
				{with(valid, "Password", password("174379", "nope", valid["Timestamp"].(string))), 500, "500.001.1001", "Wrong credentials"},
			} {
				resp, body, err := send(client, base+pushPath, tok, req.body)
				if err != nil {
					t.Fatal(err)
				}
				wantError(t, resp.StatusCode, body, req.wantStatus, req.wantCode, req.wantMsg)
			}
			wantPushes(t, sim, o.Phone, 2, 0)
			// The token survived: FaultTokenExpired has not fired.
			status, body := call(t, http.MethodPost, base+queryPath, tok, queryRequest("ws_CO_unknown"))
			wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", "The transaction does not Exist")
		})
	}
}

func TestSTKPushNoAnswer(t *testing.T) {
	t.Run("client gives up", func(t *testing.T) {
		rc := newReceiver(t, nil)
		sim := darajasim.New(darajasim.Config{}) // HangFor: the 2-minute default
		ts := httptest.NewServer(sim)
		t.Cleanup(sim.Close)
		t.Cleanup(ts.Close)
		tok := token(t, ts.URL)

		client := &http.Client{Timeout: 200 * time.Millisecond}
		start := time.Now()
		resp, body, err := send(client, ts.URL+pushPath, tok, pushRequest(darajasim.PhoneNoAnswer, rc.URL+"/cb", 1))
		var uerr *url.Error
		if !errors.As(err, &uerr) || !uerr.Timeout() {
			t.Fatalf("got %v, %q, %v; want the client to time out", resp, body, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("client gave up after %v, want about 200ms", d)
		}
		wantPushes(t, sim, darajasim.PhoneNoAnswer, 1, 0)

		// The held request ends once its client is gone, without Close:
		// httptest.Server.Close waits for outstanding requests.
		closed := make(chan struct{})
		go func() {
			ts.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatal("the held request was still open 2s after its client gave up")
		}
		sim.Close()
		rc.none(t)
		wantPushes(t, sim, darajasim.PhoneNoAnswer, 1, 0)
	})

	t.Run("HangFor passes", func(t *testing.T) {
		rc := newReceiver(t, nil)
		sim, base := newSim(t, darajasim.Config{HangFor: 100 * time.Millisecond})
		tok := token(t, base)
		client := &http.Client{Timeout: 5 * time.Second}
		start := time.Now()
		resp, _, err := send(client, base+pushPath, tok, pushRequest(darajasim.PhoneNoAnswer, rc.URL+"/cb", 1))
		d := time.Since(start)
		var uerr *url.Error
		if err == nil || (errors.As(err, &uerr) && uerr.Timeout()) {
			t.Fatalf("got HTTP %v, %v; want the connection dropped without an answer", resp, err)
		}
		if d < 100*time.Millisecond || d > 2*time.Second {
			t.Errorf("connection dropped after %v, want after HangFor (100ms)", d)
		}
		wantPushes(t, sim, darajasim.PhoneNoAnswer, 1, 0)
		sim.Close()
		rc.none(t)
	})

	t.Run("behind a wrapper that cannot hijack", func(t *testing.T) {
		sim := darajasim.New(darajasim.Config{HangFor: 50 * time.Millisecond})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sim.ServeHTTP(struct{ http.ResponseWriter }{w}, r) // hides Hijacker and Unwrap
		}))
		t.Cleanup(sim.Close)
		t.Cleanup(ts.Close)
		client := &http.Client{Timeout: 5 * time.Second}
		resp, _, err := send(client, ts.URL+pushPath, token(t, ts.URL), pushRequest(darajasim.PhoneNoAnswer, "https://example.com/cb", 1))
		if err == nil {
			t.Fatalf("got HTTP %d, want the connection dropped (http.ErrAbortHandler)", resp.StatusCode)
		}
		wantPushes(t, sim, darajasim.PhoneNoAnswer, 1, 0)
	})

	t.Run("Close releases", func(t *testing.T) {
		rc := newReceiver(t, nil)
		sim, base := newSim(t, darajasim.Config{HangFor: time.Hour})
		tok := token(t, base)
		client := &http.Client{Timeout: 10 * time.Second}
		errc := make(chan error, 1)
		go func() {
			_, _, err := send(client, base+pushPath, tok, pushRequest(darajasim.PhoneNoAnswer, rc.URL+"/cb", 1))
			errc <- err
		}()
		for deadline := time.Now().Add(2 * time.Second); sim.PushCount(darajasim.PhoneNoAnswer) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the push did not reach the simulator within 2s")
			}
		}
		start := time.Now()
		sim.Close()
		select {
		case err := <-errc:
			if err == nil {
				t.Error("got an answer, want the connection dropped")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the held request was still open 2s after Close")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close took %v, want it not to wait for HangFor", d)
		}

		// After Close a push to the number is dropped at once.
		start = time.Now()
		if _, _, err := send(client, base+pushPath, tok, pushRequest(darajasim.PhoneNoAnswer, rc.URL+"/cb", 1)); err == nil {
			t.Error("got an answer after Close, want the connection dropped")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("push after Close dropped after %v, want at once", d)
		}
		wantPushes(t, sim, darajasim.PhoneNoAnswer, 2, 0)
		rc.none(t)
	})
}

var acceptedIDsRE = regexp.MustCompile(`^\{"MerchantRequestID":"([^"]+)","CheckoutRequestID":"([^"]+)",`)

func TestSTKPushMalformedAnswer(t *testing.T) {
	rc := newReceiver(t, nil)
	sim, base := newSim(t, darajasim.Config{})
	tok := token(t, base)
	resp, body, err := send(http.DefaultClient, base+pushPath, tok, pushRequest(darajasim.PhoneMalformedAnswer, rc.URL+"/cb", 250))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || mediaType(t, resp) != "application/json" {
		t.Errorf("got HTTP %d %s, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("got Content-Length %d for a %d-byte body, want them equal", resp.ContentLength, len(body))
	}
	var a pushResponse
	if err := json.Unmarshal(body, &a); err == nil {
		t.Fatalf("got body %s that decodes, want malformed JSON", body)
	}
	m := acceptedIDsRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("got body %s, want the acceptance JSON cut short after the IDs", body)
	}
	accepted := pushResponse{MerchantRequestID: string(m[1]), CheckoutRequestID: string(m[2])}

	// The push was accepted all the same: success callback, final query.
	wantCallback(t, rc.next(t), accepted, darajasim.OutcomeFor(darajasim.PhoneMalformedAnswer), 250)
	if q := waitFinal(t, base, tok, accepted.CheckoutRequestID); q.ResultCode != "0" || q.MerchantRequestID != accepted.MerchantRequestID {
		t.Errorf("got query %+v, want ResultCode 0 for %s", q, accepted.MerchantRequestID)
	}
	wantPushes(t, sim, darajasim.PhoneMalformedAnswer, 1, 1)
	sim.Close()
	rc.none(t)
}

func TestSTKPushTokenExpired(t *testing.T) {
	rc := newReceiver(t, nil)
	sim, base := newSim(t, darajasim.Config{})
	other := token(t, base)
	used := token(t, base)
	req := pushRequest(darajasim.PhoneTokenExpired, rc.URL+"/cb", 7)

	status, body := call(t, http.MethodPost, base+pushPath, used, req)
	wantError(t, status, body, http.StatusNotFound, "404.001.03", "Invalid Access Token")
	wantShape(t, body, "stk-push-error-invalid-access-token.json")
	wantPushes(t, sim, darajasim.PhoneTokenExpired, 1, 0)

	// The token used is revoked for every path; the retry with it never
	// reaches the push handler.
	status, body = call(t, http.MethodPost, base+queryPath, used, queryRequest("ws_CO_unknown"))
	wantError(t, status, body, http.StatusNotFound, "404.001.03", "Invalid Access Token")
	status, body = call(t, http.MethodPost, base+pushPath, used, req)
	wantError(t, status, body, http.StatusNotFound, "404.001.03", "Invalid Access Token")
	wantPushes(t, sim, darajasim.PhoneTokenExpired, 1, 0)

	// Other tokens are untouched, and a retry with a new token pays.
	push(t, base, other, pushRequest(darajasim.PhoneSuccess, rc.URL+"/other", 1))
	rc.next(t)
	fresh := token(t, base)
	accepted := push(t, base, fresh, req)
	wantCallback(t, rc.next(t), accepted, darajasim.OutcomeFor(darajasim.PhoneTokenExpired), 7)
	wantPushes(t, sim, darajasim.PhoneTokenExpired, 2, 2)

	// The fault fires once per Server.
	push(t, base, fresh, req)
	rc.next(t)
	wantPushes(t, sim, darajasim.PhoneTokenExpired, 3, 3)
	sim.Close()
	rc.none(t)
}

func TestRevokeTokens(t *testing.T) {
	sim, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour})
	before := []string{token(t, base), token(t, base)}
	sim.RevokeTokens()
	fresh := token(t, base)

	paths := []struct {
		path     string
		wantStat int
		wantCode string
		body     any
	}{
		{pushPath, 404, "404.001.03", pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", 1)},
		{queryPath, 404, "404.001.03", queryRequest("ws_CO_unknown")},
		{"/mpesa/c2b/v2/registerurl", 400, "400.003.01", registerRequest("600984", "Completed", "https://example.com/c", "")},
		{"/mpesa/c2b/v1/simulate", 400, "400.003.01", simulateRequest("600984", 1)},
	}
	for _, p := range paths {
		t.Run(p.path, func(t *testing.T) {
			for i, tok := range before {
				status, body := call(t, http.MethodPost, base+p.path, tok, p.body)
				if status != p.wantStat {
					t.Errorf("token %d: got HTTP %d, want %d", i, status, p.wantStat)
				}
				wantError(t, status, body, p.wantStat, p.wantCode, "Invalid Access Token")
			}
			status, body := call(t, http.MethodPost, base+p.path, fresh, p.body)
			var env envelope
			json.Unmarshal(body, &env)
			if env.ErrorCode == p.wantCode {
				t.Errorf("got HTTP %d %s with a token issued after RevokeTokens, want it accepted", status, body)
			}
		})
	}
}

func TestPushCount(t *testing.T) {
	sim, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
	tok := token(t, base)
	ok := pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", 1)
	numeric := with(pushRequest("254712345678", "https://example.com/cb", 1), "PhoneNumber", 254712345678)
	phones := []string{darajasim.PhoneSuccess, darajasim.PhoneSubscriberLocked, "254712345678", "+254708374149"}

	steps := []struct {
		name       string
		tok        string
		body       any
		wantStatus int
		counted    string // phone whose count goes up; "" for none
	}{
		{"accepted", tok, ok, 200, darajasim.PhoneSuccess},
		{"accepted again", tok, ok, 200, darajasim.PhoneSuccess},
		{"invalid field", tok, with(ok, "Amount", "0"), 400, darajasim.PhoneSuccess},
		{"invalid PhoneNumber", tok, with(ok, "PhoneNumber", "+254708374149"), 400, "+254708374149"},
		{"wrong password", tok, with(ok, "Password", password("174379", "nope", ok["Timestamp"].(string))), 500, darajasim.PhoneSuccess},
		{"subscriber locked", tok, pushRequest(darajasim.PhoneSubscriberLocked, "https://example.com/cb", 1), 500, darajasim.PhoneSubscriberLocked},
		{"numeric PhoneNumber", tok, numeric, 200, "254712345678"},
		{"no token", "", ok, 404, ""},
		{"revoked token", "c9SQxWWhmdVRlyh0zh8gZDTkubVF", ok, 404, ""},
		{"malformed payload", tok, "{", 400, ""},
	}
	want := make(map[string]int)
	for _, st := range steps {
		status, body := call(t, http.MethodPost, base+pushPath, st.tok, st.body)
		if status != st.wantStatus {
			t.Errorf("%s: got HTTP %d %s, want %d", st.name, status, body, st.wantStatus)
		}
		if st.counted != "" {
			want[st.counted]++
		}
		for _, p := range phones {
			if got := sim.PushCount(p); got != want[p] {
				t.Errorf("after %s: got PushCount(%s) %d, want %d", st.name, p, got, want[p])
			}
		}
	}
}

func TestSTKQueryPendingStyles(t *testing.T) {
	var recorded struct{ ResultCode, ResultDesc string }
	if err := json.Unmarshal(fixture(t, "stk-query-response-still-processing-4999.json"), &recorded); err != nil {
		t.Fatal(err)
	}
	beingProcessed := func(t *testing.T, status int, body []byte, a pushResponse) {
		env := wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", "The transaction is being processed")
		if env.RequestID != a.CheckoutRequestID {
			t.Errorf("got requestId %q, want the CheckoutRequestID %q", env.RequestID, a.CheckoutRequestID)
		}
	}
	tests := []struct {
		style       string
		wantPending func(t *testing.T, status int, body []byte, a pushResponse)
	}{
		{"", beingProcessed},
		{darajasim.QueryPendingError, beingProcessed},
		{darajasim.QueryPending4999, func(t *testing.T, status int, body []byte, a pushResponse) {
			var got queryResponse
			if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
				t.Fatalf("got HTTP %d %s, want 200 with a query answer", status, body)
			}
			want := queryResponse{
				ResponseCode:        "0",
				ResponseDescription: "The service request has been accepted successfully",
				MerchantRequestID:   a.MerchantRequestID,
				CheckoutRequestID:   a.CheckoutRequestID,
				ResultCode:          recorded.ResultCode,
				ResultDesc:          recorded.ResultDesc,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pending answer (-want +got):\n%s", diff)
			}
		}},
		{darajasim.QueryPendingEmpty, func(t *testing.T, status int, body []byte, a pushResponse) {
			env := wantError(t, status, body, http.StatusOK, "500.001.1001", "")
			if env.RequestID != a.CheckoutRequestID {
				t.Errorf("got requestId %q, want the CheckoutRequestID %q", env.RequestID, a.CheckoutRequestID)
			}
			if !strings.Contains(string(body), `"errorMessage":""`) {
				t.Errorf("got %s, want an explicit empty errorMessage", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run("style "+tt.style, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			_, base := newSim(t, darajasim.Config{QueryPendingStyle: tt.style, CallbackDelay: 500 * time.Millisecond})
			tok := token(t, base)
			a := push(t, base, tok, pushRequest(darajasim.PhoneCancelled, rc.URL+"/cb", 1))
			status, body := call(t, http.MethodPost, base+queryPath, tok, queryRequest(a.CheckoutRequestID))
			tt.wantPending(t, status, body, a)

			// Unknown IDs and settled pushes answer alike in every style.
			status, body = call(t, http.MethodPost, base+queryPath, tok, queryRequest("ws_CO_01012026000000000708374149"))
			wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", "The transaction does not Exist")
			rc.next(t) // settled
			status, body = call(t, http.MethodPost, base+queryPath, tok, queryRequest(a.CheckoutRequestID))
			var q queryResponse
			json.Unmarshal(body, &q)
			if status != http.StatusOK || q.ResultCode != "1032" {
				t.Errorf("got HTTP %d %s, want 200 with ResultCode \"1032\"", status, body)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		style   string
		wantErr bool
	}{
		{"", false},
		{"error", false},
		{"4999", false},
		{"empty", false},
		{"Error", true},
		{"pending", true},
	}
	for _, tt := range tests {
		t.Run(tt.style, func(t *testing.T) {
			err := darajasim.Config{QueryPendingStyle: tt.style}.Validate()
			if (err != nil) != tt.wantErr || (err != nil && !strings.Contains(err.Error(), "QueryPendingStyle")) {
				t.Errorf("got %v, want an error naming QueryPendingStyle: %v", err, tt.wantErr)
			}
			defer func() {
				if r := recover(); (r != nil) != tt.wantErr {
					t.Errorf("New: got panic %v, want a panic: %v", r, tt.wantErr)
				}
			}()
			darajasim.New(darajasim.Config{QueryPendingStyle: tt.style}).Close()
		})
	}
}
