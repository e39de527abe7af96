package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestOrphanPushSettledByPull: `lipa serve` is killed with SIGKILL after
// Daraja accepted an STK push and before Lipa saved the answer, so the
// payment is PENDING without a CheckoutRequestID and its callback finds no
// Lipa. After a restart, `lipa pull run` finds the payment in Daraja's
// Pull Transactions by phone and amount and settles it SUCCESS with its
// receipt (resolved_by pull), with one payment.succeeded event.
func TestOrphanPushSettledByPull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lipa serve")
	}
	bin := buildLipa(t)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := darajasim.New(darajasim.Config{CallbackDelay: 200 * time.Millisecond})
		t.Cleanup(sim.Close)
		phone := freshPhone()
		var lipa atomic.Pointer[serveProc]
		daraja := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if r.URL.Path != "/mpesa/stkpush/v1/processrequest" || !bytes.Contains(body, []byte(phone)) {
				sim.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, r) // Daraja accepts the push …
			lipa.Load().kill()    // … and Lipa dies before it hears so.
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		}))
		t.Cleanup(daraja.Close)

		dir := t.TempDir()
		env := map[string]string{
			"DATABASE_URL":                    databaseURL,
			"MPESA_ENVIRONMENT":               "simulator",
			"MPESA_BASE_URL":                  daraja.URL,
			"MPESA_ALLOW_TOKENLESS_CALLBACKS": "true",
			"LIPA_RECONCILE_AFTER":            "10m",
			"LIPA_PULL_INTERVAL":              "0",
			"LOG_FILE":                        filepath.Join(dir, "lipa.log"),
		}
		code, stdout, stderr := runCLI(t, env, "apps", "create", "shop", "--json")
		if code != 0 {
			t.Fatalf("lipa apps create: got exit code %d (%q), want 0", code, stderr)
		}
		var created struct {
			APIKey string `json:"api_key"`
		}
		json.Unmarshal([]byte(stdout), &created)
		key := created.APIKey

		first := startServeProc(t, bin, dir, env)
		lipa.Store(first)
		if res, err := processClient(t, first.url, key, 10*time.Second).Push(context.Background(),
			client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(42), Reference: "ORPHAN1"}); err == nil {
			t.Fatalf("push to a Lipa killed mid-way: got %+v, want no answer", res)
		}
		first.wait()
		deadline := time.Now().Add(crashWait)
		receipt := ""
		for receipt == "" {
			for _, tx := range sim.Transactions() {
				if tx.MSISDN == phone {
					receipt = tx.Receipt
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the simulator never completed the push")
			}
			time.Sleep(20 * time.Millisecond)
		}

		second := startServeProc(t, bin, dir, env)
		lipa.Store(second)
		c := processClient(t, second.url, key, 10*time.Second)
		list := func() []client.Payment {
			t.Helper()
			page, err := c.PaymentsPage(context.Background(), client.ListQuery{Reference: "ORPHAN1"})
			if err != nil {
				t.Fatalf("list payments: %v", err)
			}
			return page.Payments
		}
		ps := list()
		if len(ps) != 1 || ps[0].Status != client.StatusPending || ps[0].CheckoutRequestID != "" {
			t.Fatalf("after the restart: got %v, want one PENDING payment without a CheckoutRequestID", ps)
		}
		if code, out, stderr := runCLI(t, env, "pull", "register"); code != 0 || !strings.Contains(out, "registered for Pull Transactions") {
			t.Fatalf("lipa pull register: got %d %q %q, want 0", code, out, stderr)
		}
		if code, out, stderr := runCLI(t, env, "pull", "run", "--since", "1h"); code != 0 {
			t.Fatalf("lipa pull run: got %d %q %q, want 0", code, out, stderr)
		}
		ps = list()
		if len(ps) != 1 || ps[0].Status != client.StatusSuccess || ps[0].ResolvedBy != "pull" || ps[0].MpesaReceiptNumber != receipt {
			t.Fatalf("after the pull: got %v, want the one payment SUCCESS, resolved_by pull, receipt %s", ps, receipt)
		}
		page, err := c.EventsPage(context.Background(), client.EventsQuery{Limit: 500})
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		n := 0
		for _, e := range page.Events {
			if e.Type == "payment.succeeded" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("payment.succeeded events: got %d, want 1", n)
		}
	})
}
