package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// BenchmarkWebhookBurst measures webhook delivery as `lipa serve` does it
// (gateway.Run): each iteration writes a burst of events, one per payment,
// for one app whose receiver answers every POST after 3 ms, then times Run
// from its start until the receiver has had every event and none is
// pending. It reports deliveries/s and the burst's drain time.
// LIPA_BENCH_WEBHOOK_EVENTS sets the burst (default 10000),
// LIPA_BENCH_WEBHOOK_CONCURRENCY the delivery slots (default 64). Run it with
// -benchtime=1x; on PostgreSQL it needs LIPA_TEST_POSTGRES_URL.
func BenchmarkWebhookBurst(b *testing.B) {
	events := benchEnvInt(b, "LIPA_BENCH_WEBHOOK_EVENTS", 10000)
	slots := benchEnvInt(b, "LIPA_BENCH_WEBHOOK_CONCURRENCY", gateway.DefaultWebhookConcurrency)
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			db := sqlstoretest.Open(b, backend)
			var got atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				time.Sleep(3 * time.Millisecond)
				got.Add(1)
			}))
			defer recv.Close()
			g := gateway.New(db, nil, gateway.Config{ShortCode: "174379", Passkey: "x", CallbackURL: "http://127.0.0.1/",
				WebhookConcurrency: slots, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			ctx := context.Background()
			app, _, err := g.CreateApp(ctx, testOperator, "shop")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.SetWebhook(ctx, testOperator, "shop", recv.URL); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for i := range b.N {
				b.StopTimer()
				benchSeedEvents(b, db, app.ID, fmt.Sprintf("b%d", i), events)
				want := got.Load() + int64(events)
				rctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				b.StartTimer()
				start := time.Now()
				go func() {
					defer close(done)
					g.Run(rctx)
				}()
				for got.Load() < want {
					time.Sleep(time.Millisecond)
				}
				for {
					n, err := g.WebhookBacklog(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				stop()
				<-done
				b.StartTimer()
			}
			b.ReportMetric(float64(events)*float64(b.N)/total.Seconds(), "deliveries/s")
			b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
		})
	}
}

// benchSeedEvents writes n events for app, each about a payment of its
// own, with their webhook deliveries due now.
func benchSeedEvents(b *testing.B, db *sqlstore.DB, app lipa.AppID, prefix string, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	payload := []byte(`{"id":"evt_x","type":"payment.succeeded","created_at":"2026-11-29T07:00:00Z","payment":{"id":"pay_x","status":"SUCCESS","amount":"10.00","phone_number":"254708374149","reference":"ORDER-1","mpesa_receipt_number":"UKS0000000","payment_type":"STK","claimed":false}}`)
	for i := 0; i < n; {
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			for end := min(n, i+500); i < end; i++ {
				e := &sqlstore.Event{ID: fmt.Sprintf("evt_%s_%d", prefix, i), AppID: app, Type: gateway.EventPaymentSucceeded,
					PaymentID: lipa.PaymentID(fmt.Sprintf("pay_%s_%d", prefix, i)), Payload: payload, CreatedAt: now}
				if err := tx.InsertEvent(ctx, e, true); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s %q is not a positive whole number", name, v)
	}
	return n
}
