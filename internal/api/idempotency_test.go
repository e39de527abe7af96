package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestReusedKeyNeverTakesTheFirstAnswer: while the first request with an
// Idempotency-Key waits for Daraja, another request reusing the key for
// other fields gets 422; that refusal is not kept as the key's answer, so
// a true repeat of the first request later gets the first request's 200.
// (The refusal names the first request's payment in details.payment_id;
// only the typed gateway.RecordedPayment says whose answer is whose.)
func TestReusedKeyNeverTakesTheFirstAnswer(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := darajasim.New(darajasim.Config{CallbackDelay: time.Hour})
		entered, release := make(chan struct{}), make(chan struct{})
		darajaSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/mpesa/stkpush/v1/processrequest" {
				close(entered)
				<-release
			}
			sim.ServeHTTP(w, r)
		}))
		t.Cleanup(func() { sim.Close(); darajaSrv.Close() })
		client, err := daraja.New(daraja.Config{BaseURL: darajaSrv.URL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		gw := gateway.New(sqlstoretest.OpenURL(t, databaseURL), client, gateway.Config{ShortCode: darajasim.SandboxShortCode,
			Passkey: darajasim.SandboxPasskey, CallbackURL: "https://pay.example.com/api/stk/callback/", Logger: slog.New(slog.DiscardHandler)})
		_, key, err := gw.CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "tester"}, "shop")
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api.New(gw, api.Config{Logger: slog.New(slog.DiscardHandler)}))
		t.Cleanup(srv.Close)
		push := func(amount int) (int, map[string]any) {
			b, _ := json.Marshal(map[string]any{"phone_number": "254711000901", "amount": amount, "reference": "IDEMREUSE"})
			req, _ := http.NewRequest("POST", srv.URL+"/api/stk-push/", bytes.NewReader(b))
			req.Header.Set("X-API-KEY", key.Reveal())
			req.Header.Set("Idempotency-Key", "order-77-attempt-1")
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var m map[string]any
			json.Unmarshal(raw, &m)
			return resp.StatusCode, m
		}
		first := make(chan int, 1)
		go func() { st, _ := push(10); first <- st }()
		<-entered
		if st, m := push(11); st != http.StatusUnprocessableEntity {
			t.Fatalf("the key reused for 11 KES: got %d %v, want 422 idempotency_key_reused", st, m)
		}
		close(release)
		if st := <-first; st != http.StatusOK {
			t.Fatalf("the first request: got %d, want 200", st)
		}
		if st, m := push(10); st != http.StatusOK || m["status"] != "PENDING" {
			t.Errorf("a repeat of the first request: got %d %v, want the first request's 200 replayed", st, m)
		}
	})
}
