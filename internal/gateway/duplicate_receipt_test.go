package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

func reviewDupSetup(t *testing.T, databaseURL string, cfg gateway.Config) (*fixture, *lipa.App, *lipa.Payment, []byte, string) {
	f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: 10 * time.Millisecond}, cfg)
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
	if _, err := f.g.Claim(ctx, appB, gateway.ClaimRequest{Receipt: cb.MpesaReceiptNumber}); err != nil {
		t.Fatalf("claim of the intake copy: %v", err)
	}
	return f, appB, p, body, cb.MpesaReceiptNumber
}

// TestDuplicateReceiptGuardHoldsUnderRace: a callback flagged "duplicate
// receipt" while the reconciler is settling from a query must stop the
// query's SUCCESS (the check runs in the settling transaction), so the same
// M-Pesa money never becomes claimable by two apps.
func TestDuplicateReceiptGuardHoldsUnderRace(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		if strings.HasPrefix(databaseURL, "sqlite:") {
			t.Skip("needs concurrent transactions")
		}
		f, appB, p, body, receipt := reviewDupSetup(t, databaseURL, gateway.Config{ReconcileAfter: time.Minute})
		ctx := context.Background()
		db := evRawDB(t, databaseURL)
		conn, _ := db.Conn(ctx)
		defer conn.Close()
		// Stand-in for "the callback's transaction is running right now".
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", p.CheckoutRequestID); err != nil {
			t.Fatal(err)
		}
		waiters := func(n int) {
			end := time.Now().Add(5 * time.Second)
			for time.Now().Before(end) {
				var got int
				db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND NOT granted`).Scan(&got)
				if got == n {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Fatalf("want %d waiters", n)
		}
		cbDone := make(chan error, 1)
		go func() {
			cbDone <- f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/cb", SourceAddr: "1.2.3.4", Body: body})
		}()
		waiters(1)
		f.clock.Advance(2 * time.Minute)
		recDone := make(chan error, 1)
		go func() { _, err := f.g.Reconcile(ctx); recDone <- err }() // dup check passes now (nothing flagged yet)
		waiters(2)
		conn.ExecContext(ctx, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", p.CheckoutRequestID)
		if err := <-cbDone; err != nil {
			t.Fatal(err)
		}
		if err := <-recDone; err != nil {
			t.Fatal(err)
		}
		got := f.payment(t, p.ID)
		_, errA := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID, Amount: "100"})
		_ = appB
		if got.Status == lipa.StatusSuccess && errA == nil {
			t.Errorf("receipt %s was claimed by app B as the intake copy, and app A's STK payment became SUCCESS (%s) and was claimed too: the money was used twice", receipt, got.ResolvedBy)
		}
	})
}

// TestPaidPaymentNeverExpires: past PendingExpiry, a payment Daraja says was
// paid, whose receipt is recorded as another payment, is left PENDING for an
// operator, never settled FAILED "expired".
func TestPaidPaymentNeverExpires(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f, _, p, body, _ := reviewDupSetup(t, databaseURL, gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		if err := f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/cb", SourceAddr: "1.2.3.4", Body: body}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Hour)
		f.reconcile(t)
		if got := f.payment(t, p.ID); got.Status == lipa.StatusFailed {
			t.Errorf("paid STK payment (query ResultCode 0, receipt held by another app's claim): got FAILED %s, want left PENDING for an operator", got.FailureReason)
		}
	})
}
