package darajasim_test

import (
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
)

func TestNewReceiptFormat(t *testing.T) {
	tests := []struct {
		now        time.Time
		wantPrefix string
	}{
		{time.Date(2019, 12, 19, 10, 21, 15, 0, eat), "NLJ"},
		{time.Date(2023, 11, 21, 12, 13, 25, 0, eat), "RKL"},
		{time.Date(2026, 10, 2, 9, 0, 0, 0, eat), "UJ2"},
		{time.Date(2026, 1, 31, 23, 59, 59, 0, eat), "UAV"},
		{time.Date(2026, 1, 31, 21, 0, 0, 0, time.UTC), "UB1"}, // already 1 February in Nairobi
		{time.Date(2017, 7, 27, 10, 42, 47, 0, eat), "LGR"},
	}
	for _, tt := range tests {
		got := darajasim.NewReceipt(tt.now)
		if !receiptRE.MatchString(got) || got[:3] != tt.wantPrefix {
			t.Errorf("NewReceipt(%v) = %q, want %s followed by 7 of [0-9A-Z]", tt.now, got, tt.wantPrefix)
		}
	}
}

func TestNewReceiptUnique(t *testing.T) {
	now := time.Date(2026, 10, 6, 9, 52, 33, 0, eat)
	seen := make(map[string]bool, 10_000)
	for range 10_000 {
		r := darajasim.NewReceipt(now)
		if !receiptRE.MatchString(r) || r[:3] != "UJ6" {
			t.Fatalf("got receipt %q, want UJ6 followed by 7 of [0-9A-Z]", r)
		}
		if seen[r] {
			t.Fatalf("got receipt %q twice", r)
		}
		seen[r] = true
	}
}
