package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestConfirmByQueryIgnoresForgedFailure: confirm-by-query stops a forged
// callback that passed the token and allow-list. A forged FAILURE callback is
// held; the STK push query then says "0" (paid): the payment is settled
// SUCCESS from the query and the forged failure is flagged, never applied.
func TestConfirmByQueryIgnoresForgedFailure(t *testing.T) {
	f := newFixture(t, sqlstoretest.URL(t, sqlstore.SQLite), darajasim.Config{CallbackDelay: time.Millisecond},
		gateway.Config{ConfirmByQuery: true, ReconcileAfter: time.Minute})
	ctx := context.Background()
	p := f.push(t, "254711000901", "10", "FORGE1")
	real := f.waitCallback(t, p.CheckoutRequestID) // the simulator has settled it as paid
	forged := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":%q,"CheckoutRequestID":%q,"ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`,
		p.MerchantRequestID, p.CheckoutRequestID)
	if _, err := daraja.ParseSTKCallback([]byte(forged)); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/cb", SourceAddr: "196.201.214.200", Body: []byte(forged)}); err != nil {
		t.Fatal(err)
	}
	f.g.Wait() // confirmLater: query says "0"
	if err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/cb", SourceAddr: "196.201.214.200", Body: bytes.Clone(real)}); err != nil {
		t.Fatal(err)
	}
	f.g.Wait()
	got := f.payment(t, p.ID)
	t.Logf("payment: %s %s resolved_by=%s receipt=%q", got.Status, got.FailureReason, got.ResolvedBy, got.MpesaReceiptNumber)
	if got.Status == lipa.StatusFailed {
		t.Errorf("Daraja's query said paid, but the forged failure callback was applied: payment FAILED %s", got.FailureReason)
	}
}
