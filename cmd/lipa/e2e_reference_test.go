package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestE2EReferencePrice: an order is never answered as paid for less than
// it costs. A 5,000 KES push under ORDER777 is cancelled; the customer then
// pays 1 KES to the paybill under ORDER777 (lipa simulate c2b). Verify by
// reference says not paid (amount_expected 5000, amount_paid 1) and claim by
// reference is 422 amount_mismatch; a full 5,000 paid to the paybill later is
// paid, from the intake, and claimed by reference without an amount.
func TestE2EReferencePrice(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		c := svc.appClient(t, svc.createApp(t, "shop"))
		ctx := context.Background()
		ref := client.VerifyQuery{Reference: "ORDER777"}

		push := pushOK(t, c, darajasim.PhoneCancelled, 5000, "ORDER777")
		waitPayment(t, c, push.PaymentID, client.StatusFailed)
		simulateC2B := func(amount string) {
			t.Helper()
			code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", amount, "--account", "ORDER777", "--phone", "254708374149", "--url", svc.URL)
			if code != 0 {
				t.Fatalf("lipa simulate c2b --amount %s: got exit code %d (stdout %q, stderr %q), want 0", amount, code, stdout, stderr)
			}
		}
		simulateC2B("1")

		v := verifyOK(t, c, ref)
		want := client.Verification{Paid: false, AmountExpected: new(client.Shillings(5000)), AmountPaid: client.Shillings(1),
			PaymentID: push.PaymentID, PaymentType: client.TypeSTK, FromIntake: false, Status: client.StatusFailed}
		if v.Paid != want.Paid || !sameAmount(v.AmountExpected, want.AmountExpected) || v.AmountPaid != want.AmountPaid ||
			v.PaymentID != want.PaymentID || v.PaymentType != want.PaymentType || v.FromIntake != want.FromIntake || v.Status != want.Status {
			t.Errorf("verify ORDER777 after 1 KES: got %+v, want %+v", v, want)
		}
		_, err := c.Claim(ctx, client.ClaimRequest{Reference: "ORDER777"})
		le := wantClientError(t, "claim ORDER777 after 1 KES", err, http.StatusUnprocessableEntity, "amount_mismatch")
		if le.Details["expected"] != float64(5000) || le.Details["actual"] != float64(1) {
			t.Errorf("claim ORDER777 after 1 KES: got details %v, want expected 5000, actual 1", le.Details)
		}

		simulateC2B("5000")
		v = verifyOK(t, c, ref)
		want = client.Verification{Paid: true, Amount: client.Shillings(5000), AmountExpected: new(client.Shillings(5000)), AmountPaid: client.Shillings(5001),
			PaymentType: client.TypeC2B, FromIntake: true, Status: client.StatusSuccess, Claimed: false}
		if v.Paid != want.Paid || v.Amount != want.Amount || !sameAmount(v.AmountExpected, want.AmountExpected) || v.AmountPaid != want.AmountPaid ||
			v.PaymentType != want.PaymentType || v.FromIntake != want.FromIntake || v.Status != want.Status || v.Claimed != want.Claimed {
			t.Errorf("verify ORDER777 after 5000 KES: got %+v, want %+v", v, want)
		}
		cl := claimOK(t, c, client.ClaimRequest{Reference: "ORDER777"})
		if cl.Amount != client.Shillings(5000) || cl.PaymentID != v.PaymentID {
			t.Errorf("claim ORDER777: got %+v, want payment %s of 5000", cl, v.PaymentID)
		}

		// A reference the app never pushed under: no price to compare with.
		code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", "100", "--account", "INV77", "--phone", "254708374149", "--url", svc.URL)
		if code != 0 {
			t.Fatalf("lipa simulate c2b INV77: got exit code %d (stdout %q, stderr %q), want 0", code, stdout, stderr)
		}
		v = verifyOK(t, c, client.VerifyQuery{Reference: "INV77"})
		if !v.Paid || v.Amount != client.Shillings(100) || v.AmountExpected != nil || v.AmountPaid != client.Shillings(100) ||
			v.PaymentType != client.TypeC2B || !v.FromIntake {
			t.Errorf("verify INV77: got %+v, want paid 100 from the intake (C2B), amount_expected null, amount_paid 100", v)
		}
	})
}

// sameAmount reports whether two optional amounts are both absent or equal.
func sameAmount(a, b *client.Amount) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
