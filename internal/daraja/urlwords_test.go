package daraja_test

import (
	"testing"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestRefusedURLWord: every word of Safaricom's list is found in any case,
// anywhere in a URL, and named as listed; URLs without one pass.
func TestRefusedURLWord(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://pay.example.com/api/stk/callback/", ""},
		{"https://pay.example.com/api/c2b/confirmation/q7Zx0123456789abcdefghijklmnop/", ""},
		{"", ""},
		{"https://pay.example.com/api/mpesa/stk-callback/", "mpesa"},
		{"https://pay.example.com/MPESA/", "mpesa"},
		{"https://M-Pesa.example.com/", "m-pesa"},
		{"https://pay.example.com/m-PESA", "m-pesa"},
		{"https://safaricom-pay.example.com/", "safaricom"},
		{"https://pay.example.com/SafariCom", "safaricom"},
		{"https://pay.example.com/execute", "exec"},
		{"https://pay.example.com/x.EXE", "exe"},
		{"https://pay.example.com/cmdline", "cmd"},
		{"q7SqlZ0123456789abcdefghijklmnop", "sql"},
		{"https://pay.example.com/?Query=1", "query"},
		{"https://pay.example.com/api/c2b/confirmation/abcQUERYdef/", "query"},
		{"exampleexe", "exe"},
		{"https://example.com/sq-l/que-ry/m_pesa/", ""}, // not the listed words
	}
	for _, tt := range tests {
		if got := daraja.RefusedURLWord(tt.in); got != tt.want {
			t.Errorf("RefusedURLWord(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
