package gateway_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// slowDarajaGateway returns a gateway whose Daraja is the simulator behind a
// wrapper that can delay or replace the STK push answer (pushHook returns
// true when it answered itself).
func slowDarajaGateway(t *testing.T, databaseURL string, pushHook func(w http.ResponseWriter, r *http.Request) bool) (*gateway.Gateway, *lipa.App) {
	t.Helper()
	sim := darajasim.New(darajasim.Config{CallbackDelay: time.Hour})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mpesa/stkpush/v1/processrequest" && pushHook != nil && pushHook(w, r) {
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { sim.Close(); srv.Close() })
	client, err := daraja.New(daraja.Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "s", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(sqlstoretest.OpenURL(t, databaseURL), client, gateway.Config{
		ShortCode: darajasim.SandboxShortCode, Passkey: darajasim.SandboxPasskey,
		CallbackURL: "http://127.0.0.1:1/api/mpesa/stk-callback/", Logger: slog.New(slog.DiscardHandler),
	})
	app, _, err := g.CreateApp(context.Background(), testOperator, "shop")
	if err != nil {
		t.Fatal(err)
	}
	return g, app
}

// TestHangUpKeepsDarajaAnswer: the app hanging up while Daraja answers must
// not stop Lipa saving the push's CheckoutRequestID.
func TestHangUpKeepsDarajaAnswer(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, app := slowDarajaGateway(t, databaseURL, func(w http.ResponseWriter, r *http.Request) bool {
			time.Sleep(300 * time.Millisecond) // Daraja is slow; then answers normally
			return false
		})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel) // the app's HTTP client gives up
		_, err := g.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: "254711000001", Amount: "10", Reference: "HANGUP1"})
		t.Logf("InitiateSTKPush error: %v", err)
		ps, _, err2 := g.Payments(context.Background(), app, gateway.ListQuery{})
		if err2 != nil || len(ps) != 1 {
			t.Fatalf("payments: %v %d", err2, len(ps))
		}
		p := ps[0]
		t.Logf("payment %s status=%s checkout_request_id=%q", p.ID, p.Status, p.CheckoutRequestID)
		if p.CheckoutRequestID == "" {
			t.Errorf("got no CheckoutRequestID, want the one Daraja answered with after the app hung up")
		}
	})
}

// TestHangUpStillRecordsRefusal: a push Daraja refuses after the app hung up
// is still recorded FAILED.
func TestHangUpStillRecordsRefusal(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		g, app := slowDarajaGateway(t, databaseURL, func(w http.ResponseWriter, r *http.Request) bool {
			time.Sleep(300 * time.Millisecond)
			return false
		})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := g.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: "254700000007", Amount: "10", Reference: "REFUSED1"})
		t.Logf("InitiateSTKPush error: %v", err)
		ps, _, _ := g.Payments(context.Background(), app, gateway.ListQuery{})
		p := ps[0]
		t.Logf("payment status=%s failure_reason=%q", p.Status, p.FailureReason)
		if p.Status != lipa.StatusFailed {
			t.Errorf("Daraja refused the push: got payment %s, want FAILED", p.Status)
		}
	})
}

// TestLostAnswerNeverOverwritesCallback (PostgreSQL, READ COMMITTED): while
// Daraja's unreadable answer is being recorded, a SUCCESS callback adopts
// the payment (same phone and amount) and commits; the payment must stay
// SUCCESS. A trigger holds the callback transaction open so that the
// interleaving is the same on every run.
func TestLostAnswerNeverOverwritesCallback(t *testing.T) {
	databaseURL := sqlstoretest.URL(t, sqlstore.Postgres)
	g, app := slowDarajaGateway(t, databaseURL, func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		time.Sleep(1 * time.Second)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		io.WriteString(w, "<html>oops</html>") // unreadable answer: the push may have gone through
		return true
	})
	raw, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`CREATE FUNCTION slow_apply() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER slow_apply BEFORE UPDATE ON inbound_messages FOR EACH ROW WHEN (NEW.outcome = 'applied') EXECUTE FUNCTION slow_apply()`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cbDone := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		now := time.Now().In(lipa.NairobiTime).Format("20060102150405")
		body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"m-1","CheckoutRequestID":"ws_CO_review1","ResultCode":0,"ResultDesc":"ok",
			"CallbackMetadata":{"Item":[{"Name":"Amount","Value":10},{"Name":"MpesaReceiptNumber","Value":"RVW0000001"},
			{"Name":"TransactionDate","Value":%s},{"Name":"PhoneNumber","Value":254711000002}]}}}}`, now)
		cbDone <- g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/cb", SourceAddr: "1.2.3.4", Body: []byte(body)})
	})
	_, err = g.InitiateSTKPush(context.Background(), app, gateway.STKPushRequest{PhoneNumber: "254711000002", Amount: "10", Reference: "RACE1"})
	t.Logf("InitiateSTKPush error: %v", err)
	if err := <-cbDone; err != nil {
		t.Fatalf("callback: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	ps, _, _ := g.Payments(context.Background(), app, gateway.ListQuery{})
	p := ps[0]
	var outcome string
	raw.QueryRow(`SELECT outcome FROM inbound_messages WHERE checkout_request_id = 'ws_CO_review1'`).Scan(&outcome)
	evs, _, _ := g.Events(context.Background(), app, "", "")
	var types []string
	for _, e := range evs {
		types = append(types, strings.SplitN(strings.SplitN(string(e), `"type":"`, 2)[1], `"`, 2)[0])
	}
	t.Logf("callback outcome=%s; events=%v; payment now status=%s receipt=%q checkout_request_id=%q", outcome, types, p.Status, p.MpesaReceiptNumber, p.CheckoutRequestID)
	if p.Status != lipa.StatusSuccess {
		t.Errorf("Safaricom's SUCCESS callback was applied (outcome %s, events %v) but the payment is now %s with receipt %q, want SUCCESS",
			outcome, types, p.Status, p.MpesaReceiptNumber)
	}
}

// TestC2BCopyOfSTKPaymentIsOnePayment: on a paybill with C2B URLs, an STK
// payment may also arrive as a C2B confirmation, even before its callback.
// One M-Pesa transaction stays one claimable payment: an unclaimed intake
// copy is merged into the STK payment; a copy another app already claimed
// keeps the STK payment from becoming SUCCESS by query (left for an
// operator), so the money is never claimed twice.
func TestC2BCopyOfSTKPaymentIsOnePayment(t *testing.T) {
	for _, copyClaimed := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy claimed first %v", copyClaimed), func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: 10 * time.Millisecond},
					gateway.Config{ReconcileAfter: time.Minute})
				ctx := context.Background()
				appB, _, err := f.g.CreateApp(ctx, testOperator, "other")
				if err != nil {
					t.Fatal(err)
				}
				p := f.push(t, "254711000003", "100", "INV42")
				body := f.waitCallback(t, p.CheckoutRequestID)
				cb, err := daraja.ParseSTKCallback(body)
				if err != nil {
					t.Fatal(err)
				}
				c2b := fmt.Sprintf(`{"TransactionType":"Pay Bill","TransID":%q,"TransTime":"20261129100001","TransAmount":"100.00","BusinessShortCode":"174379","BillRefNumber":"INV42","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"254711000003","FirstName":"A","MiddleName":"","LastName":""}`, cb.MpesaReceiptNumber)
				if err := f.g.ReceiveC2BConfirmation(ctx, gateway.Inbound{Path: "/c2b", SourceAddr: "1.2.3.4", Body: []byte(c2b)}); err != nil {
					t.Fatal(err)
				}
				if copyClaimed {
					if _, err := f.g.Claim(ctx, appB, gateway.ClaimRequest{Receipt: cb.MpesaReceiptNumber}); err != nil {
						t.Fatalf("claim of the intake copy: %v", err)
					}
				}
				if err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/cb", SourceAddr: "1.2.3.4", Body: body}); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(2 * time.Minute)
				f.reconcile(t)
				got := f.payment(t, p.ID)
				_, errA := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID, Amount: "100"})
				_, errB := f.g.Claim(ctx, appB, gateway.ClaimRequest{Receipt: cb.MpesaReceiptNumber, Amount: "100"})
				if errA == nil && errB == nil {
					t.Fatalf("one M-Pesa payment (receipt %s) claimed twice", cb.MpesaReceiptNumber)
				}
				if !copyClaimed && (got.Status != lipa.StatusSuccess || got.MpesaReceiptNumber != cb.MpesaReceiptNumber || errA != nil) {
					t.Errorf("unclaimed copy: got STK payment %s receipt %q (claim error %v), want SUCCESS with the receipt and claimable", got.Status, got.MpesaReceiptNumber, errA)
				}
				if copyClaimed && got.Status == lipa.StatusSuccess {
					t.Errorf("claimed copy: got STK payment SUCCESS (%s), want it left PENDING for an operator", got.ResolvedBy)
				}
			})
		})
	}
}
