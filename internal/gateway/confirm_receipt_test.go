package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestConfirmByQueryEventCarriesReceipt: in confirm-by-query mode, when the
// reconciler confirms a held SUCCESS callback, payment.succeeded is emitted
// after the held callback is applied, so the event carries its receipt.
func TestConfirmByQueryEventCarriesReceipt(t *testing.T) {
	f := newFixture(t, sqlstoretest.URL(t, sqlstore.SQLite), darajasim.Config{CallbackDelay: time.Millisecond},
		gateway.Config{ConfirmByQuery: true, ReconcileAfter: time.Minute})
	var first atomic.Bool
	hook := func() {
		if first.CompareAndSwap(false, true) {
			panic(http.ErrAbortHandler) // confirmLater's query gets no answer
		}
	}
	f.beforeQuery.Store(&hook)
	p := f.push(t, "254711000801", "10", "CONF1")
	if err := evCallback(t, f, p); err != nil {
		t.Fatal(err)
	}
	f.g.Wait()
	f.clock.Advance(2 * time.Minute)
	f.reconcile(t)
	got := f.payment(t, p.ID)
	evs, _, _ := f.g.Events(context.Background(), f.app, "", "")
	for _, raw := range evs {
		var e struct {
			Type    string
			Payment struct {
				Receipt *string `json:"mpesa_receipt_number"`
			}
		}
		json.Unmarshal(raw, &e)
		if e.Type == "payment.succeeded" && got.Status == lipa.StatusSuccess && got.MpesaReceiptNumber != "" && e.Payment.Receipt == nil {
			t.Errorf("payment.succeeded has no receipt; the payment stored with it has %s", got.MpesaReceiptNumber)
		}
	}
	t.Logf("payment %s receipt %q; %d events", got.Status, got.MpesaReceiptNumber, len(evs))
}
