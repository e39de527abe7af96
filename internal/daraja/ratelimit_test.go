package daraja_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestRateLimited: which answers prove that Daraja, or the gateway in front
// of it, refused a request for its rate before acting on it (so an STK push
// sent no prompt), and which leave the outcome open.
func TestRateLimited(t *testing.T) {
	tests := []struct {
		name        string
		route       string // the route that answers; the other one works
		status      int
		contentType string
		body        []byte
		want        bool
		fault       string // BadResponseError.Fault, when the answer is one
	}{
		{"HTTP 429 spike-arrest fault of the gateway", pushRoute, 429, "application/json", fixture(t, "stk-push-error-spike-arrest-429-gateway.json"), true, "policies.ratelimit.SpikeArrestViolation"},
		{"HTTP 500 spike-arrest fault of an older gateway", pushRoute, 500, "application/json", fixture(t, "stk-push-error-spike-arrest-429-gateway.json"), true, "policies.ratelimit.SpikeArrestViolation"},
		{"HTTP 429 quota fault", pushRoute, 429, "application/json", []byte(`{"fault":{"faultstring":"Rate limit quota violation. Quota limit exceeded.","detail":{"errorcode":"policies.ratelimit.QuotaViolation"}}}`), true, "policies.ratelimit.QuotaViolation"},
		{"HTTP 429 text from a proxy", pushRoute, 429, "text/plain", []byte("429 Too Many Requests\n"), true, ""},
		{"HTTP 429 Daraja envelope with an unlisted code", pushRoute, 429, "application/json", []byte(`{"requestId":"x","errorCode":"429.001.01","errorMessage":"Too many requests"}`), true, ""},
		{"HTTP 500 500.003.02 spike arrest", pushRoute, 500, "application/json", fixture(t, "stk-push-error-spike-arrest.json"), true, ""},
		{"HTTP 429 on the token endpoint: the push is never sent", oauthRoute, 429, "application/json", fixture(t, "stk-push-error-spike-arrest-429-gateway.json"), true, "policies.ratelimit.SpikeArrestViolation"},
		{"HTTP 504 gateway timeout fault: outcome unknown", pushRoute, 504, "application/json", []byte(`{"fault":{"faultstring":"Gateway Timeout","detail":{"errorcode":"messaging.adaptors.http.flow.GatewayTimeout"}}}`), false, "messaging.adaptors.http.flow.GatewayTimeout"},
		{"HTTP 500 fault without a code", pushRoute, 500, "application/json", []byte(`{"fault":{"faultstring":"Gateway Timeout"}}`), false, ""},
		{"HTTP 503 HTML page", pushRoute, 503, "text/html", []byte("<html><title>503</title></html>"), false, ""},
		{"HTTP 500 subscriber locked", pushRoute, 500, "application/json", fixture(t, "stk-push-error-subscriber-locked.json"), false, ""},
		{"HTTP 400 invalid phone", pushRoute, 400, "application/json", fixture(t, "stk-push-error-invalid-phone.json"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes := map[string]http.HandlerFunc{tt.route: serveType(tt.status, tt.contentType, tt.body)}
			if tt.route != pushRoute {
				routes[pushRoute] = serve(200, fixture(t, "stk-push-response-ok.json"))
			}
			f := newFake(t, routes)
			_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
			if err == nil {
				t.Fatal("STKPush: got nil error, want one")
			}
			if got := daraja.RateLimited(err); got != tt.want {
				t.Errorf("RateLimited(%v): got %v, want %v", err, got, tt.want)
			}
			var bad *daraja.BadResponseError
			if errors.As(err, &bad) && bad.Fault != tt.fault {
				t.Errorf("BadResponseError.Fault: got %q, want %q", bad.Fault, tt.fault)
			}
			if tt.route == oauthRoute && (!errors.Is(err, daraja.ErrNoToken) || f.calls.Load() != 0) {
				t.Errorf("token refused: got %v with %d push requests, want ErrNoToken and none", err, f.calls.Load())
			}
		})
	}
	if daraja.RateLimited(errors.New("daraja stk push: connection reset")) {
		t.Error("RateLimited of a transport error: got true, want false")
	}
}
