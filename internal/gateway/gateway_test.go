package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// fakeClock is the gateway's clock in these tests: it moves only when the
// test advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a Gateway on a fresh database, talking to a Daraja simulator
// of its own over HTTP, with a fake clock. STK callbacks from the simulator
// go to a recorder, not to the gateway, so tests decide what the gateway
// hears.
type fixture struct {
	g       *gateway.Gateway
	app     *lipa.App
	sim     *darajasim.Server
	clock   *fakeClock
	simURL  string       // the simulator's base URL
	queries atomic.Int64 // STK push queries that reached the simulator

	// beforeQuery, when set, runs before the simulator answers an STK
	// push query.
	beforeQuery atomic.Pointer[func()]

	mu        sync.Mutex
	callbacks map[string][]byte // delivered by the simulator, by CheckoutRequestID
}

// newFixture builds a fixture on databaseURL; cfg adjusts the gateway's
// configuration (ShortCode, Passkey, CallbackURL, Now and Logger are set).
func newFixture(t *testing.T, databaseURL string, simCfg darajasim.Config, cfg gateway.Config) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{t: time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)}, callbacks: map[string][]byte{}}
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cb, err := daraja.ParseSTKCallback(body)
		if err == nil {
			f.mu.Lock()
			f.callbacks[cb.CheckoutRequestID] = body
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ResultCode":0,"ResultDesc":"Accepted"}`)
	}))
	t.Cleanup(recorder.Close)
	f.sim = darajasim.New(simCfg)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mpesa/stkpushquery/v1/query" {
			f.queries.Add(1)
			if h := f.beforeQuery.Load(); h != nil {
				(*h)()
			}
		}
		f.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.sim.Close()
		srv.Close()
	})
	f.simURL = srv.URL
	client, err := daraja.New(daraja.Config{BaseURL: srv.URL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShortCode, cfg.Passkey = darajasim.SandboxShortCode, darajasim.SandboxPasskey
	cfg.CallbackURL = recorder.URL + "/api/mpesa/stk-callback/"
	cfg.Now = f.clock.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	f.g = gateway.New(sqlstoretest.OpenURL(t, databaseURL), client, cfg)
	f.app, _, err = f.g.CreateApp(context.Background(), testOperator, "shop")
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return f
}

// push initiates an STK push of amount shillings to phone, which Daraja
// must accept.
func (f *fixture) push(t *testing.T, phone, amount, ref string) *lipa.Payment {
	t.Helper()
	res, err := f.g.InitiateSTKPush(context.Background(), f.app, gateway.STKPushRequest{PhoneNumber: phone, Amount: amount, Reference: ref})
	if err != nil {
		t.Fatalf("InitiateSTKPush to %s: got error %v, want nil", phone, err)
	}
	if res.Payment == nil || res.Payment.CheckoutRequestID == "" {
		t.Fatalf("InitiateSTKPush to %s: got %+v, want a payment with a CheckoutRequestID", phone, res)
	}
	return res.Payment
}

// payment returns the payment as stored now.
func (f *fixture) payment(t *testing.T, id lipa.PaymentID) *lipa.Payment {
	t.Helper()
	p, err := f.g.Payment(context.Background(), f.app, id)
	if err != nil {
		t.Fatalf("Payment %s: %v", id, err)
	}
	return p
}

// reconcile runs one pass, which must not fail.
func (f *fixture) reconcile(t *testing.T) gateway.ReconcileReport {
	t.Helper()
	rep, err := f.g.Reconcile(context.Background())
	if err != nil {
		t.Fatalf("Reconcile: got error %v, want nil", err)
	}
	return rep
}

// waitCallback waits until the simulator has delivered the callback of
// checkoutRequestID (so it has settled the push) and returns it.
func (f *fixture) waitCallback(t *testing.T, checkoutRequestID string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		b := f.callbacks[checkoutRequestID]
		f.mu.Unlock()
		if b != nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulator: got no callback for %s, want one", checkoutRequestID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantReport(t *testing.T, what string, got, want gateway.ReconcileReport) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got report %+v, want %+v", what, got, want)
	}
}

// TestReconcileBackoff: while Daraja's STK push query says the push is
// still being processed (in each of its three shapes), the payment stays
// PENDING and is asked about again later each time (ReconcileAfter/2
// doubling, up to 20% jitter), never before; at PendingExpiry it becomes
// FAILED "expired".
func TestReconcileBackoff(t *testing.T) {
	for _, style := range []string{darajasim.QueryPendingError, darajasim.QueryPending4999, darajasim.QueryPendingEmpty} {
		t.Run(style, func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour, QueryPendingStyle: style},
					gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: 24 * time.Hour})
				p := f.push(t, "254711000001", "10", "BACKOFF1")

				wantReport(t, "pass before ReconcileAfter", f.reconcile(t), gateway.ReconcileReport{})
				f.clock.Advance(time.Minute)
				wantReport(t, "pass at ReconcileAfter", f.reconcile(t), gateway.ReconcileReport{Checked: 1, Deferred: 1})
				wantReport(t, "pass right after a deferral", f.reconcile(t), gateway.ReconcileReport{})
				checks := 1
				wait := 30 * time.Second // ReconcileAfter/2, doubled after each deferral
				for attempt := 2; attempt <= 6; attempt++ {
					f.clock.Advance(wait - time.Second)
					wantReport(t, "pass before the backoff of "+wait.String()+" has passed", f.reconcile(t), gateway.ReconcileReport{})
					f.clock.Advance(wait/5 + 2*time.Second)
					wantReport(t, "pass after the backoff of "+wait.String()+" and its jitter", f.reconcile(t), gateway.ReconcileReport{Checked: 1, Deferred: 1})
					checks++
					wait *= 2
				}
				if got := f.payment(t, p.ID); got.Status != lipa.StatusPending {
					t.Fatalf("payment after %d checks: got %s, want PENDING", checks, got.Status)
				}
				if got := f.queries.Load(); got != int64(checks) {
					t.Errorf("STK push queries sent: got %d, want %d (one per check)", got, checks)
				}

				f.clock.Advance(24 * time.Hour)
				if rep := f.reconcile(t); rep.Checked != 1 || rep.Expired != 1 || rep.Succeeded+rep.Failed != 0 {
					t.Fatalf("pass after PendingExpiry: got report %+v, want 1 checked, 1 expired", rep)
				}
				got := f.payment(t, p.ID)
				if got.Status != lipa.StatusFailed || got.FailureReason != lipa.ReasonExpired || got.ResolvedBy != lipa.ResolvedByExpiry {
					t.Errorf("payment after PendingExpiry: got %s %s resolved_by %q, want FAILED expired resolved_by expiry",
						got.Status, got.FailureReason, got.ResolvedBy)
				}
				wantReport(t, "pass after the payment expired", f.reconcile(t), gateway.ReconcileReport{})
			})
		})
	}
}

// TestReconcileBackoffCappedAtExpiry: a deferral never schedules the next
// check past the payment's expiry, so it expires on time.
func TestReconcileBackoffCappedAtExpiry(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour},
			gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: 3 * time.Minute})
		p := f.push(t, "254711000002", "10", "CAPPED1")
		for _, at := range []time.Duration{60 * time.Second, 37 * time.Second, 73 * time.Second} { // t0+60s, +97s, +170s
			f.clock.Advance(at)
			wantReport(t, "pass", f.reconcile(t), gateway.ReconcileReport{Checked: 1, Deferred: 1})
		}
		// The third deferral would wait 120 s or more; the expiry is at t0+180s.
		f.clock.Advance(9 * time.Second)
		wantReport(t, "pass at t0+179s", f.reconcile(t), gateway.ReconcileReport{})
		f.clock.Advance(time.Second)
		if rep := f.reconcile(t); rep.Checked != 1 || rep.Expired != 1 || rep.Succeeded+rep.Failed != 0 {
			t.Fatalf("pass at the expiry: got report %+v, want 1 checked, 1 expired", rep)
		}
		if got := f.payment(t, p.ID); got.Status != lipa.StatusFailed || got.FailureReason != lipa.ReasonExpired {
			t.Errorf("payment: got %s %s, want FAILED expired", got.Status, got.FailureReason)
		}
	})
}

// TestReconcileSettlesFromQuery: the query's final ResultCode settles the
// payment, resolved_by "query": "0" as SUCCESS without a receipt (a late
// callback brings it, and the payment stays claimable), others as FAILED
// with their reason.
func TestReconcileSettlesFromQuery(t *testing.T) {
	cases := []struct {
		phone  string
		status lipa.Status
		reason lipa.FailureReason
	}{
		{darajasim.PhoneNoCallback, lipa.StatusSuccess, ""},
		{darajasim.PhoneCancelled, lipa.StatusFailed, lipa.ReasonCancelledByUser},
		{darajasim.PhoneInsufficientFunds, lipa.StatusFailed, lipa.ReasonInsufficientFunds},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// The simulator settles at once; its callbacks go to the recorder,
		// so the gateway learns the result only from the query.
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{ReconcileAfter: time.Minute})
		for i, c := range cases {
			t.Run(c.phone, func(t *testing.T) {
				ref := "QUERY" + string(rune('A'+i))
				p := f.push(t, c.phone, "10", ref)
				var got *lipa.Payment
				for range 50 { // until the simulator has settled the push
					f.clock.Advance(13 * time.Minute) // past any backoff
					f.reconcile(t)
					if got = f.payment(t, p.ID); got.Status != lipa.StatusPending {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if got.Status != c.status || got.FailureReason != c.reason || got.ResolvedBy != lipa.ResolvedByQuery || got.MpesaReceiptNumber != "" {
					t.Fatalf("payment: got %s %q resolved_by %q receipt %q, want %s %q resolved_by query, no receipt",
						got.Status, got.FailureReason, got.ResolvedBy, got.MpesaReceiptNumber, c.status, c.reason)
				}
				if c.status != lipa.StatusSuccess {
					return
				}
				late := successCallback(p, "UKLATE0002")
				if err := f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/api/mpesa/stk-callback/", SourceAddr: "127.0.0.1:9", Body: late}); err != nil {
					t.Fatalf("late callback: got error %v, want nil", err)
				}
				if got := f.payment(t, p.ID); got.Status != lipa.StatusSuccess || got.MpesaReceiptNumber != "UKLATE0002" {
					t.Errorf("after the late callback: got %s receipt %q, want SUCCESS UKLATE0002", got.Status, got.MpesaReceiptNumber)
				}
				if _, err := f.g.Claim(context.Background(), f.app, gateway.ClaimRequest{Reference: ref, Amount: "10"}); err != nil {
					t.Errorf("claim by reference: got error %v, want nil", err)
				}
			})
		}
	})
}

// successCallback is Safaricom's success callback for the payment.
func successCallback(p *lipa.Payment, receipt string) []byte {
	whole, _ := p.Amount.WholeShillings()
	b, _ := json.Marshal(map[string]any{"Body": map[string]any{"stkCallback": map[string]any{
		"MerchantRequestID": p.MerchantRequestID, "CheckoutRequestID": p.CheckoutRequestID, "ResultCode": 0,
		"ResultDesc": darajasim.ResultDescSuccess,
		"CallbackMetadata": map[string]any{"Item": []map[string]any{
			{"Name": "Amount", "Value": whole}, {"Name": "MpesaReceiptNumber", "Value": receipt},
			{"Name": "TransactionDate", "Value": json.Number("20261129101500")},
			{"Name": "PhoneNumber", "Value": json.Number(p.PhoneNumber)},
		}},
	}}})
	return b
}

// TestReconcileNeverDowngrades: a SUCCESS callback that lands while the
// reconciler is asking Daraja about the payment wins; the query's FAILED
// answer that follows changes nothing.
func TestReconcileNeverDowngrades(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{ReconcileAfter: time.Minute})
		p := f.push(t, darajasim.PhoneCancelled, "10", "DOWNGRADE1")
		f.waitCallback(t, p.CheckoutRequestID) // the simulator's verdict is now 1032
		var once sync.Once
		hook := func() {
			once.Do(func() {
				err := f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/api/mpesa/stk-callback/",
					SourceAddr: "127.0.0.1:9", Body: successCallback(p, "UKWINS0001")})
				if err != nil {
					t.Errorf("callback during the query: got error %v, want nil", err)
				}
			})
		}
		f.beforeQuery.Store(&hook)
		f.clock.Advance(time.Minute)
		if rep := f.reconcile(t); rep.Checked != 1 {
			t.Fatalf("pass: got %+v, want 1 payment checked", rep)
		}
		got := f.payment(t, p.ID)
		if got.Status != lipa.StatusSuccess || got.ResolvedBy != lipa.ResolvedByCallback || got.MpesaReceiptNumber != "UKWINS0001" || got.FailureReason != "" {
			t.Errorf("payment: got %s %q resolved_by %q receipt %q, want SUCCESS by callback with receipt UKWINS0001",
				got.Status, got.FailureReason, got.ResolvedBy, got.MpesaReceiptNumber)
		}
		f.clock.Advance(time.Hour)
		wantReport(t, "later pass", f.reconcile(t), gateway.ReconcileReport{})
	})
}

// TestReconcileAsksBeforeExpiring: a payment first looked at after
// PendingExpiry (Lipa was down, or the reconciler could not run) whose push
// Daraja reports as paid is SUCCESS, not "expired": expiry is for payments
// no one can resolve, and a FAILED payment can never take the customer's
// money back.
func TestReconcileAsksBeforeExpiring(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		p := f.push(t, darajasim.PhoneNoCallback, "10", "LATEPASS1")
		f.waitQueryFinal(t, p.CheckoutRequestID)
		asked := f.queries.Load()
		f.clock.Advance(2 * time.Hour)
		f.reconcile(t)
		got := f.payment(t, p.ID)
		if got.Status != lipa.StatusSuccess || got.ResolvedBy != lipa.ResolvedByQuery {
			t.Errorf("payment Daraja reports paid, first checked after PendingExpiry: got %s %q resolved_by %q, want SUCCESS resolved_by query",
				got.Status, got.FailureReason, got.ResolvedBy)
		}
		if n := f.queries.Load() - asked; n == 0 {
			t.Errorf("STK push queries sent: got 0, want at least 1 before expiring the payment")
		}
	})
}

// waitQueryFinal waits until Daraja's STK push query reports a final
// result for checkoutRequestID, asking with a client of the test's own.
func (f *fixture) waitQueryFinal(t *testing.T, checkoutRequestID string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, err := daraja.New(daraja.Config{BaseURL: f.simURL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := c.STKQuery(context.Background(), darajasim.SandboxShortCode, darajasim.SandboxPasskey, checkoutRequestID)
		if err == nil && !q.Pending() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("STK push query of %s: got %v %v, want a final result", checkoutRequestID, q, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
