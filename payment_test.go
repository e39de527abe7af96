package lipa_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
)

func TestSettle(t *testing.T) {
	created := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	now := created.Add(30 * time.Second)
	paidAt := time.Date(2024, 1, 1, 12, 1, 5, 0, lipa.NairobiTime) // 09:01:05Z

	success := func(receipt string) lipa.Outcome {
		return lipa.Outcome{
			Status:          lipa.StatusSuccess,
			ResultCode:      "0",
			ResultDesc:      "The service request is processed successfully.",
			Receipt:         receipt,
			Amount:          100,
			PhoneNumber:     "254708374149",
			TransactionDate: paidAt,
		}
	}
	failed := func(code string) lipa.Outcome {
		return lipa.Outcome{Status: lipa.StatusFailed, ResultCode: code, ResultDesc: "Request cancelled by user"}
	}

	tests := []struct {
		name        string
		status      lipa.Status
		receipt     string
		reason      lipa.FailureReason
		outcome     lipa.Outcome
		want        lipa.Decision
		wantStatus  lipa.Status
		wantReceipt string
		wantReason  lipa.FailureReason
	}{
		{
			name:   "pending takes success",
			status: lipa.StatusPending, outcome: success("SAB1CD2EF3"),
			want: lipa.DecisionApplied, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EF3",
		},
		{
			name:   "pending takes success without receipt (STK query)",
			status: lipa.StatusPending, outcome: success(""),
			want: lipa.DecisionApplied, wantStatus: lipa.StatusSuccess,
		},
		{
			name:   "pending takes failure 1032",
			status: lipa.StatusPending, outcome: failed("1032"),
			want: lipa.DecisionApplied, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonCancelledByUser,
		},
		{
			name:   "pending takes failure with its own reason",
			status: lipa.StatusPending,
			outcome: lipa.Outcome{
				Status: lipa.StatusFailed, ResultCode: "1037", FailureReason: lipa.ReasonExpired,
			},
			want: lipa.DecisionApplied, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonExpired,
		},
		{
			name:   "pending takes failure with an unknown code",
			status: lipa.StatusPending, outcome: failed("424242"),
			want: lipa.DecisionApplied, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonUnknownResult,
		},
		{
			name:   "success repeated is a duplicate (a callback repeated)",
			status: lipa.StatusSuccess, receipt: "SAB1CD2EF3", outcome: success("SAB1CD2EF3"),
			want: lipa.DecisionDuplicate, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EF3",
		},
		{
			name:   "success then success without receipt is a duplicate",
			status: lipa.StatusSuccess, receipt: "SAB1CD2EF3", outcome: success(""),
			want: lipa.DecisionDuplicate, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EF3",
		},
		{
			name:   "success then failure is a conflict (the query contradicts the callback)",
			status: lipa.StatusSuccess, receipt: "SAB1CD2EG1", outcome: failed("1032"),
			want: lipa.DecisionConflict, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EG1",
		},
		{
			name:   "failure then success is a conflict (success after a local timeout)",
			status: lipa.StatusFailed, reason: lipa.ReasonExpired, outcome: success("SAB1CD2EG0"),
			want: lipa.DecisionConflict, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonExpired,
		},
		{
			name:   "failure repeated is a duplicate",
			status: lipa.StatusFailed, reason: lipa.ReasonCancelledByUser, outcome: failed("1032"),
			want: lipa.DecisionDuplicate, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonCancelledByUser,
		},
		{
			name:   "failure then another failure code is a duplicate",
			status: lipa.StatusFailed, reason: lipa.ReasonCancelledByUser, outcome: failed("1037"),
			want: lipa.DecisionDuplicate, wantStatus: lipa.StatusFailed, wantReason: lipa.ReasonCancelledByUser,
		},
		{
			name:   "success without receipt takes a later receipt",
			status: lipa.StatusSuccess, outcome: success("SAB1CD2EF3"),
			want: lipa.DecisionApplied, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EF3",
		},
		{
			name:   "success with another receipt is a conflict",
			status: lipa.StatusSuccess, receipt: "R1AAAAAAAA", outcome: success("R2BBBBBBBB"),
			want: lipa.DecisionConflict, wantStatus: lipa.StatusSuccess, wantReceipt: "R1AAAAAAAA",
		},
		{
			name:   "pending outcome is a conflict",
			status: lipa.StatusPending, outcome: lipa.Outcome{Status: lipa.StatusPending},
			want: lipa.DecisionConflict, wantStatus: lipa.StatusPending,
		},
		{
			name:   "empty outcome status is a conflict",
			status: lipa.StatusPending, outcome: lipa.Outcome{ResultCode: "0"},
			want: lipa.DecisionConflict, wantStatus: lipa.StatusPending,
		},
		{
			name:   "unknown outcome status on a final payment is a conflict",
			status: lipa.StatusSuccess, receipt: "SAB1CD2EF3", outcome: lipa.Outcome{Status: "PAID", Receipt: "SAB1CD2EF3"},
			want: lipa.DecisionConflict, wantStatus: lipa.StatusSuccess, wantReceipt: "SAB1CD2EF3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &lipa.Payment{
				ID:                 "pay_0000000000000000000000000a",
				Type:               lipa.TypeSTK,
				Status:             tt.status,
				MpesaReceiptNumber: tt.receipt,
				FailureReason:      tt.reason,
				Amount:             100,
				CheckoutRequestID:  "ws_CO_01012024120000000000000001",
				CreatedAt:          created,
				UpdatedAt:          created,
			}
			before := *p

			got := p.Settle(tt.outcome, now)
			if got != tt.want {
				t.Errorf("Settle: got decision %q, want %q", got, tt.want)
			}
			if p.Status != tt.wantStatus {
				t.Errorf("Settle: got status %q, want %q", p.Status, tt.wantStatus)
			}
			if p.MpesaReceiptNumber != tt.wantReceipt {
				t.Errorf("Settle: got receipt %q, want %q", p.MpesaReceiptNumber, tt.wantReceipt)
			}
			if p.FailureReason != tt.wantReason {
				t.Errorf("Settle: got failure reason %q, want %q", p.FailureReason, tt.wantReason)
			}
			if tt.want != lipa.DecisionApplied {
				if diff := cmp.Diff(before, *p); diff != "" {
					t.Errorf("Settle returned %q but changed the payment (-before +after):\n%s", got, diff)
				}
				return
			}
			if !p.UpdatedAt.Equal(now) {
				t.Errorf("Settle: got UpdatedAt %v, want %v", p.UpdatedAt, now)
			}
			if tt.outcome.Status == lipa.StatusSuccess {
				if !p.TransactionDate.Equal(paidAt) || p.TransactionDate.Location() != time.UTC {
					t.Errorf("Settle: got TransactionDate %v, want %v in UTC", p.TransactionDate, paidAt.UTC())
				}
				if p.PhoneNumber != "254708374149" {
					t.Errorf("Settle: got PhoneNumber %q, want %q", p.PhoneNumber, "254708374149")
				}
			}
		})
	}
}

// A report's phone number never replaces the one the payment was made for.
func TestSettleKeepsPhoneNumber(t *testing.T) {
	p := &lipa.Payment{Status: lipa.StatusPending, PhoneNumber: "254712345678"}
	p.Settle(lipa.Outcome{Status: lipa.StatusSuccess, Receipt: "SAB1CD2EF3", PhoneNumber: "254708374149"}, time.Unix(0, 0))
	if p.PhoneNumber != "254712345678" {
		t.Errorf("Settle: got PhoneNumber %q, want %q", p.PhoneNumber, "254712345678")
	}
}

func TestReasonForResultCode(t *testing.T) {
	tests := []struct {
		code string
		want lipa.FailureReason
	}{
		{"1032", lipa.ReasonCancelledByUser},
		{"1031", lipa.ReasonCancelledByUser},
		{"1", lipa.ReasonInsufficientFunds},
		{"2001", lipa.ReasonWrongPIN},
		{"1037", lipa.ReasonCustomerUnreachable},
		{"1036", lipa.ReasonCustomerUnreachable},
		{"1019", lipa.ReasonExpired},
		{"2", lipa.ReasonLimitExceeded},
		{"3", lipa.ReasonLimitExceeded},
		{"4", lipa.ReasonLimitExceeded},
		{"8", lipa.ReasonLimitExceeded},
		{"17", lipa.ReasonRuleLimited},
		{"1001", lipa.ReasonSubscriberBusy},
		{"1025", lipa.ReasonPromptFailed},
		{"1101", lipa.ReasonPromptFailed},
		{"9999", lipa.ReasonPromptFailed},
		{"8006", lipa.ReasonPINLocked},
		{"2028", lipa.ReasonNotPermitted},
		{"SFC_IC0003", lipa.ReasonNotPermitted},
		{"424242", lipa.ReasonUnknownResult},
		{"26", lipa.ReasonUnknownResult},
		{"", lipa.ReasonUnknownResult},
	}
	for _, tt := range tests {
		if got := lipa.ReasonForResultCode(tt.code); got != tt.want {
			t.Errorf("ReasonForResultCode(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestParseDarajaTime(t *testing.T) {
	// The result must not depend on the machine's time zone.
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatalf("load America/Los_Angeles: %v", err)
	}
	saved := time.Local
	time.Local = la
	t.Cleanup(func() { time.Local = saved })

	tests := []struct {
		in   string
		want time.Time
	}{
		{"20191219102115", time.Date(2019, 12, 19, 7, 21, 15, 0, time.UTC)},
		{"20240101000000", time.Date(2023, 12, 31, 21, 0, 0, 0, time.UTC)}, // the day before in UTC
		{"20200713090503", time.Date(2020, 7, 13, 6, 5, 3, 0, time.UTC)},   // single-digit fields
		{"20241231235959", time.Date(2024, 12, 31, 20, 59, 59, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := lipa.ParseDarajaTime(tt.in)
		if err != nil {
			t.Errorf("ParseDarajaTime(%q): got error %v, want %v", tt.in, err, tt.want)
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseDarajaTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}

	for _, in := range []string{
		"", "2019121910211", "201912191021150", "20191319102115", "20191232102115",
		"20191219252115", "2019-12-19 10:21:15", "abcdefghijklmn", "2.0191219102115e+13",
	} {
		if got, err := lipa.ParseDarajaTime(in); err == nil {
			t.Errorf("ParseDarajaTime(%q) = %v, want an error", in, got)
		}
	}
}
