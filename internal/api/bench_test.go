package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// benchService is Lipa's real HTTP handler on a loopback server, over a
// fresh database with one app and n SUCCESS payments (receipts R0000000,
// R0000001, …). Verify and claim never call Daraja, so no client is needed.
func benchService(b *testing.B, backend sqlstore.Backend, n int) (url, key string) {
	b.Helper()
	db := sqlstoretest.Open(b, backend)
	gw := gateway.New(db, nil, gateway.Config{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	app, k, err := gw.CreateApp(ctx, gateway.Actor{Kind: gateway.ActorCLI, Name: "bench"}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for start := 0; start < n; start += 500 {
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				p := &lipa.Payment{ID: lipa.PaymentID(fmt.Sprintf("pay_bench%07d", i)), AppID: app.ID, Type: lipa.TypeSTK,
					Status: lipa.StatusSuccess, PhoneNumber: "254708374149", Amount: lipa.Shillings(10), Currency: "KES",
					Reference: fmt.Sprintf("ORDER%07d", i), MpesaReceiptNumber: fmt.Sprintf("R%07d", i),
					CheckoutRequestID: fmt.Sprintf("ws_CO_bench%07d", i), CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertPayment(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.New(gw, api.Config{Logger: slog.New(slog.DiscardHandler), Callbacks: api.CallbackGuard{AllowTokenless: true}}))
	b.Cleanup(srv.Close)
	return srv.URL, k.Reveal()
}

// benchPending adds n PENDING STK payments of the app "bench" to the
// service's database, CheckoutRequestIDs ws_CO_pend0000000, …, for 10
// shillings from 254708374149.
func benchPending(b *testing.B, db *sqlstore.DB, app lipa.AppID, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	for start := 0; start < n; start += 500 {
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				p := &lipa.Payment{ID: lipa.PaymentID(fmt.Sprintf("pay_pend%07d", i)), AppID: app, Type: lipa.TypeSTK,
					Status: lipa.StatusPending, PhoneNumber: "254708374149", Amount: lipa.Shillings(10), Currency: "KES",
					Reference: fmt.Sprintf("PEND%07d", i), CheckoutRequestID: fmt.Sprintf("ws_CO_pend%07d", i),
					MerchantRequestID: "29115-34620561-1", CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertPayment(ctx, p); err != nil {
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

// BenchmarkSTKCallback measures POST /api/stk/callback/ over HTTP on each
// backend, from parallel clients: each a success callback for a different
// PENDING payment (stored raw, applied, its event written).
func BenchmarkSTKCallback(b *testing.B) {
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			db := sqlstoretest.Open(b, backend)
			gw := gateway.New(db, nil, gateway.Config{Logger: slog.New(slog.DiscardHandler)})
			app, _, err := gw.CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "bench"}, "bench")
			if err != nil {
				b.Fatal(err)
			}
			benchPending(b, db, app.ID, b.N)
			srv := httptest.NewServer(api.New(gw, api.Config{Logger: slog.New(slog.DiscardHandler), Callbacks: api.CallbackGuard{AllowTokenless: true}}))
			b.Cleanup(srv.Close)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var i atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := i.Add(1) - 1
					body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_pend%07d","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":10},{"Name":"MpesaReceiptNumber","Value":"S%09d"},{"Name":"TransactionDate","Value":20261207101500},{"Name":"PhoneNumber","Value":254708374149}]}}}}`, n, n)
					req, _ := http.NewRequest("POST", srv.URL+"/api/stk/callback/", bytes.NewBufferString(body))
					do(b, c, req, http.StatusOK)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
		})
	}
}

// BenchmarkC2BConfirmation measures POST /api/c2b/confirmation/ over HTTP
// on each backend, from parallel clients, each confirmation a new intake
// payment.
func BenchmarkC2BConfirmation(b *testing.B) {
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			url, _ := benchService(b, backend, 0)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var i atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := fmt.Sprintf(`{"TransactionType":"Pay Bill","TransID":"T%09d","TransTime":"20261207101500","TransAmount":"10.00","BusinessShortCode":"174379","BillRefNumber":"BENCH","MSISDN":"254708374149","FirstName":"Bench"}`, i.Add(1))
					req, _ := http.NewRequest("POST", url+"/api/c2b/confirmation/", bytes.NewBufferString(body))
					do(b, c, req, http.StatusOK)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "confirmations/s")
		})
	}
}

func do(b *testing.B, c *http.Client, req *http.Request, want ...int) {
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			return
		}
	}
	b.Errorf("got status %d, want one of %v", resp.StatusCode, want)
}

// BenchmarkVerify measures GET /api/payments/verify/?receipt=… over HTTP on
// each backend, from parallel clients; it reports verifies per second and
// allocations per request (the client's included). With -cpuprofile it is
// the quickest profile of the request path.
//
//	LIPA_TEST_POSTGRES_URL=… go test -run=^$ -bench=. ./internal/api
func BenchmarkVerify(b *testing.B) {
	const n = 2000
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			url, key := benchService(b, backend, n)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var i atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/payments/verify/?receipt=R%07d", url, i.Add(1)%n), nil)
					req.Header.Set("X-API-KEY", key)
					do(b, c, req, http.StatusOK)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
		})
	}
}

// BenchmarkClaim measures POST /api/payments/claim/ over HTTP on each
// backend, from parallel clients, each claim of a different payment; it
// reports claims per second.
func BenchmarkClaim(b *testing.B) {
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			url, key := benchService(b, backend, b.N)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var i atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := fmt.Sprintf(`{"receipt": "R%07d"}`, i.Add(1)-1)
					req, _ := http.NewRequest("POST", url+"/api/payments/claim/", bytes.NewBufferString(body))
					req.Header.Set("X-API-KEY", key)
					do(b, c, req, http.StatusOK)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}
