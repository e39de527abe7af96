package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestSimulateC2BNoConfirmation: `lipa simulate c2b --no-confirmation`
// makes the payment at the running Lipa's built-in simulator, which logs it
// for Pull Transactions and sends Lipa nothing.
func TestSimulateC2BNoConfirmation(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", "55", "--account", "PULL1", "--phone", "0708374149", "--no-confirmation")
		if code != 0 || !strings.Contains(stdout, "withheld") {
			t.Fatalf("lipa simulate c2b --no-confirmation: got exit code %d (stdout %q, stderr %q), want 0 and a word on the withheld confirmation", code, stdout, stderr)
		}
		var txs []darajasim.Transaction
		deadline := time.Now().Add(5 * time.Second)
		for len(txs) == 0 && time.Now().Before(deadline) {
			txs = svc.srv.sim.Transactions()
			time.Sleep(10 * time.Millisecond)
		}
		if len(txs) != 1 || txs[0].Kind != darajasim.KindC2B || !txs[0].ConfirmationWithheld || txs[0].Amount != 55 ||
			txs[0].BillRef != "PULL1" || txs[0].MSISDN != "254708374149" {
			t.Fatalf("simulator log: got %+v, want the withheld payment", txs)
		}
		if v, err := svc.appClient(t, key).Verify(context.Background(), client.VerifyQuery{Reference: "PULL1"}); !errors.Is(err, client.ErrPaymentNotFound) && v != nil && v.Paid {
			t.Errorf("verify PULL1: got %+v (error %v), want it unknown to Lipa", v, err)
		}
	})
}

func TestSimulateC2BNoConfirmationNeedsTheSimulator(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no serve has run on the database", map[string]string{"DATABASE_URL": "sqlite:" + dir + "/fresh.db"}, "start `lipa serve`"},
		{"sandbox", map[string]string{"DATABASE_URL": "sqlite:" + dir + "/s.db", "MPESA_ENVIRONMENT": "sandbox",
			"MPESA_CONSUMER_KEY": "k", "MPESA_CONSUMER_SECRET": "s", "MPESA_SHORTCODE": "174379", "MPESA_PASSKEY": "p"}, "MPESA_ENVIRONMENT is sandbox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.env, "simulate", "c2b", "--amount", "5", "--account", "A", "--no-confirmation")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit code %d, stderr %q; want a failure saying %q", code, stderr, tt.want)
			}
		})
	}
}
