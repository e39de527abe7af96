package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// dlWait bounds every wait of these tests: a failure deadline, never an
// assertion on how long delivery takes.
const dlWait = 30 * time.Second

// dlGateway returns a gateway without Daraja on a fresh database at
// databaseURL, and the database, for tests of webhook delivery.
func dlGateway(t *testing.T, databaseURL string, cfg gateway.Config) (*gateway.Gateway, *sqlstore.DB) {
	t.Helper()
	db := sqlstoretest.OpenURL(t, databaseURL)
	cfg.ShortCode, cfg.Passkey, cfg.CallbackURL = "174379", "passkey", "http://127.0.0.1/cb/"
	cfg.Logger = slog.New(slog.DiscardHandler)
	return gateway.New(db, nil, cfg), db
}

// dlApp creates the app name with its webhook at url and returns its ID.
func dlApp(t *testing.T, g *gateway.Gateway, name, url string) lipa.AppID {
	t.Helper()
	app, _, err := g.CreateApp(context.Background(), testOperator, name)
	if err != nil {
		t.Fatalf("CreateApp %s: %v", name, err)
	}
	if _, err := g.SetWebhook(context.Background(), testOperator, name, url); err != nil {
		t.Fatalf("SetWebhook %s: %v", name, err)
	}
	return app.ID
}

// dlSeed writes n events for app with their deliveries due now, about
// payments prefix-0 … prefix-(n/perPayment - 1), perPayment events each in
// turn, and returns their IDs in the order written.
func dlSeed(t *testing.T, db *sqlstore.DB, app lipa.AppID, prefix string, n, perPayment int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
		for i := range n {
			id := fmt.Sprintf("evt_%s_%d", prefix, i)
			e := &sqlstore.Event{ID: id, AppID: app, Type: gateway.EventPaymentSucceeded,
				PaymentID: lipa.PaymentID(fmt.Sprintf("pay_%s-%d", prefix, i/perPayment)),
				Payload:   []byte(`{"id":"` + id + `"}`), CreatedAt: time.Now().UTC()}
			if err := tx.InsertEvent(ctx, e, true); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed events: %v", err)
	}
	return ids
}

// holdingReceiver holds every POST until released (or the client gives
// up), counting those held per path.
type holdingReceiver struct {
	*httptest.Server
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	held    map[string]int // path → POSTs held now
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	t.Helper()
	h := &holdingReceiver{release: make(chan struct{}), held: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.held[r.URL.Path]++
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			h.held[r.URL.Path]--
			h.mu.Unlock()
		}()
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		h.unblock()
		h.CloseClientConnections()
		h.Close()
	})
	return h
}

func (h *holdingReceiver) unblock() { h.once.Do(func() { close(h.release) }) }

// counts returns the POSTs held now, per path.
func (h *holdingReceiver) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.held {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// waitHeld waits until the receiver holds total POSTs.
func (h *holdingReceiver) waitHeld(t *testing.T, total int) map[string]int {
	t.Helper()
	end := time.Now().Add(dlWait)
	for {
		c := h.counts()
		n := 0
		for _, v := range c {
			n += v
		}
		if n == total {
			return c
		}
		if n > total || time.Now().After(end) {
			t.Fatalf("receiver: got %d POSTs held at once (%v), want %d", n, c, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDeliverySlotsSharedBetweenApps: with LIPA_WEBHOOK_CONCURRENCY 8, a
// process has at most 8 attempts under way, one app at most 2 of them (a
// quarter, at least 2), and apps with deliveries due share the slots; the
// slots are taken only while attempts are under way.
func TestDeliverySlotsSharedBetweenApps(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, db := dlGateway(t, databaseURL, gateway.Config{WebhookConcurrency: 8})
		rc := newHoldingReceiver(t)
		ctx := context.Background()
		apps := []string{"a1", "a2", "a3", "a4", "a5"}
		for _, name := range apps {
			dlSeed(t, db, dlApp(t, g, name, rc.URL+"/"+name), name, 6, 1)
		}
		for range 5 {
			if _, err := g.DeliverWebhooks(ctx); err != nil {
				t.Fatalf("DeliverWebhooks: %v", err)
			}
		}
		held := rc.waitHeld(t, 8)
		for app, n := range held {
			if n > 2 {
				t.Errorf("app %s: got %d attempts under way, want at most 2 of 8 slots", app, n)
			}
		}
		if n, err := g.DeliverWebhooks(ctx); n != 0 || err != nil {
			t.Errorf("DeliverWebhooks with every slot taken: got %d, %v; want 0, nil", n, err)
		}
		rc.unblock()
		g.Wait()
		if n, err := g.DeliverWebhooks(ctx); n != 8 || err != nil {
			t.Errorf("DeliverWebhooks once the slots are free again: got %d, %v; want 8 started", n, err)
		}
		g.Wait()
	})
}

// TestDeliveryBacklogOfOneAppDoesNotStarveAnother: an app whose receiver
// hangs has 600 deliveries due, more than any one pass looks at; another
// app's event, written after all of them, still goes out while the first
// app's attempts hang.
func TestDeliveryBacklogOfOneAppDoesNotStarveAnother(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, db := dlGateway(t, databaseURL, gateway.Config{})
		hang := newHoldingReceiver(t)
		got := make(chan string, 1)
		fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case got <- r.Header.Get("Lipa-Event-Id"):
			default:
			}
		}))
		defer fast.Close()
		dlSeed(t, db, dlApp(t, g, "slow", hang.URL), "slow", 600, 1)
		other := dlSeed(t, db, dlApp(t, g, "other", fast.URL), "other", 1, 1)[0]
		ctx, cancel := context.WithCancel(context.Background())
		defer func() {
			cancel()
			g.Wait()
		}()
		end := time.Now().Add(dlWait)
		for {
			if _, err := g.DeliverWebhooks(ctx); err != nil {
				t.Fatalf("DeliverWebhooks: %v", err)
			}
			select {
			case id := <-got:
				if id != other {
					t.Fatalf("other app's receiver: got event %s, want %s", id, other)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(end) {
				t.Fatalf("other app's event: not delivered while the slow app's backlog of 600 hangs, want it delivered")
			}
		}
	})
}

// TestDeliveryOrderPerPaymentAndOnce: with many attempts under way at once
// (Run's delivery loop), each payment's events still reach the receiver in
// the order they were written, and each event is answered 2xx exactly once.
func TestDeliveryOrderPerPaymentAndOnce(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, db := dlGateway(t, databaseURL, gateway.Config{WebhookConcurrency: 16})
		var mu sync.Mutex
		var order []string
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			order = append(order, r.Header.Get("Lipa-Event-Id"))
			mu.Unlock()
		}))
		defer rc.Close()
		ids := dlSeed(t, db, dlApp(t, g, "shop", rc.URL), "ord", 60, 4)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		// Until every delivery is recorded: ending Run earlier could cut an
		// attempt after the receiver had it, and it would be sent again.
		end := time.Now().Add(dlWait)
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			pending, err := g.WebhookBacklog(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n >= len(ids) && pending == 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("receiver: got %d of %d events with %d deliveries pending, want all delivered", n, len(ids), pending)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		got := slices.Clone(order)
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		want := slices.Clone(ids)
		slices.Sort(want)
		if !slices.Equal(sorted, want) {
			t.Fatalf("receiver: got events %v, want each of %v once", got, ids)
		}
		pos := map[string]int{}
		for i, id := range got {
			pos[id] = i
		}
		for i := 0; i+1 < len(ids); i++ {
			if i/4 == (i+1)/4 && pos[ids[i]] > pos[ids[i+1]] {
				t.Errorf("payment %d: got %s after %s, want the order written", i/4, ids[i], ids[i+1])
			}
		}
	})
}

// TestRunWaitsForItsWork: Run returns only once the attempts it started
// have stopped; an attempt cut short by the end of Run's context is
// recorded (no answer) and stays due for a retry. Run refuses to run twice
// at once.
func TestRunWaitsForItsWork(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, db := dlGateway(t, databaseURL, gateway.Config{WebhookBackoff: 100 * time.Millisecond})
		hang := newHoldingReceiver(t)
		id := dlSeed(t, db, dlApp(t, g, "shop", hang.URL), "run", 1, 1)[0]
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		hang.waitHeld(t, 1)
		if err := g.Run(context.Background()); err == nil {
			t.Errorf("a second Run while one runs: got nil, want an error")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
		case <-time.After(dlWait):
			t.Fatalf("Run: still running after its context ended, want it to return")
		}
		ds, err := g.WebhookDeliveries(context.Background(), "shop", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].ID != id || ds[0].State != "pending" || len(ds[0].History) != 1 ||
			ds[0].History[0].StatusCode != 0 || !strings.Contains(ds[0].History[0].Error, "context canceled") {
			t.Fatalf("after Run returned: got %+v, want the event pending with its one cut-short attempt recorded", ds)
		}
		// Run again (a restart): the cut-short delivery was recorded, so it
		// is due again and goes out.
		hang.unblock()
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		go g.Run(ctx)
		end := time.Now().Add(dlWait)
		for {
			ds, err := g.WebhookDeliveries(context.Background(), "shop", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 1 && ds[0].State == "delivered" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("after a second Run: got %+v, want the event delivered", ds)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
