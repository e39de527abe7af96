package daraja_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestObserveSeesEveryCall: Config.Observe hears of each HTTP call once,
// named by its API with underscores and by the outcome the log gives it.
func TestObserveSeesEveryCall(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		pushRoute:  serve(200, fixture(t, "stk-push-response-ok.json")),
		queryRoute: serveType(503, "text/html", []byte("<html>down</html>")),
	})
	var mu sync.Mutex
	var got []string
	c := newClient(t, f.URL, func(cfg *daraja.Config) {
		cfg.Observe = func(api, outcome string, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("Observe(%s, %s): got duration %v, want it not negative", api, outcome, d)
			}
			got = append(got, api+" "+outcome)
		}
	})
	if _, err := c.STKPush(context.Background(), pushRequest()); err != nil {
		t.Fatalf("STKPush: %v", err)
	}
	if _, err := c.STKQuery(context.Background(), "174379", "passkey", "ws_CO_1"); err == nil {
		t.Fatalf("STKQuery against a 503 page: got nil, want an error")
	}
	want := []string{"oauth ok", "stk_push ok", "stk_query bad_response"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("Observe calls: got %q, want %q", got, want)
	}
}
