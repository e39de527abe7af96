package gateway_test

import (
	"testing"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// TestParseRefundApproval: LIPA_REFUND_APPROVAL's values and which refunds
// each makes wait.
func TestParseRefundApproval(t *testing.T) {
	for _, c := range []struct {
		in      string
		needed  map[lipa.Amount]bool
		wantErr bool
	}{
		{"", map[lipa.Amount]bool{lipa.Shillings(1): false, lipa.Shillings(250000): false}, false},
		{"never", map[lipa.Amount]bool{lipa.Shillings(1): false}, false},
		{"ALWAYS", map[lipa.Amount]bool{lipa.Shillings(1): true}, false},
		{"500", map[lipa.Amount]bool{lipa.Shillings(500): false, lipa.Shillings(501): true}, false},
		{"0", map[lipa.Amount]bool{lipa.Shillings(1): true}, false},
		{"sometimes", nil, true},
		{"-5", nil, true},
	} {
		a, err := gateway.ParseRefundApproval(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("ParseRefundApproval(%q): got error %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		for amount, want := range c.needed {
			if got := a.Needed(amount); got != want {
				t.Errorf("ParseRefundApproval(%q).Needed(%s): got %v, want %v", c.in, amount, got, want)
			}
		}
	}
}
