package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// refSeq numbers the phones and TransIDs the reference price tests make up.
var refSeq atomic.Int64

// refSTK pushes amount shillings under ref and settles the push as outcome
// says: "paid" (the simulator's success callback), "failed" (cancelled by
// the user), "pending" (no callback heard), "claimed" (paid, then claimed by
// payment_id). The clock moves on a minute after, so payments made later are
// newer.
func (f *fixture) refSTK(t *testing.T, outcome, amount, ref string) *lipa.Payment {
	t.Helper()
	phone := fmt.Sprintf("2547110%05d", refSeq.Add(1))
	if outcome == "failed" {
		phone = darajasim.PhoneCancelled
	}
	p := f.push(t, phone, amount, ref)
	defer f.clock.Advance(time.Minute)
	if outcome == "pending" {
		return p
	}
	if err := evCallback(t, f, p); err != nil {
		t.Fatalf("ReceiveSTKCallback: got error %v, want nil", err)
	}
	if outcome == "claimed" {
		if _, err := f.g.Claim(context.Background(), f.app, gateway.ClaimRequest{PaymentID: p.ID}); err != nil {
			t.Fatalf("Claim %s by payment_id: got error %v, want nil", p.ID, err)
		}
	}
	return f.payment(t, p.ID)
}

// refC2B hands the gateway a paybill confirmation (testdata) of amount
// shillings ("1.00") under ref, and returns the intake payment it made.
func (f *fixture) refC2B(t *testing.T, amount, ref string) *lipa.Payment {
	t.Helper()
	raw, err := os.ReadFile("testdata/c2b-confirmation-paybill.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	transID := fmt.Sprintf("UKREF%05d", refSeq.Add(1))
	doc["TransID"], doc["TransAmount"], doc["BillRefNumber"] = transID, amount, ref
	body, _ := json.Marshal(doc)
	in := gateway.Inbound{Path: "/api/c2b/confirmation/", SourceAddr: "196.201.214.200:443", Body: body}
	if err := f.g.ReceiveC2BConfirmation(context.Background(), in); err != nil {
		t.Fatalf("ReceiveC2BConfirmation %s: got error %v, want nil", transID, err)
	}
	defer f.clock.Advance(time.Minute)
	v, err := f.g.Verify(context.Background(), f.app, gateway.VerifyQuery{Receipt: transID})
	if err != nil {
		t.Fatalf("Verify receipt %s: got error %v, want the intake payment", transID, err)
	}
	return v.Payment
}

// wantVerification checks the fields of Verify's answer that the price rule
// decides.
func wantVerification(t *testing.T, what string, v *gateway.Verification, paid bool, expected, amountPaid int64, subject *lipa.Payment) {
	t.Helper()
	if v.Paid != paid || v.AmountExpected != lipa.Shillings(expected) || v.AmountPaid != lipa.Shillings(amountPaid) {
		t.Errorf("%s: got paid %v, amount_expected %s, amount_paid %s; want %v, %d, %d",
			what, v.Paid, v.AmountExpected, v.AmountPaid, paid, expected, amountPaid)
	}
	if v.ID != subject.ID || v.Type != subject.Type || v.FromIntake != (subject.Type == lipa.TypeC2B) {
		t.Errorf("%s: got payment %s (%s, from_intake %v, %s shillings, %s), want %s (%s, %s shillings, %s)",
			what, v.ID, v.Type, v.FromIntake, v.Amount, v.Status, subject.ID, subject.Type, subject.Amount, subject.Status)
	}
}

// wantRefused checks that err is the *lipa.Error with that code, about
// payment id.
func wantRefused(t *testing.T, what string, err error, code string, id lipa.PaymentID) *lipa.Error {
	t.Helper()
	var le *lipa.Error
	if !errors.As(err, &le) || le.Code != code || le.Details["payment_id"] != string(id) {
		t.Fatalf("%s: got error %v (details %v), want %s about payment %s", what, err, detailsOf(le), code, id)
	}
	return le
}

func detailsOf(le *lipa.Error) map[string]any {
	if le == nil {
		return nil
	}
	return le.Details
}

// TestReferencePriceReproduction replays the case behind the rule: a 5,000
// KES push under ORDER777 is cancelled, the customer then pays 1 KES to the
// paybill under ORDER777. Verify and claim by reference must not take the 1
// KES as payment of the order; a full 5,000 paid to the paybill later is.
func TestReferencePriceReproduction(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{PhonePushesPerHour: 100})
		order := f.refSTK(t, "failed", "5000", "ORDER777")
		if order.Status != lipa.StatusFailed {
			t.Fatalf("push to %s: got %s, want FAILED", darajasim.PhoneCancelled, order.Status)
		}
		one := f.refC2B(t, "1.00", "ORDER777")

		v, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Reference: "ORDER777"})
		if err != nil {
			t.Fatalf("Verify ORDER777: got error %v, want an answer", err)
		}
		wantVerification(t, "verify ORDER777 after 1 KES", v, false, 5000, 1, order)

		_, err = f.g.Claim(ctx, f.app, gateway.ClaimRequest{Reference: "ORDER777"})
		le := wantRefused(t, "claim ORDER777 without amount after 1 KES", err, "amount_mismatch", one.ID)
		if le.Kind != lipa.Unprocessable || le.Details["expected"] != lipa.Shillings(5000) || le.Details["actual"] != lipa.Shillings(1) {
			t.Errorf("claim ORDER777: got %s details %v, want unprocessable, expected 5000, actual 1", le.Kind, le.Details)
		}
		_, err = f.g.Claim(ctx, f.app, gateway.ClaimRequest{Reference: "ORDER777", Amount: "1"})
		wantRefused(t, "claim ORDER777 with amount 1", err, "amount_mismatch", one.ID)

		// By receipt alone the 1 KES is what it is; naming the reference too
		// brings the reference's price in.
		v, err = f.g.Verify(ctx, f.app, gateway.VerifyQuery{Receipt: one.MpesaReceiptNumber})
		if err != nil {
			t.Fatalf("Verify receipt: got error %v", err)
		}
		wantVerification(t, "verify the 1 KES receipt", v, true, 0, 1, one)
		v, err = f.g.Verify(ctx, f.app, gateway.VerifyQuery{Receipt: one.MpesaReceiptNumber, Reference: "ORDER777"})
		if err != nil {
			t.Fatalf("Verify receipt and reference: got error %v", err)
		}
		wantVerification(t, "verify the 1 KES receipt with reference ORDER777", v, false, 5000, 1, one)
		_, err = f.g.Claim(ctx, f.app, gateway.ClaimRequest{Receipt: one.MpesaReceiptNumber, Reference: "ORDER777"})
		wantRefused(t, "claim the 1 KES receipt with reference ORDER777", err, "amount_mismatch", one.ID)

		full := f.refC2B(t, "5000.00", "ORDER777")
		v, err = f.g.Verify(ctx, f.app, gateway.VerifyQuery{Reference: "ORDER777"})
		if err != nil {
			t.Fatalf("Verify ORDER777: got error %v, want an answer", err)
		}
		wantVerification(t, "verify ORDER777 after 5000 KES more", v, true, 5000, 5001, full)

		p, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{Reference: "ORDER777"})
		if err != nil {
			t.Fatalf("claim ORDER777 without amount after 5000 KES: got error %v, want the 5000 payment", err)
		}
		if p.ID != full.ID || !p.Claimed || p.AppID != f.app.ID || p.Amount != lipa.Shillings(5000) {
			t.Errorf("claim ORDER777: got %s (%s, claimed %v, app %q), want %s, 5000, claimed by %s", p.ID, p.Amount, p.Claimed, p.AppID, full.ID, f.app.ID)
		}
		v, err = f.g.Verify(ctx, f.app, gateway.VerifyQuery{Reference: "ORDER777"})
		if err != nil {
			t.Fatalf("Verify ORDER777: got error %v, want an answer", err)
		}
		wantVerification(t, "verify ORDER777 once claimed", v, true, 5000, 1, full)
		if !v.Claimed {
			t.Errorf("verify ORDER777 once claimed: got claimed false, want true")
		}
		_, err = f.g.Claim(ctx, f.app, gateway.ClaimRequest{Reference: "ORDER777"})
		wantRefused(t, "claim ORDER777 again", err, "already_claimed", full.ID)
		if got := f.payment(t, one.ID); got.Claimed {
			t.Errorf("the 1 KES payment: got claimed, want still in the intake pool")
		}
	})
}

// TestReferencePrice: what a reference costs when the app has STK payments
// under it, and which payment verify and claim by reference answer about,
// for the shapes a reference's payments can take.
func TestReferencePrice(t *testing.T) {
	type step struct {
		kind   string // an refSTK outcome, or "c2b" for a paybill payment
		amount string
	}
	type claim struct {
		amount      string
		receipt     int  // index of the step whose receipt the claim names too; -1 none
		noReference bool // claim by that receipt alone
		code        string
		payment     int // index of the step whose payment is claimed, or refused
	}
	cases := []struct {
		name       string
		steps      []step
		paid       bool
		expected   int64
		amountPaid int64
		subject    int // index of the step whose payment verify describes
		claims     []claim
	}{
		{
			name:  "paybill payment short of the push",
			steps: []step{{"failed", "5000"}, {"c2b", "1.00"}},
			paid:  false, expected: 5000, amountPaid: 1, subject: 0,
			claims: []claim{
				{amount: "", receipt: -1, code: "amount_mismatch", payment: 1},
				{amount: "5000", receipt: -1, code: "amount_mismatch", payment: 1},
				{amount: "", receipt: 1, noReference: true, payment: 1}, // a receipt alone takes what it names
			},
		},
		{
			name:  "overpayment covers; an explicit amount must still be exact",
			steps: []step{{"failed", "5000"}, {"c2b", "5100.00"}},
			paid:  true, expected: 5000, amountPaid: 5100, subject: 1,
			claims: []claim{
				{amount: "5000", receipt: -1, code: "amount_mismatch", payment: 1},
				{amount: "", receipt: -1, payment: 1},
			},
		},
		{
			name:  "instalments are not claimed",
			steps: []step{{"failed", "5000"}, {"c2b", "3000.00"}, {"c2b", "2000.00"}},
			paid:  false, expected: 5000, amountPaid: 5000, subject: 0,
			claims: []claim{{amount: "", receipt: -1, code: "amount_mismatch", payment: 2}},
		},
		{
			name:  "a newer pending push sets the price",
			steps: []step{{"failed", "100"}, {"pending", "5000"}, {"c2b", "100.00"}},
			paid:  false, expected: 5000, amountPaid: 100, subject: 1,
			claims: []claim{{amount: "", receipt: -1, code: "amount_mismatch", payment: 2}},
		},
		{
			name:  "a failed push then a pending one",
			steps: []step{{"failed", "5000"}, {"pending", "5000"}},
			paid:  false, expected: 5000, amountPaid: 0, subject: 1,
			claims: []claim{{amount: "", receipt: -1, code: "payment_not_successful", payment: 1}},
		},
		{
			name:  "a newer push for another amount changes the price",
			steps: []step{{"paid", "100"}, {"failed", "5000"}},
			paid:  false, expected: 5000, amountPaid: 100, subject: 1,
			claims: []claim{{amount: "", receipt: -1, code: "amount_mismatch", payment: 0}},
		},
		{
			name:  "the app's own push before a paybill payment of the same amount",
			steps: []step{{"paid", "5000"}, {"c2b", "5000.00"}},
			paid:  true, expected: 5000, amountPaid: 10000, subject: 0,
			// The customer paid twice: one payment per claim.
			claims: []claim{{amount: "", receipt: -1, payment: 0}, {amount: "", receipt: -1, payment: 1}},
		},
		{
			name:  "a paybill payment of exactly the price before a larger one",
			steps: []step{{"failed", "5000"}, {"c2b", "5000.00"}, {"c2b", "6000.00"}},
			paid:  true, expected: 5000, amountPaid: 11000, subject: 1,
			claims: []claim{
				{amount: "6000", receipt: -1, payment: 2},
				{amount: "", receipt: -1, payment: 1},
			},
		},
		{
			name:  "a claimed payment that covers answers already_claimed",
			steps: []step{{"claimed", "5000"}, {"c2b", "1.00"}},
			paid:  true, expected: 5000, amountPaid: 1, subject: 0,
			claims: []claim{{amount: "", receipt: -1, code: "already_claimed", payment: 0}},
		},
		{
			name:  "a pure paybill reference keeps its answers",
			steps: []step{{"c2b", "1.00"}},
			paid:  true, expected: 0, amountPaid: 1, subject: 0,
			claims: []claim{{amount: "", receipt: -1, payment: 0}},
		},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{PhonePushesPerHour: 100})
		for i, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				ref := fmt.Sprintf("PRICE%02d", i)
				ps := make([]*lipa.Payment, len(tt.steps))
				for j, s := range tt.steps {
					if s.kind == "c2b" {
						ps[j] = f.refC2B(t, s.amount, ref)
					} else {
						ps[j] = f.refSTK(t, s.kind, s.amount, ref)
					}
				}
				v, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Reference: ref})
				if err != nil {
					t.Fatalf("Verify %s: got error %v, want an answer", ref, err)
				}
				wantVerification(t, "verify "+ref, v, tt.paid, tt.expected, tt.amountPaid, ps[tt.subject])
				for _, c := range tt.claims {
					r := gateway.ClaimRequest{Reference: ref, Amount: c.amount}
					if c.receipt >= 0 {
						r.Receipt = ps[c.receipt].MpesaReceiptNumber
					}
					if c.noReference {
						r.Reference = ""
					}
					what := fmt.Sprintf("claim %+v", r)
					p, err := f.g.Claim(ctx, f.app, r)
					if c.code != "" {
						wantRefused(t, what, err, c.code, ps[c.payment].ID)
						continue
					}
					if err != nil {
						t.Fatalf("%s: got error %v, want payment %s claimed", what, err, ps[c.payment].ID)
					}
					if p.ID != ps[c.payment].ID || !p.Claimed || p.AppID != f.app.ID {
						t.Errorf("%s: got %s (claimed %v, app %q), want %s claimed by %s", what, p.ID, p.Claimed, p.AppID, ps[c.payment].ID, f.app.ID)
					}
				}
			})
		}
	})
}

// TestReferencePriceIsPerApp: another app's push under the same reference
// sets no price for this app; to this app the reference is a pure paybill
// one.
func TestReferencePriceIsPerApp(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{PhonePushesPerHour: 100})
		order := f.refSTK(t, "failed", "5000", "SHARED1")
		one := f.refC2B(t, "1.00", "SHARED1")
		other, _, err := f.g.CreateApp(ctx, testOperator, "other")
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Reference: "SHARED1"})
		if err != nil {
			t.Fatalf("Verify SHARED1 as the pushing app: got error %v", err)
		}
		wantVerification(t, "verify SHARED1 as the pushing app", v, false, 5000, 1, order)
		v, err = f.g.Verify(ctx, other, gateway.VerifyQuery{Reference: "SHARED1"})
		if err != nil {
			t.Fatalf("Verify SHARED1 as another app: got error %v", err)
		}
		wantVerification(t, "verify SHARED1 as another app", v, true, 0, 1, one)
	})
}
