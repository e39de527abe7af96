package daraja_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestHealth: the client reports its last token fetch (and when Daraja
// said the token expires), its last successful call and its last failed
// one with Daraja's words; a token refused and renewed is not a failure.
func TestHealth(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	var answer http.HandlerFunc = serve(http.StatusOK, fixture(t, "stk-push-response-ok.json"))
	f := newFake(t, map[string]http.HandlerFunc{pushRoute: func(w http.ResponseWriter, r *http.Request) { answer(w, r) }})
	c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Now = clk.Now })
	if h := c.Health(); h != (daraja.Health{}) {
		t.Fatalf("Health before any call: got %+v, want zero", h)
	}
	if _, err := c.STKPush(context.Background(), pushRequest()); err != nil {
		t.Fatal(err)
	}
	h := c.Health()
	if !h.TokenFetchedAt.Equal(clk.Now()) || !h.TokenExpiresAt.Equal(clk.Now().Add(3599*time.Second)) {
		t.Errorf("token: got fetched %v expires %v, want now and now+3599s (oauth-token.json)", h.TokenFetchedAt, h.TokenExpiresAt)
	}
	if !h.LastOKAt.Equal(clk.Now()) || !h.LastErrorAt.IsZero() || h.LastError != "" {
		t.Errorf("after a good push: got %+v, want last OK now and no error", h)
	}

	clk.Advance(time.Minute)
	answer = serve(http.StatusInternalServerError, fixture(t, "stk-push-error-subscriber-locked.json"))
	if _, err := c.STKPush(context.Background(), pushRequest()); err == nil {
		t.Fatal("STKPush: got nil, want Daraja's refusal")
	}
	h = c.Health()
	if !h.LastErrorAt.Equal(clk.Now()) || h.LastErrorOp != "stk push" || !strings.Contains(h.LastError, "500.001.1001") ||
		!h.LastOKAt.Equal(clk.Now().Add(-time.Minute)) {
		t.Errorf("after a refused push: got %+v, want the error now, with Daraja's code, and the last OK a minute ago", h)
	}
	if strings.Contains(h.LastError, fixtureToken) || strings.Contains(h.LastError, testSecret) {
		t.Errorf("last error %q holds a credential", h.LastError)
	}
}
