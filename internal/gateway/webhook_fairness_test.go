package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestHangingReceiverDoesNotStarveOtherApps: an app whose receiver hangs,
// with a backlog of 16 due deliveries, holds at most its share of the
// delivery slots; another app's event still goes out at once.
func TestHangingReceiverDoesNotStarveOtherApps(t *testing.T) {
	f := newFixture(t, sqlstoretest.URL(t, sqlstore.SQLite), darajasim.Config{CallbackDelay: time.Millisecond}, gateway.Config{})
	ctx := context.Background()
	// Drain the body first: only then does the server notice the client
	// giving up (and end r.Context()).
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	defer hang.CloseClientConnections()
	var gotY atomic.Int64
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotY.CompareAndSwap(0, time.Now().UnixNano())
	}))
	defer fast.Close()
	if _, _, err := f.g.CreateApp(ctx, testOperator, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetWebhook(ctx, testOperator, "shop", hang.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetWebhook(ctx, testOperator, "other", fast.URL); err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		evPaid(t, f, fmt.Sprintf("2547110007%02d", i), fmt.Sprintf("SLOW%d", i))
	}
	// One C2B payment: c2b.received for both apps (the other app's first event).
	c2b := `{"TransactionType":"Pay Bill","TransID":"UKS0000001","TransTime":"20261129100001","TransAmount":"100.00","BusinessShortCode":"174379","BillRefNumber":"X","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"254711000003","FirstName":"A","MiddleName":"","LastName":""}`
	if err := f.g.ReceiveC2BConfirmation(ctx, gateway.Inbound{Path: "/c2b", SourceAddr: "1.2.3.4", Body: []byte(c2b)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 40*time.Second && gotY.Load() == 0 {
		f.g.DeliverWebhooks(ctx)
		time.Sleep(250 * time.Millisecond)
	}
	f.g.Wait()
	if gotY.Load() == 0 {
		t.Fatalf("other app's event not delivered within 40 s")
	}
	wait := time.Duration(gotY.Load() - start.UnixNano())
	t.Logf("other app's first event delivered after %s", wait.Round(100*time.Millisecond))
	if wait > 11*time.Second {
		t.Errorf("a slow receiver of one app held the other app's delivery for %s, want at most ~10 s", wait.Round(time.Second))
	}
}
