package api

import (
	"encoding/json"
	"testing"

	"github.com/lipa-gateway/lipa"
)

// TestAnswersKeepTheirShape: the verify and claim answers encode byte for
// byte as the maps they replaced did (keys in the order of their names).
func TestAnswersKeepTheirShape(t *testing.T) {
	s, d, amt := "x", "2026-12-07T10:15:00Z", lipa.Shillings(10)
	cases := []struct {
		name string
		got  any
		want map[string]any
	}{
		{"verify", verifyAnswer{Amount: amt, AmountExpected: &amt, AmountPaid: amt, Claimed: true, Date: &d, FailureReason: &s,
			FromIntake: true, Paid: true, PaymentID: "pay_1", PaymentType: lipa.TypeC2B, Phone: "254708374149", Receipt: &s,
			Reference: "ORDER1", Status: lipa.StatusSuccess},
			map[string]any{"paid": true, "amount": amt, "amount_expected": &amt, "amount_paid": amt, "phone": "254708374149",
				"receipt": &s, "reference": "ORDER1", "claimed": true, "date": &d, "payment_id": lipa.PaymentID("pay_1"),
				"payment_type": lipa.TypeC2B, "from_intake": true, "status": lipa.StatusSuccess, "failure_reason": &s}},
		{"verify with nulls", verifyAnswer{Amount: amt, PaymentID: "pay_1", PaymentType: lipa.TypeSTK, Status: lipa.StatusPending},
			map[string]any{"paid": false, "amount": amt, "amount_expected": (*lipa.Amount)(nil), "amount_paid": lipa.Amount(0), "phone": "",
				"receipt": (*string)(nil), "reference": "", "claimed": false, "date": (*string)(nil), "payment_id": lipa.PaymentID("pay_1"),
				"payment_type": lipa.TypeSTK, "from_intake": false, "status": lipa.StatusPending, "failure_reason": (*string)(nil)}},
		{"claim", claimAnswer{Message: "Payment claimed successfully", PaymentID: "pay_1", Receipt: &s, Amount: amt, ClaimedAt: d, Status: lipa.StatusSuccess},
			map[string]any{"message": "Payment claimed successfully", "payment_id": lipa.PaymentID("pay_1"), "receipt": &s, "amount": amt,
				"claimed_at": d, "status": lipa.StatusSuccess}},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.got)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: got %s, want %s", c.name, got, want)
		}
	}
}
