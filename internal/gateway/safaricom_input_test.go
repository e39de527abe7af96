package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// storedOutcome returns the outcome and note of the newest stored inbound
// message whose body is body, and fails when none is.
func storedOutcome(t *testing.T, databaseURL string, body []byte) (outcome, note string) {
	t.Helper()
	rows, err := evRawDB(t, databaseURL).QueryContext(context.Background(), "SELECT body, outcome, note FROM inbound_messages ORDER BY id DESC")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b, &outcome, &note); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(b, body) {
			return outcome, note
		}
	}
	t.Fatalf("no stored inbound message has the body %q", body)
	return "", ""
}

// withNUL returns a success callback for p whose field (a top-level
// stkCallback key, or a metadata item's Name) holds a NUL character.
func withNUL(t *testing.T, p *lipa.Payment, field string) []byte {
	t.Helper()
	var m map[string]map[string]map[string]any
	if err := json.Unmarshal(successCallback(p, "UKNUL00001"), &m); err != nil {
		t.Fatal(err)
	}
	cb := m["Body"]["stkCallback"]
	if _, ok := cb[field]; ok {
		cb[field] = "X\u0000Y"
	} else {
		for _, it := range cb["CallbackMetadata"].(map[string]any)["Item"].([]any) {
			if item := it.(map[string]any); item["Name"] == field {
				item["Value"] = "X\u0000Y"
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNULPayloadsStoredNotApplied: a callback for a real payment, or a C2B
// confirmation, with a NUL character in a value Lipa keeps is stored raw
// as malformed and changes nothing, on both databases alike (PostgreSQL
// once answered 500 and lost it; SQLite applied it).
func TestNULPayloadsStoredNotApplied(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		ctx := context.Background()
		for i, field := range []string{"ResultDesc", "MerchantRequestID", "MpesaReceiptNumber", "PhoneNumber"} {
			t.Run("callback "+field, func(t *testing.T) {
				p := f.push(t, "25471100010"+string(rune('0'+i)), "10", "NUL"+string(rune('A'+i)))
				body := withNUL(t, p, field)
				err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/api/stk/callback/{token}/", SourceAddr: "127.0.0.1", Body: body})
				if lipa.ErrorKind(err) != lipa.Invalid {
					t.Errorf("ReceiveSTKCallback: got error %v, want Invalid (malformed_callback)", err)
				}
				if got := f.payment(t, p.ID); got.Status != lipa.StatusPending {
					t.Errorf("payment: got %s, want PENDING", got.Status)
				}
				if outcome, note := storedOutcome(t, databaseURL, body); outcome != "malformed" || !strings.Contains(note, field) {
					t.Errorf("stored message: got outcome %q note %q, want malformed naming %s", outcome, note, field)
				}
			})
		}
		for _, c := range []struct{ name, body string }{
			{"TransID", `{"TransactionType":"Pay Bill","TransID":"PGNUL\u000002","TransTime":"20261129100001","TransAmount":"10.00","BusinessShortCode":"174379","BillRefNumber":"NULREF","MSISDN":"254708374149"}`},
			{"BillRefNumber", `{"TransactionType":"Pay Bill","TransID":"UKNULB0001","TransTime":"20261129100001","TransAmount":"10.00","BusinessShortCode":"174379","BillRefNumber":"A\u0000B","MSISDN":"254708374149"}`},
			{"MSISDN", `{"TransactionType":"Pay Bill","TransID":"UKNULM0001","TransTime":"20261129100001","TransAmount":"10.00","BusinessShortCode":"174379","BillRefNumber":"NULREF","MSISDN":"2547\u000008374149"}`},
		} {
			t.Run("confirmation "+c.name, func(t *testing.T) {
				err := f.g.ReceiveC2BConfirmation(ctx, gateway.Inbound{Path: "/api/c2b/confirmation/{token}/", SourceAddr: "127.0.0.1", Body: []byte(c.body)})
				if lipa.ErrorKind(err) != lipa.Invalid {
					t.Errorf("ReceiveC2BConfirmation: got error %v, want Invalid (malformed_confirmation)", err)
				}
				for _, receipt := range []string{"PGNUL\x0002", "UKNULB0001", "UKNULM0001"} {
					if p, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Receipt: receipt}); err == nil {
						t.Errorf("verify %q: got payment %s, want none", receipt, p.ID)
					}
				}
				if outcome, note := storedOutcome(t, databaseURL, []byte(c.body)); outcome != "malformed" || !strings.Contains(note, c.name) {
					t.Errorf("stored message: got outcome %q note %q, want malformed naming %s", outcome, note, c.name)
				}
			})
		}
	})
}
