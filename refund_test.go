package lipa_test

import (
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
)

// TestRefundSettle: the refund state machine (Refund.Settle).
func TestRefundSettle(t *testing.T) {
	now := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	success := lipa.RefundOutcome{Status: lipa.RefundSucceeded, ResultCode: "0", ReversalReceipt: "UKT1AB2CD3", Source: lipa.RefundByResult}
	failed := lipa.RefundOutcome{Status: lipa.RefundFailed, ResultCode: "R000001", FailureReason: lipa.RefundAlreadyReversed, Source: lipa.RefundByResult}
	rejected := lipa.RefundOutcome{Status: lipa.RefundRejected, FailureReason: lipa.RefundRejectedByOperator, Source: lipa.RefundByOperator}
	for _, c := range []struct {
		name       string
		from       lipa.RefundStatus
		receipt    string
		o          lipa.RefundOutcome
		want       lipa.Decision
		wantStatus lipa.RefundStatus
	}{
		{"pending takes success", lipa.RefundPending, "", success, lipa.DecisionApplied, lipa.RefundSucceeded},
		{"pending takes failure", lipa.RefundPending, "", failed, lipa.DecisionApplied, lipa.RefundFailed},
		{"pending is not rejected", lipa.RefundPending, "", rejected, lipa.DecisionConflict, lipa.RefundPending},
		{"awaiting approval is rejected", lipa.RefundAwaitingApproval, "", rejected, lipa.DecisionApplied, lipa.RefundRejected},
		{"awaiting approval takes no result", lipa.RefundAwaitingApproval, "", success, lipa.DecisionConflict, lipa.RefundAwaitingApproval},
		{"success repeated", lipa.RefundSucceeded, "UKT1AB2CD3", success, lipa.DecisionDuplicate, lipa.RefundSucceeded},
		{"success then failure", lipa.RefundSucceeded, "UKT1AB2CD3", failed, lipa.DecisionConflict, lipa.RefundSucceeded},
		{"failure then success", lipa.RefundFailed, "", success, lipa.DecisionConflict, lipa.RefundFailed},
		{"success without receipt takes one", lipa.RefundSucceeded, "", success, lipa.DecisionApplied, lipa.RefundSucceeded},
		{"success with another receipt", lipa.RefundSucceeded, "UKT9ZZ9ZZ9", success, lipa.DecisionConflict, lipa.RefundSucceeded},
		{"not a final outcome", lipa.RefundPending, "", lipa.RefundOutcome{Status: lipa.RefundPending}, lipa.DecisionConflict, lipa.RefundPending},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &lipa.Refund{Status: c.from, ReversalReceipt: c.receipt}
			if got := r.Settle(c.o, now); got != c.want || r.Status != c.wantStatus {
				t.Errorf("Settle: got %s, status %s; want %s, status %s", got, r.Status, c.want, c.wantStatus)
			}
			if c.want == lipa.DecisionApplied && c.from != c.wantStatus && (!r.CompletedAt.Equal(now) || r.ResolvedBy != c.o.Source) {
				t.Errorf("Settle: got completed_at %v resolved_by %q, want %v %q", r.CompletedAt, r.ResolvedBy, now, c.o.Source)
			}
		})
	}
}
