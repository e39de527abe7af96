package gateway_test

import (
	"context"
	"io"
	"log/slog"
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

// pullFixture is a gateway on the real clock whose STK callbacks are
// never delivered (a sink answers them), talking to a simulator registered
// for Pull Transactions: every paid push is a transaction only Pull can
// tell Lipa about.
func pullFixture(t *testing.T, databaseURL string, simCfg darajasim.Config) (*gateway.Gateway, *lipa.App, *darajasim.Server) {
	t.Helper()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ResultCode":0,"ResultDesc":"Accepted"}`)
	}))
	t.Cleanup(sink.Close)
	simCfg.NoSubscriberLock = true
	sim := darajasim.New(simCfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	client, err := daraja.New(daraja.Config{BaseURL: srv.URL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(sqlstoretest.OpenURL(t, databaseURL), client, gateway.Config{
		ShortCode: darajasim.SandboxShortCode, Passkey: darajasim.SandboxPasskey, CallbackURL: sink.URL + "/api/stk/callback/",
		PullCallbackURL: sink.URL + "/api/pull/callback/", PromptLifetime: time.Nanosecond, Logger: slog.New(slog.DiscardHandler),
	})
	app, _, err := g.CreateApp(context.Background(), testOperator, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.RegisterPull(context.Background(), "254708374149"); err != nil {
		t.Fatal(err)
	}
	return g, app, sim
}

// waitLogged waits until the simulator's log has n transactions.
func waitLogged(t *testing.T, sim *darajasim.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(sim.Transactions()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("simulator log: got %d transactions, want %d", len(sim.Transactions()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPullAmbiguousGoesToReview: two PENDING pushes to one phone for one
// amount, both paid, both callbacks lost: Pull lists two transactions that
// could each be either push, so neither is settled and each receipt is one
// review item, also after a second pass.
func TestPullAmbiguousGoesToReview(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, app, sim := pullFixture(t, databaseURL, darajasim.Config{})
		ctx := context.Background()
		var ids []lipa.PaymentID
		for _, ref := range []string{"TWICE1", "TWICE2"} {
			res, err := g.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: "254712000001", Amount: "10", Reference: ref})
			if err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
			ids = append(ids, res.Payment.ID)
		}
		waitLogged(t, sim, 2)
		for range 2 {
			rep, err := g.PullWindow(ctx, time.Now().Add(-time.Hour), time.Now())
			if err != nil {
				t.Fatalf("PullWindow: %v", err)
			}
			if rep.Transactions != 2 || rep.Settled != 0 || rep.Created != 0 {
				t.Errorf("pull report: got %+v, want 2 transactions, none settled or created", rep)
			}
		}
		for _, id := range ids {
			p, err := g.Payment(ctx, app, id)
			if err != nil || p.Status != lipa.StatusPending {
				t.Errorf("payment %s: got %+v (%v), want PENDING", id, p, err)
			}
		}
		items, err := g.ReviewItems(ctx, gateway.ReviewFilter{State: gateway.ReviewOpen, Reason: gateway.ReviewPullAmbiguous})
		if err != nil || len(items) != 2 {
			t.Errorf("pull_ambiguous items: got %d (%v), want 2 (one per receipt)", len(items), err)
		}
	})
}

// TestPullWithoutSTK: when Daraja does not list M-Pesa Express payments in
// Pull (darajasim.Config.PullExcludesSTK, which Safaricom's documentation
// allows), a push whose callback was lost is not settled by the backfill:
// it stays PENDING for the reconciler and the review queue, and no C2B
// payment is made of anything.
func TestPullWithoutSTK(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, app, sim := pullFixture(t, databaseURL, darajasim.Config{PullExcludesSTK: true})
		ctx := context.Background()
		res, err := g.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: "254712000002", Amount: "10", Reference: "NOPULL1"})
		if err != nil {
			t.Fatal(err)
		}
		waitLogged(t, sim, 1)
		rep, err := g.PullWindow(ctx, time.Now().Add(-time.Hour), time.Now())
		if err != nil {
			t.Fatalf("PullWindow: %v", err)
		}
		if rep.Transactions != 0 || rep.Settled+rep.Created != 0 {
			t.Errorf("pull report: got %+v, want nothing listed", rep)
		}
		if p, _ := g.Payment(ctx, app, res.Payment.ID); p == nil || p.Status != lipa.StatusPending {
			t.Errorf("payment: got %+v, want PENDING", p)
		}
	})
}
