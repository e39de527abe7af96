package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestPushRefusedUnsent: a push Daraja (or the gateway in front of it)
// refused before acting on it, for its rate or for maintenance, is
// Unavailable with its own code, FAILED with a failure_reason saying why,
// and was sent once; a push whose outcome is unknown (no answer in time)
// stays a Timeout and PENDING, so the app never reads it as "safe to push
// again". Daraja is the simulator over HTTP, its fault numbers choosing the
// answer, and for maintenance a fake Daraja answering 00.002.1001.
func TestPushRefusedUnsent(t *testing.T) {
	cases := []struct {
		name       string
		phone      string
		maintained bool // Daraja answers 00.002.1001 instead of the simulator
		kind       lipa.Kind
		code       string
		status     lipa.Status
		reason     lipa.FailureReason
		resultCode string
	}{
		{"HTTP 429 spike-arrest fault of the gateway", darajasim.PhoneGatewayLimited, false, lipa.Unavailable, "daraja_rate_limited", lipa.StatusFailed, lipa.ReasonRateLimited, "policies.ratelimit.SpikeArrestViolation"},
		{"HTTP 429 text from a proxy", darajasim.PhoneTooManyRequests, false, lipa.Unavailable, "daraja_rate_limited", lipa.StatusFailed, lipa.ReasonRateLimited, ""},
		{"HTTP 500 500.003.02 spike arrest", darajasim.PhoneSpikeArrest, false, lipa.Unavailable, "daraja_rate_limited", lipa.StatusFailed, lipa.ReasonRateLimited, "500.003.02"},
		{"00.002.1001 maintenance", "254708374149", true, lipa.Unavailable, "daraja_unavailable", lipa.StatusFailed, lipa.ReasonDarajaUnavailable, "00.002.1001"},
		{"HTTP 503 HTML page: outcome unknown", darajasim.PhoneUnavailable, false, lipa.Upstream, "daraja_error", lipa.StatusPending, "", ""},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		maintenance := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.Method == http.MethodGet {
				io.WriteString(w, `{"access_token":"maintenancetoken0123456789ab","expires_in":"3599"}`)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"requestId":"a1b2-c3d4-e5f6","errorCode":"00.002.1001","errorMessage":"Service is currently under maintenance. Please try again later"}`)
		}))
		t.Cleanup(maintenance.Close)
		client, err := daraja.New(daraja.Config{BaseURL: maintenance.URL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		g := gateway.New(sqlstoretest.OpenURL(t, databaseURL), client, gateway.Config{ShortCode: darajasim.SandboxShortCode,
			Passkey: darajasim.SandboxPasskey, CallbackURL: "https://pay.example.com/api/stk/callback/", Now: f.clock.Now})
		ctx := context.Background()
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				gw, app := f.g, f.app
				if c.maintained {
					gw = g
					if app, _, err = g.CreateApp(ctx, testOperator, "maintained"); err != nil {
						t.Fatal(err)
					}
				}
				before := f.sim.PushCount(c.phone)
				_, err := gw.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: c.phone, Amount: "10", Reference: "REFUSED" + string(rune('A'+i))})
				if lipa.ErrorKind(err) != c.kind || lipa.ErrorCode(err) != c.code {
					t.Fatalf("InitiateSTKPush: got %v (kind %s), want %s %s", err, lipa.ErrorKind(err), c.kind, c.code)
				}
				id := gateway.RecordedPayment(err)
				p, err := gw.Payment(ctx, app, id)
				if err != nil {
					t.Fatalf("Payment %q: %v", id, err)
				}
				if p.Status != c.status || p.FailureReason != c.reason || p.ResultCode != c.resultCode {
					t.Errorf("payment: got %s %q result code %q, want %s %q %q", p.Status, p.FailureReason, p.ResultCode, c.status, c.reason, c.resultCode)
				}
				if !c.maintained {
					if got := f.sim.PushCount(c.phone) - before; got != 1 {
						t.Errorf("push requests that reached Daraja: got %d, want 1 (never resent)", got)
					}
				}
			})
		}
	})
}
