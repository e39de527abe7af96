package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
		// Each of them waits for a person in the review queue.
		items, err := f.g.ReviewItems(ctx, gateway.ReviewFilter{Reason: gateway.ReviewMalformedPayload})
		if err != nil || len(items) != 7 {
			t.Errorf("malformed_payload review items: got %d (%v), want 7, one per payload", len(items), err)
		}
	})
}

// callbackWithPhone returns a success callback for p whose PhoneNumber item
// has the value phone, or no PhoneNumber item when phone is nil.
func callbackWithPhone(t *testing.T, p *lipa.Payment, receipt string, phone any) []byte {
	t.Helper()
	var m map[string]map[string]map[string]any
	if err := json.Unmarshal(successCallback(p, receipt), &m); err != nil {
		t.Fatal(err)
	}
	md := m["Body"]["stkCallback"]["CallbackMetadata"].(map[string]any)
	var items []any
	for _, it := range md["Item"].([]any) {
		if it.(map[string]any)["Name"] == "PhoneNumber" {
			if phone == nil {
				continue
			}
			it.(map[string]any)["Value"] = phone
		}
		items = append(items, it)
	}
	md["Item"] = items
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCallbackPhoneChecked: a success callback applies only when its
// PhoneNumber agrees with the payment's in every digit it shows (a plain
// number, a mask such as 2547****4149, a SHA-256 hash); one that differs is
// flagged as a conflict and never applied; one with no PhoneNumber, or
// masked beyond comparing, is flagged too unless CallbackPhoneOptional.
func TestCallbackPhoneChecked(t *testing.T) {
	type phoneOf func(msisdn string) any
	masked := func(end string) phoneOf {
		return func(m string) any { return m[:4] + "****" + end }
	}
	tests := []struct {
		name     string
		phone    phoneOf
		applied  bool // with the phone required (the default)
		optional bool // applied with CallbackPhoneOptional
	}{
		{"the payment's number", func(m string) any { return json.Number(m) }, true, true},
		{"the payment's number as a string", func(m string) any { return m }, true, true},
		{"no PhoneNumber", func(string) any { return nil }, false, true},
		{"empty PhoneNumber", func(string) any { return "" }, false, true},
		{"another number", func(string) any { return json.Number("254799999999") }, false, false},
		{"masked, visible digits match", func(m string) any { return m[:4] + "****" + m[8:] }, true, true},
		{"masked with spaces, visible digits match", func(m string) any { return m[:4] + " ***** " + m[9:] }, true, true},
		{"masked, visible end differs", masked("0000"), false, false},
		{"masked, visible start differs", func(m string) any { return "2541****" + m[8:] }, false, false},
		{"masked beyond comparing", func(string) any { return "************" }, false, true},
		{"its SHA-256 hash", func(m string) any { return sha256Hex(m) }, true, true},
		{"another number's hash", func(string) any { return sha256Hex("254799999999") }, false, false},
	}
	ctx := context.Background()
	for _, optional := range []bool{false, true} {
		t.Run(map[bool]string{false: "phone required", true: "phone optional"}[optional], func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{CallbackPhoneOptional: optional})
				for i, tt := range tests {
					want := tt.applied
					if optional {
						want = tt.optional
					}
					t.Run(tt.name, func(t *testing.T) {
						msisdn := "2547112000" + string(rune('0'+i/10)) + string(rune('0'+i%10))
						p := f.push(t, msisdn, "10", "PHONE"+string(rune('A'+i)))
						body := callbackWithPhone(t, p, "UKPH"+string(rune('A'+i))+"00001", tt.phone(msisdn))
						if err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/api/stk/callback/{token}/", SourceAddr: "127.0.0.1", Body: body}); err != nil {
							t.Fatalf("ReceiveSTKCallback: got error %v, want nil (stored)", err)
						}
						got := f.payment(t, p.ID)
						outcome, note := storedOutcome(t, databaseURL, body)
						if want {
							if got.Status != lipa.StatusSuccess || outcome != "applied" {
								t.Errorf("got payment %s, callback %s (%s); want SUCCESS, applied", got.Status, outcome, note)
							}
							return
						}
						if got.Status != lipa.StatusPending || outcome != "conflict" || !strings.Contains(strings.ToLower(note), "phone") || strings.Contains(note, msisdn) {
							t.Errorf("got payment %s, callback %s (%s); want PENDING, conflict with a note on the phone that never holds the number unmasked", got.Status, outcome, note)
						}
					})
				}
			})
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestCallbackForAnIDDarajaNeverIssues: a callback whose CheckoutRequestID
// holds a NUL or an escape character names no payment Lipa could have: it
// is stored as unmatched (a review item), never 5xx on
// either database, and an operator cannot match it to a payment.
func TestCallbackForAnIDDarajaNeverIssues(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		ctx := context.Background()
		body := []byte(`{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_\u0000CTRL\u001b[2J","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`)
		f.callback(t, body)
		if outcome, _ := storedOutcome(t, databaseURL, body); outcome != "unmatched" {
			t.Errorf("stored message: got outcome %q, want unmatched", outcome)
		}
		it := f.oneOpenItem(t, gateway.ReviewUnmatchedCallback)
		if strings.ContainsRune(it.CheckoutRequestID, 0) || !strings.Contains(it.CheckoutRequestID, "CTRL") {
			t.Errorf("review item CheckoutRequestID %q: want the ID without its NUL (terminals and pages escape the rest)", it.CheckoutRequestID)
		}
		p := f.push(t, "254711000199", "10", "CTRL")
		_, err := f.g.ResolveMatch(ctx, testOperator, it.ID, p.ID, "the customer says they paid")
		if lipa.ErrorCode(err) != "callback_not_applicable" {
			t.Errorf("ResolveMatch: got %v, want callback_not_applicable", err)
		}
		if got := f.payment(t, p.ID); got.CheckoutRequestID != p.CheckoutRequestID || got.Status != lipa.StatusPending {
			t.Errorf("payment after the refused match: got %s %q, want PENDING %q", got.Status, got.CheckoutRequestID, p.CheckoutRequestID)
		}
	})
}
