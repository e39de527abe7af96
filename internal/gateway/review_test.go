package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// testOperator is the operator the tests' audited actions are recorded for.
var testOperator = gateway.Actor{Kind: gateway.ActorCLI, Name: "tester"}

// darajaFixture reads a Daraja payload from the repository's
// testdata/daraja, decoded with numbers kept as written.
func darajaFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "daraja", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// c2bConfirmation is Daraja's C2B confirmation fixture for TransID transID,
// changed by edit (a nil value deletes the field).
func c2bConfirmation(t *testing.T, transID string, edit map[string]any) []byte {
	t.Helper()
	m := darajaFixture(t, "c2b-confirmation-v1-legacy-plain-msisdn.json")
	m["TransID"], m["BusinessShortCode"] = transID, darajasim.SandboxShortCode
	for k, v := range edit {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stkCallback is Daraja's success (or, with code, failure) callback fixture
// made to answer the push of p, changed by edit: "Amount",
// "MpesaReceiptNumber", "PhoneNumber" set or (nil) remove a metadata item,
// "CheckoutRequestID" replaces it.
func stkCallback(t *testing.T, p *lipa.Payment, fixture string, edit map[string]any) []byte {
	t.Helper()
	m := darajaFixture(t, fixture)
	cb := m["Body"].(map[string]any)["stkCallback"].(map[string]any)
	cb["CheckoutRequestID"], cb["MerchantRequestID"] = p.CheckoutRequestID, p.MerchantRequestID
	if v, ok := edit["CheckoutRequestID"]; ok {
		cb["CheckoutRequestID"] = v
	}
	if md, ok := cb["CallbackMetadata"].(map[string]any); ok {
		whole, _ := p.Amount.WholeShillings()
		set := map[string]any{"Amount": whole, "PhoneNumber": json.Number(p.PhoneNumber)}
		for k, v := range edit {
			if k != "CheckoutRequestID" {
				set[k] = v
			}
		}
		var items []any
		for _, it := range md["Item"].([]any) {
			it := it.(map[string]any)
			name := it["Name"].(string)
			v, ok := set[name]
			delete(set, name)
			if ok && v == nil {
				continue
			}
			if ok {
				it["Value"] = v
			}
			items = append(items, it)
		}
		md["Item"] = items
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) callback(t *testing.T, body []byte) {
	t.Helper()
	if err := f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/api/stk/callback/", SourceAddr: "196.201.214.200:443", Body: body}); err != nil {
		t.Fatalf("ReceiveSTKCallback: got %v, want nil (acknowledged)", err)
	}
}

func (f *fixture) confirm(t *testing.T, body []byte) {
	t.Helper()
	if err := f.g.ReceiveC2BConfirmation(context.Background(), gateway.Inbound{Path: "/api/c2b/confirmation/", SourceAddr: "196.201.214.200:443", Body: body}); err != nil {
		t.Fatalf("ReceiveC2BConfirmation: got %v, want nil (acknowledged)", err)
	}
}

// openItems returns the open review items, newest first.
func (f *fixture) openItems(t *testing.T) []gateway.ReviewItem {
	t.Helper()
	items, err := f.g.ReviewItems(context.Background(), gateway.ReviewFilter{State: gateway.ReviewOpen})
	if err != nil {
		t.Fatalf("ReviewItems: %v", err)
	}
	return items
}

// oneOpenItem checks that exactly one item is open, with that reason, and
// returns it.
func (f *fixture) oneOpenItem(t *testing.T, reason gateway.ReviewReason) gateway.ReviewItem {
	t.Helper()
	items := f.openItems(t)
	if len(items) != 1 || items[0].Reason != reason {
		t.Fatalf("open review items: got %+v, want one %s", items, reason)
	}
	return items[0]
}

// wantNoPaymentForReceipt checks that no app can claim a payment by
// receipt: the receipt is not a claimable payment.
func (f *fixture) wantNotClaimable(t *testing.T, receipt string) {
	t.Helper()
	if p, err := f.g.Claim(context.Background(), f.app, gateway.ClaimRequest{Receipt: receipt}); err == nil {
		t.Fatalf("claim of receipt %q: got payment %s %s, want no claimable payment", receipt, p.ID, p.Amount)
	}
}

// wantCode checks err's kind and code.
func wantCode(t *testing.T, what string, err error, kind lipa.Kind, code string) {
	t.Helper()
	if lipa.ErrorKind(err) != kind || lipa.ErrorCode(err) != code {
		t.Fatalf("%s: got %v, want %s %s", what, err, kind, code)
	}
}

// TestC2BConfirmationsNotTakenAsPayments: a confirmation Lipa cannot take
// as a payment is acknowledged, never claimable, and an open review item
// naming its TransID.
func TestC2BConfirmationsNotTakenAsPayments(t *testing.T) {
	raw := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name    string
		transID string
		body    func(t *testing.T, transID string) []byte
		reason  gateway.ReviewReason
	}{}
	for _, amount := range []string{"0", "0.00", "-100", "1e3", "abc", "NaN", "", "100.555", "99999999999999999999"} {
		cases = append(cases, struct {
			name    string
			transID string
			body    func(t *testing.T, transID string) []byte
			reason  gateway.ReviewReason
		}{"TransAmount " + amount, "UKA1B2C3D4", func(t *testing.T, id string) []byte {
			return c2bConfirmation(t, id, map[string]any{"TransAmount": amount})
		}, gateway.ReviewInvalidAmount})
	}
	add := func(name, transID string, reason gateway.ReviewReason, body func(t *testing.T, transID string) []byte) {
		cases = append(cases, struct {
			name    string
			transID string
			body    func(t *testing.T, transID string) []byte
			reason  gateway.ReviewReason
		}{name, transID, body, reason})
	}
	edited := func(edit map[string]any) func(t *testing.T, id string) []byte {
		return func(t *testing.T, id string) []byte { return c2bConfirmation(t, id, edit) }
	}
	add("TransAmount as a JSON number 0", "UKA1B2C3D5", gateway.ReviewInvalidAmount, edited(map[string]any{"TransAmount": json.Number("0")}))
	add("TransID not of Daraja's shape", "R'💸;--", gateway.ReviewInvalidReceipt, edited(nil))
	add("TransID in lower case", "ukr1ab2cd3", gateway.ReviewInvalidReceipt, edited(nil))
	add("TransID over 20 characters", "UKLONG1234ABCDEFGHIJKLMN", gateway.ReviewInvalidReceipt, edited(nil))
	add("no MSISDN", "UKA1B2C3D6", gateway.ReviewMissingFields, edited(map[string]any{"MSISDN": nil}))
	add("empty MSISDN", "UKA1B2C3D7", gateway.ReviewMissingFields, edited(map[string]any{"MSISDN": ""}))
	add("no BusinessShortCode", "UKA1B2C3D8", gateway.ReviewMissingFields, edited(map[string]any{"BusinessShortCode": nil}))
	add("TransID given twice, no MSISDN, shortcode or BillRefNumber", "UKR1AB2CD4", gateway.ReviewRepeatedKey,
		func(t *testing.T, _ string) []byte { return raw("c2b-confirmation-repeated-key.json") })
	add("MSISDN given twice", "UKR1AB2CD5", gateway.ReviewRepeatedKey,
		func(t *testing.T, _ string) []byte { return raw("c2b-confirmation-repeated-msisdn.json") })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
				f.confirm(t, c.body(t, c.transID))
				f.wantNotClaimable(t, c.transID)
				it := f.oneOpenItem(t, c.reason)
				if it.Receipt != c.transID || it.InboundID == 0 || it.InboundKind != gateway.KindC2BConfirmation || it.PaymentID != "" {
					t.Errorf("review item: got %+v, want one naming TransID %q and its stored confirmation, with no payment", it, c.transID)
				}
				d, err := f.g.ReviewItem(context.Background(), it.ID)
				if err != nil {
					t.Fatal(err)
				}
				if d.Payload == nil || string(d.Payload.Body) != string(c.body(t, c.transID)) {
					t.Errorf("stored payload: got %+v, want the confirmation as received", d.Payload)
				}
			})
		})
	}
}

// TestC2BSameTransIDOtherAmount: a TransID sent again with another amount
// is a review item about the recorded payment, which keeps its amount; sent
// again with the same amount it is a plain repeat.
func TestC2BSameTransIDOtherAmount(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		f.confirm(t, c2bConfirmation(t, "UKDUP00001", map[string]any{"TransAmount": "250.00"}))
		f.confirm(t, c2bConfirmation(t, "UKDUP00001", map[string]any{"TransAmount": "250"}))
		if items := f.openItems(t); len(items) != 0 {
			t.Fatalf("after a repeat with the same amount: got review items %+v, want none", items)
		}
		f.confirm(t, c2bConfirmation(t, "UKDUP00001", map[string]any{"TransAmount": "999.00"}))
		it := f.oneOpenItem(t, gateway.ReviewDuplicateOtherAmount)
		p, err := f.g.Claim(context.Background(), f.app, gateway.ClaimRequest{Receipt: "UKDUP00001"})
		if err != nil || p.Amount != lipa.Shillings(250) {
			t.Fatalf("claim of UKDUP00001: got %v, %v; want the 250 payment", p, err)
		}
		if it.PaymentID != p.ID || it.Receipt != "UKDUP00001" {
			t.Errorf("review item: got %+v, want one naming payment %s and the TransID", it, p.ID)
		}
	})
}

// TestSTKCallbacksNotApplied: a callback Lipa does not apply is stored and
// becomes an open review item about its payment; the payment keeps its
// state and never takes a receipt that is not Daraja's.
func TestSTKCallbacksNotApplied(t *testing.T) {
	success := "stk-callback-success.json"
	cases := []struct {
		name    string
		fixture string
		edit    map[string]any
		reason  gateway.ReviewReason
	}{
		{"receipt not of Daraja's shape", success, map[string]any{"MpesaReceiptNumber": "S'💸;--"}, gateway.ReviewInvalidReceipt},
		{"receipt over 20 characters", success, map[string]any{"MpesaReceiptNumber": "UKLONGRECEIPT1234567890"}, gateway.ReviewInvalidReceipt},
		{"success without a receipt", success, map[string]any{"MpesaReceiptNumber": nil}, gateway.ReviewInvalidReceipt},
		{"amount differs", success, map[string]any{"Amount": 1}, gateway.ReviewAmountMismatch},
		{"phone differs", success, map[string]any{"PhoneNumber": json.Number("254799999999")}, gateway.ReviewPhoneMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
				p := f.push(t, "254711000101", "10", "CB1")
				f.callback(t, stkCallback(t, p, c.fixture, c.edit))
				got := f.payment(t, p.ID)
				if got.Status != lipa.StatusPending || got.MpesaReceiptNumber != "" {
					t.Errorf("payment: got %s receipt %q, want PENDING without a receipt", got.Status, got.MpesaReceiptNumber)
				}
				it := f.oneOpenItem(t, c.reason)
				if it.PaymentID != p.ID || it.CheckoutRequestID != p.CheckoutRequestID || it.InboundKind != gateway.KindSTKCallback {
					t.Errorf("review item: got %+v, want one about payment %s and its callback", it, p.ID)
				}
				if strings.ContainsRune(it.Receipt, 0) {
					t.Errorf("review item receipt %q holds a NUL byte", it.Receipt)
				}
			})
		})
	}
}

// TestSTKCallbackConflicts: callbacks that contradict a settled payment,
// name an unknown CheckoutRequestID, cannot be read, or carry another
// payment's receipt are review items; the receipt stays with the first
// payment and the second stays PENDING.
func TestSTKCallbackConflicts(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})

		p := f.push(t, "254711000201", "10", "CONF1")
		f.callback(t, stkCallback(t, p, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKC0NFL1CT"}))
		f.callback(t, stkCallback(t, p, "stk-callback-cancelled-1032.json", nil))
		if got := f.payment(t, p.ID); got.Status != lipa.StatusSuccess {
			t.Fatalf("payment after a contradicting callback: got %s, want SUCCESS", got.Status)
		}
		f.oneOpenItem(t, gateway.ReviewStatusConflict)

		q := f.push(t, "254711000202", "12", "CONF2")
		f.callback(t, stkCallback(t, q, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKC0NFL1CT"}))
		if got := f.payment(t, q.ID); got.Status != lipa.StatusPending || got.MpesaReceiptNumber != "" {
			t.Fatalf("payment whose callback carries another payment's receipt: got %s %q, want PENDING without it", got.Status, got.MpesaReceiptNumber)
		}
		items, err := f.g.ReviewItems(ctx, gateway.ReviewFilter{Reason: gateway.ReviewReceiptConflict})
		if err != nil || len(items) != 1 || items[0].PaymentID != q.ID || items[0].Receipt != "UKC0NFL1CT" {
			t.Fatalf("receipt_conflict items: got %+v, %v; want one about %s", items, err, q.ID)
		}

		unknown := stkCallback(t, q, "stk-callback-cancelled-1032.json", map[string]any{"CheckoutRequestID": "ws_CO_NOT_OURS_1"})
		f.callback(t, unknown)
		items, err = f.g.ReviewItems(ctx, gateway.ReviewFilter{Reason: gateway.ReviewUnmatchedCallback})
		if err != nil || len(items) != 1 || items[0].CheckoutRequestID != "ws_CO_NOT_OURS_1" || items[0].PaymentID != "" {
			t.Fatalf("unmatched_callback items: got %+v, %v; want one naming ws_CO_NOT_OURS_1", items, err)
		}

		err = f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/api/stk/callback/", SourceAddr: "196.201.214.200:443", Body: []byte(`{"Body": {"stkCallback": `)})
		wantCode(t, "malformed callback", err, lipa.Invalid, "malformed_callback")
		if items, _ := f.g.ReviewItems(ctx, gateway.ReviewFilter{Reason: gateway.ReviewMalformedPayload}); len(items) != 1 {
			t.Fatalf("malformed_payload items: got %+v, want one", items)
		}
	})
}

// TestOrphanPushGoesToReview: a push whose Daraja answer was lost is not
// expired FAILED at LIPA_PENDING_EXPIRY (the customer may have paid): it
// stays PENDING with one orphan_push item, and an operator settles it.
func TestOrphanPushGoesToReview(t *testing.T) {
	for _, c := range []struct {
		name    string
		s       gateway.Settlement
		status  lipa.Status
		receipt string
		event   string
	}{
		{"settled SUCCESS", gateway.Settlement{Status: lipa.StatusSuccess, Receipt: "UKORPHAN01"}, lipa.StatusSuccess, "UKORPHAN01", gateway.EventPaymentSucceeded},
		{"settled FAILED", gateway.Settlement{Status: lipa.StatusFailed}, lipa.StatusFailed, "", gateway.EventPaymentFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				ctx := context.Background()
				f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour},
					gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
				res, err := f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: darajasim.PhoneMalformedAnswer, Amount: "10", Reference: "ORPHAN1"})
				if err == nil || gateway.RecordedPayment(err) == "" {
					t.Fatalf("push with a garbled answer: got %+v, %v; want an error naming the recorded payment", res, err)
				}
				id := gateway.RecordedPayment(err)
				f.clock.Advance(2 * time.Hour)
				rep := f.reconcile(t)
				if rep.Held != 1 || rep.Expired != 0 {
					t.Errorf("reconciliation past the expiry: got %+v, want the payment held for review, none expired", rep)
				}
				if got := f.payment(t, id); got.Status != lipa.StatusPending {
					t.Fatalf("orphan push past the expiry: got %s %s, want PENDING for an operator", got.Status, got.FailureReason)
				}
				f.clock.Advance(time.Hour)
				f.reconcile(t)
				it := f.oneOpenItem(t, gateway.ReviewOrphanPush)
				if it.PaymentID != id {
					t.Fatalf("orphan_push item: got payment %s, want %s", it.PaymentID, id)
				}
				out, err := f.g.ResolveSettle(ctx, testOperator, it.ID, c.s, "checked the M-Pesa statement")
				if err != nil {
					t.Fatalf("ResolveSettle: %v", err)
				}
				got := f.payment(t, id)
				if got.Status != c.status || got.MpesaReceiptNumber != c.receipt || got.ResolvedBy != lipa.ResolvedByOperator {
					t.Errorf("payment after settling: got %s receipt %q resolved_by %q, want %s %q operator", got.Status, got.MpesaReceiptNumber, got.ResolvedBy, c.status, c.receipt)
				}
				if c.status == lipa.StatusFailed && got.FailureReason != lipa.ReasonSettledByOperator {
					t.Errorf("failure_reason: got %q, want %q", got.FailureReason, lipa.ReasonSettledByOperator)
				}
				if out.Item.State != gateway.ReviewResolved || out.Item.Resolution != gateway.ResolutionSettled || out.Item.ResolvedBy != testOperator {
					t.Errorf("item after settling: got %+v, want resolved, settled, by %s", out.Item, testOperator)
				}
				if evs := evWait(t, f, c.event, id); len(evs) != 1 {
					t.Errorf("%s events for the payment: got %d, want 1", c.event, len(evs))
				}
				if items := f.openItems(t); len(items) != 0 {
					t.Errorf("open items after settling: got %+v, want none", items)
				}
			})
		})
	}
}

// TestPaymentUnderReviewNeverExpires: a PENDING payment with an open
// review item (here a callback for another amount) is not expired while
// Daraja's query gives no verdict; it stays PENDING for the operator.
func TestPaymentUnderReviewNeverExpires(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour, QueryPendingStyle: darajasim.QueryPending4999},
			gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		p := f.push(t, "254711000301", "10", "HELD1")
		f.callback(t, stkCallback(t, p, "stk-callback-success.json", map[string]any{"Amount": 1}))
		f.clock.Advance(2 * time.Hour)
		if rep := f.reconcile(t); rep.Held != 1 || rep.Expired != 0 {
			t.Errorf("reconciliation: got %+v, want one held, none expired", rep)
		}
		if got := f.payment(t, p.ID); got.Status != lipa.StatusPending {
			t.Fatalf("payment under review past its expiry: got %s %s, want PENDING", got.Status, got.FailureReason)
		}
		// Dismissed, nothing holds it any more: the next pass expires it.
		it := f.oneOpenItem(t, gateway.ReviewAmountMismatch)
		if _, err := f.g.ResolveDismiss(context.Background(), testOperator, it.ID, "customer paid 1 KES by mistake; refunded"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		if rep := f.reconcile(t); rep.Expired != 1 {
			t.Errorf("reconciliation after the dismissal: got %+v, want the payment expired", rep)
		}
	})
}

// TestReviewMatch: an unmatched callback applied by an operator to the
// payment whose push answer was lost, with every usual check: a callback
// for another amount is refused and changes nothing.
func TestReviewMatch(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		_, err := f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: darajasim.PhoneMalformedAnswer, Amount: "10", Reference: "MATCH1"})
		id := gateway.RecordedPayment(err)
		if id == "" {
			t.Fatalf("push with a garbled answer: got %v, want an error naming the payment", err)
		}
		orphan := f.payment(t, id)
		orphan.CheckoutRequestID = "ws_CO_LOST_MATCH_1"
		wrong := stkCallback(t, orphan, "stk-callback-success.json", map[string]any{"Amount": 7, "MpesaReceiptNumber": "UKMATCH001",
			"CheckoutRequestID": "ws_CO_LOST_MATCH_1"})
		orphan.CheckoutRequestID = "ws_CO_LOST_MATCH_2"
		cancelled := stkCallback(t, orphan, "stk-callback-cancelled-1032.json", nil)
		f.callback(t, wrong)
		f.callback(t, cancelled)
		items := f.openItems(t)
		if len(items) != 2 || items[0].CheckoutRequestID != "ws_CO_LOST_MATCH_2" || items[1].CheckoutRequestID != "ws_CO_LOST_MATCH_1" {
			t.Fatalf("open items: got %+v, want the two unmatched callbacks, newest first", items)
		}
		_, err = f.g.ResolveMatch(ctx, testOperator, items[1].ID, id, "lost push answer")
		wantCode(t, "match of a callback for 7 KES to a 10 KES payment", err, lipa.Conflict, "callback_not_applicable")
		if got := f.payment(t, id); got.Status != lipa.StatusPending || got.CheckoutRequestID != "" {
			t.Fatalf("payment after a refused match: got %s %q, want PENDING without a CheckoutRequestID", got.Status, got.CheckoutRequestID)
		}
		_, err = f.g.ResolveMatch(ctx, testOperator, items[0].ID, id, "")
		wantCode(t, "match without a reason", err, lipa.Invalid, "reason_required")
		res, err := f.g.ResolveMatch(ctx, testOperator, items[0].ID, id, "lost push answer; the customer cancelled")
		if err != nil {
			t.Fatalf("ResolveMatch: %v", err)
		}
		if res.Payment.Status != lipa.StatusFailed || res.Payment.FailureReason != lipa.ReasonCancelledByUser || res.Payment.CheckoutRequestID != "ws_CO_LOST_MATCH_2" {
			t.Errorf("payment after the match: got %+v, want FAILED cancelled_by_user with the callback's CheckoutRequestID", res.Payment)
		}
		if res.Item.Resolution != gateway.ResolutionMatched || res.Item.ResultPaymentID != id {
			t.Errorf("item after the match: got %+v, want matched to %s", res.Item, id)
		}
		_, err = f.g.ResolveMatch(ctx, testOperator, items[0].ID, id, "again")
		wantCode(t, "second match of the same item", err, lipa.Conflict, "review_item_resolved")
		if open := f.openItems(t); len(open) != 1 || open[0].ID != items[1].ID {
			t.Errorf("open items after the match: got %+v, want only the refused one", open)
		}
	})
}

// TestReviewCreatePayment: an operator makes the intake payment of a
// confirmation with an unreadable amount, giving the amount; confirmations
// that can never be a payment are refused with nothing changed.
func TestReviewCreatePayment(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		f.confirm(t, c2bConfirmation(t, "UKCREATE01", map[string]any{"TransAmount": "1e3"}))
		it := f.oneOpenItem(t, gateway.ReviewInvalidAmount)
		_, err := f.g.ResolveCreatePayment(ctx, testOperator, it.ID, gateway.Correction{}, "statement says 1000")
		wantCode(t, "create-payment keeping the unreadable amount", err, lipa.Invalid, "invalid_amount")
		_, err = f.g.ResolveCreatePayment(ctx, testOperator, it.ID, gateway.Correction{Amount: "-5"}, "statement says 1000")
		wantCode(t, "create-payment with a negative amount", err, lipa.Invalid, "invalid_amount")
		res, err := f.g.ResolveCreatePayment(ctx, testOperator, it.ID, gateway.Correction{Amount: "1000", Account: "INV77"}, "statement says 1000")
		if err != nil {
			t.Fatalf("ResolveCreatePayment: %v", err)
		}
		p, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{Receipt: "UKCREATE01"})
		if err != nil || p.ID != res.Payment.ID || p.Amount != lipa.Shillings(1000) || p.Reference != "INV77" || p.Type != lipa.TypeC2B {
			t.Fatalf("claim of the created payment: got %+v, %v; want the C2B payment of 1000 for INV77", p, err)
		}
		if evs := evWait(t, f, gateway.EventC2BReceived, p.ID); len(evs) != 1 {
			t.Errorf("c2b.received events: got %d, want 1", len(evs))
		}
		// The same TransID confirmed again now is a plain repeat.
		f.confirm(t, c2bConfirmation(t, "UKCREATE01", map[string]any{"TransAmount": "1000.00"}))
		if open := f.openItems(t); len(open) != 0 {
			t.Errorf("open items: got %+v, want none", open)
		}

		f.confirm(t, c2bConfirmation(t, "bad id", nil))
		bad := f.oneOpenItem(t, gateway.ReviewInvalidReceipt)
		_, err = f.g.ResolveCreatePayment(ctx, testOperator, bad.ID, gateway.Correction{Amount: "10"}, "try")
		wantCode(t, "create-payment of a confirmation whose TransID is not a receipt", err, lipa.Conflict, "invalid_receipt")

		f.confirm(t, c2bConfirmation(t, "UKNOPHONE1", map[string]any{"MSISDN": nil}))
		items, _ := f.g.ReviewItems(ctx, gateway.ReviewFilter{State: gateway.ReviewOpen, Reason: gateway.ReviewMissingFields})
		_, err = f.g.ResolveCreatePayment(ctx, testOperator, items[0].ID, gateway.Correction{}, "payer called")
		wantCode(t, "create-payment without any phone", err, lipa.Invalid, "invalid_phone_number")
		res, err = f.g.ResolveCreatePayment(ctx, testOperator, items[0].ID, gateway.Correction{Phone: "0708374149"}, "payer called")
		if err != nil || res.Payment.PhoneNumber != "254708374149" {
			t.Fatalf("create-payment with the payer's phone: got %+v, %v", res, err)
		}

		// Settling a confirmation's item is refused: it concerns no payment.
		_, err = f.g.ResolveSettle(ctx, testOperator, bad.ID, gateway.Settlement{Status: lipa.StatusFailed}, "no")
		wantCode(t, "settle of an item without a payment", err, lipa.Conflict, "no_payment")
	})
}

// TestReviewSettleChecks: settling refuses what cannot be right, and
// changes nothing when it does.
func TestReviewSettleChecks(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		p := f.push(t, "254711000401", "10", "SET1")
		f.callback(t, stkCallback(t, p, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKTAKEN001"}))
		q := f.push(t, "254711000402", "10", "SET2")
		f.callback(t, stkCallback(t, q, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKTAKEN001"}))
		it := f.oneOpenItem(t, gateway.ReviewReceiptConflict)
		for _, c := range []struct {
			name   string
			s      gateway.Settlement
			reason string
			kind   lipa.Kind
			code   string
		}{
			{"no reason", gateway.Settlement{Status: lipa.StatusFailed}, "  ", lipa.Invalid, "reason_required"},
			{"unknown status", gateway.Settlement{Status: "PAID", Receipt: "UKOK000001"}, "x", lipa.Invalid, "invalid_status"},
			{"SUCCESS without a receipt", gateway.Settlement{Status: lipa.StatusSuccess}, "x", lipa.Invalid, "invalid_receipt"},
			{"SUCCESS with a receipt not of Daraja's shape", gateway.Settlement{Status: lipa.StatusSuccess, Receipt: "R'--"}, "x", lipa.Invalid, "invalid_receipt"},
			{"FAILED with a receipt", gateway.Settlement{Status: lipa.StatusFailed, Receipt: "UKOK000001"}, "x", lipa.Invalid, "invalid_receipt"},
			{"SUCCESS with another payment's receipt", gateway.Settlement{Status: lipa.StatusSuccess, Receipt: "UKTAKEN001"}, "x", lipa.Conflict, "duplicate_receipt"},
		} {
			_, err := f.g.ResolveSettle(ctx, testOperator, it.ID, c.s, c.reason)
			wantCode(t, c.name, err, c.kind, c.code)
		}
		_, err := f.g.ResolveSettle(ctx, gateway.Actor{}, it.ID, gateway.Settlement{Status: lipa.StatusFailed}, "x")
		wantCode(t, "no actor", err, lipa.Invalid, "invalid_actor")
		if got := f.payment(t, q.ID); got.Status != lipa.StatusPending {
			t.Fatalf("payment after refused settlements: got %s, want PENDING", got.Status)
		}
		if entries, _ := f.g.AuditLog(ctx, gateway.AuditFilter{Target: "review:" + strconv.FormatInt(it.ID, 10)}); len(entries) != 0 {
			t.Errorf("audit entries after refused settlements: got %+v, want none", entries)
		}
		_, err = f.g.ResolveSettle(ctx, testOperator, it.ID, gateway.Settlement{Status: lipa.StatusSuccess, Receipt: "UKOWN00001"}, "customer's SMS shows UKOWN00001")
		if err != nil {
			t.Fatal(err)
		}
		if got := f.payment(t, q.ID); got.Status != lipa.StatusSuccess || got.MpesaReceiptNumber != "UKOWN00001" {
			t.Errorf("payment: got %s %q, want SUCCESS UKOWN00001", got.Status, got.MpesaReceiptNumber)
		}
		// A settled payment is not settled again.
		f.callback(t, stkCallback(t, p, "stk-callback-cancelled-1032.json", nil))
		conflict := f.oneOpenItem(t, gateway.ReviewStatusConflict)
		_, err = f.g.ResolveSettle(ctx, testOperator, conflict.ID, gateway.Settlement{Status: lipa.StatusFailed}, "x")
		wantCode(t, "settle of a SUCCESS payment", err, lipa.Conflict, "payment_not_pending")
	})
}

// TestReviewDismissAudited: a dismissal needs a reason, closes the item
// once, and is recorded in the audit log with the actor, the reason and the
// item before and after; ReviewItem shows it in the history.
func TestReviewDismissAudited(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		f.confirm(t, c2bConfirmation(t, "UKDISMISS1", map[string]any{"TransAmount": "0"}))
		it := f.oneOpenItem(t, gateway.ReviewInvalidAmount)
		_, err := f.g.ResolveDismiss(ctx, testOperator, it.ID, "")
		wantCode(t, "dismiss without a reason", err, lipa.Invalid, "reason_required")
		_, err = f.g.ResolveDismiss(ctx, testOperator, it.ID, "bad\x1b[2Jreason")
		wantCode(t, "dismiss with control characters", err, lipa.Invalid, "invalid_reason")
		_, err = f.g.ResolveDismiss(ctx, testOperator, 999999, "gone")
		wantCode(t, "dismiss of an unknown item", err, lipa.NotFound, "review_item_not_found")
		if _, err := f.g.ResolveDismiss(ctx, testOperator, it.ID, "zero-shilling test payment from Safaricom"); err != nil {
			t.Fatal(err)
		}
		_, err = f.g.ResolveDismiss(ctx, testOperator, it.ID, "again")
		wantCode(t, "second dismissal", err, lipa.Conflict, "review_item_resolved")
		d, err := f.g.ReviewItem(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Item.State != gateway.ReviewResolved || d.Item.ResolutionReason != "zero-shilling test payment from Safaricom" || len(d.History) != 1 {
			t.Fatalf("item: got %+v with history %+v, want resolved with the reason and one history entry", d.Item, d.History)
		}
		e := d.History[0]
		var before, after struct {
			Item gateway.ReviewItemView `json:"item"`
		}
		if json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil {
			t.Fatalf("audit before/after: got %s / %s, want JSON", e.Before, e.After)
		}
		if e.Actor != testOperator || e.Action != gateway.AuditReviewDismiss || e.Reason != "zero-shilling test payment from Safaricom" ||
			before.Item.State != gateway.ReviewOpen || after.Item.State != gateway.ReviewResolved {
			t.Errorf("audit entry: got %+v (before %+v, after %+v), want the dismissal by %s, open before, resolved after", e, before.Item, after.Item, testOperator)
		}
		if open := f.openItems(t); len(open) != 0 {
			t.Errorf("open items: got %+v, want none", open)
		}
	})
}

// TestEarlyCallbackItemResolvedByLipa: a callback that beats the push's
// answer is an unmatched_callback item until the answer is saved; Lipa
// then applies it and closes the item itself.
func TestEarlyCallbackItemResolvedByLipa(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		var g *gateway.Gateway
		var itemsBefore []gateway.ReviewItem
		g, app := slowDarajaGateway(t, databaseURL, func(w http.ResponseWriter, r *http.Request) bool {
			// Safaricom's callback arrives first (docs/daraja.md "STK callback").
			// A failure: a success would find its payment by phone and
			// amount even now.
			early := &lipa.Payment{CheckoutRequestID: "ws_CO_EARLY_000001", MerchantRequestID: "29115-34620561-9",
				Amount: lipa.Shillings(10), PhoneNumber: "254711000501"}
			if err := g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/api/stk/callback/", SourceAddr: "196.201.214.200:443",
				Body: stkCallback(t, early, "stk-callback-cancelled-1032.json", nil)}); err != nil {
				t.Errorf("early callback: %v", err)
			}
			itemsBefore, _ = g.ReviewItems(ctx, gateway.ReviewFilter{State: gateway.ReviewOpen})
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"MerchantRequestID":"29115-34620561-9","CheckoutRequestID":"ws_CO_EARLY_000001","ResponseCode":"0",`+
				`"ResponseDescription":"Success. Request accepted for processing","CustomerMessage":"Success. Request accepted for processing"}`)
			return true
		})
		res, err := g.InitiateSTKPush(ctx, app, gateway.STKPushRequest{PhoneNumber: "254711000501", Amount: "10", Reference: "EARLY1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(itemsBefore) != 1 || itemsBefore[0].Reason != gateway.ReviewUnmatchedCallback {
			t.Fatalf("open items while the push's answer was on its way: got %+v, want the unmatched callback", itemsBefore)
		}
		if res.Payment.Status != lipa.StatusFailed || res.Payment.FailureReason != lipa.ReasonCancelledByUser {
			t.Errorf("payment: got %s %s, want FAILED cancelled_by_user", res.Payment.Status, res.Payment.FailureReason)
		}
		if open, _ := g.ReviewItems(ctx, gateway.ReviewFilter{State: gateway.ReviewOpen}); len(open) != 0 {
			t.Errorf("open items after the answer was saved: got %+v, want none", open)
		}
		d, err := g.ReviewItem(ctx, itemsBefore[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Item.Resolution != gateway.ResolutionApplied || d.Item.ResolvedBy != gateway.ActorLipa || d.Item.ResultPaymentID != res.Payment.ID {
			t.Errorf("item: got %+v, want applied by Lipa to %s", d.Item, res.Payment.ID)
		}
		if entries, _ := g.AuditLog(ctx, gateway.AuditFilter{Target: "review:" + strconv.FormatInt(d.Item.ID, 10)}); len(entries) != 0 {
			t.Errorf("audit entries for Lipa's own resolution: got %+v, want none (people's actions only)", entries)
		}
	})
}

// TestAuditOfAppActions: every operator action on an app is one audit
// entry, in the action's transaction, naming the actor; AuditLog filters
// and pages newest first; a zero Actor is refused with nothing changed.
func TestAuditOfAppActions(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		api := gateway.Actor{Kind: gateway.ActorAPI, Name: "admin-api"}
		if _, _, err := f.g.CreateApp(ctx, gateway.Actor{}, "nobody"); lipa.ErrorCode(err) != "invalid_actor" {
			t.Fatalf("CreateApp without an actor: got %v, want invalid_actor", err)
		}
		if _, _, err := f.g.CreateApp(ctx, api, "shop2"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		mid := f.clock.Now()
		if _, _, err := f.g.RotateKey(ctx, testOperator, "shop2"); err != nil {
			t.Fatal(err)
		}
		if err := f.g.SetAppDisabled(ctx, testOperator, "shop2", true); err != nil {
			t.Fatal(err)
		}
		if err := f.g.SetAppDisabled(ctx, testOperator, "shop2", false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.SetWebhook(ctx, testOperator, "shop2", "https://shop.example.com/hook"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Redeliver(ctx, api, "shop2", ""); err != nil {
			t.Fatal(err)
		}
		all, err := f.g.AuditLog(ctx, gateway.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range all {
			got = append(got, e.Actor.String()+" "+string(e.Action)+" "+e.Target)
			for _, doc := range []json.RawMessage{e.Before, e.After} {
				if s := string(doc); strings.Contains(s, "s3cret") || strings.Contains(s, "lipa_") && !strings.Contains(s, "…") || strings.Contains(s, "whsec_") {
					t.Errorf("audit entry %d holds a secret: %s", e.ID, s)
				}
			}
		}
		want := []string{"api:admin-api webhook.redeliver app:shop2", "cli:tester app.set_webhook app:shop2", "cli:tester app.enable app:shop2",
			"cli:tester app.disable app:shop2", "cli:tester app.rotate_key app:shop2", "api:admin-api app.create app:shop2", "cli:tester app.create app:shop"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("audit log, newest first:\n got %q\nwant %q", got, want)
		}
		for _, c := range []struct {
			name string
			f    gateway.AuditFilter
			want int
		}{
			{"by actor", gateway.AuditFilter{Actor: "admin-api"}, 2},
			{"by actor kind", gateway.AuditFilter{ActorKind: gateway.ActorCLI}, 5},
			{"by action", gateway.AuditFilter{Action: gateway.AuditAppDisable}, 1},
			{"by target", gateway.AuditFilter{Target: "app:shop2"}, 6},
			{"since", gateway.AuditFilter{Since: mid}, 5},
			{"until", gateway.AuditFilter{Until: mid}, 2},
			{"first page", gateway.AuditFilter{Limit: 3}, 3},
			{"after the first page", gateway.AuditFilter{Before: all[2].ID}, 4},
		} {
			es, err := f.g.AuditLog(ctx, c.f)
			if err != nil || len(es) != c.want {
				t.Errorf("AuditLog %s: got %d entries (%v), want %d", c.name, len(es), err, c.want)
			}
		}
		_, err = f.g.AuditLog(ctx, gateway.AuditFilter{Limit: 1001})
		wantCode(t, "limit over 1000", err, lipa.Invalid, "invalid_limit")
		var disabled struct {
			Disabled bool `json:"disabled"`
		}
		if json.Unmarshal(all[3].After, &disabled); !disabled.Disabled {
			t.Errorf("app.disable after: got %s, want disabled true", all[3].After)
		}
	})
}

// TestRecordedPaymentOnlyForTheReservingRequest: the typed payment of an
// InitiateSTKPush error names the request's own payment, never the first
// request's payment that an idempotency_key_reused error mentions.
func TestRecordedPaymentOnlyForTheReservingRequest(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		_, err := f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: darajasim.PhoneSubscriberLocked, Amount: "10", Reference: "IDEM1", IdempotencyKey: "k1"})
		if err == nil || gateway.RecordedPayment(err) == "" {
			t.Fatalf("push Daraja refused: got %v (payment %q), want an error naming its payment", err, gateway.RecordedPayment(err))
		}
		_, err = f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: darajasim.PhoneSubscriberLocked, Amount: "11", Reference: "IDEM1", IdempotencyKey: "k1"})
		wantCode(t, "key reused for another request", err, lipa.Unprocessable, "idempotency_key_reused")
		if id := gateway.RecordedPayment(err); id != "" {
			t.Errorf("idempotency_key_reused: got recorded payment %s, want none (the answer is not this request's to keep)", id)
		}
		_, err = f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: "0", Amount: "10", Reference: "IDEM2"})
		if id := gateway.RecordedPayment(err); err == nil || id != "" {
			t.Errorf("invalid phone: got %v, payment %q; want an error with no payment", err, id)
		}
	})
}

// TestReceiptConflictStaysInReview: a payment whose callback's receipt was
// claimed through another payment stays PENDING while Daraja's query says
// paid, and in the review queue: dismissing its item without settling it
// brings it back on the next pass.
func TestReceiptConflictStaysInReview(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f, _, p, body, _ := reviewDupSetup(t, databaseURL, gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		f.callback(t, body)
		it := f.oneOpenItem(t, gateway.ReviewReceiptConflict)
		f.clock.Advance(2 * time.Minute)
		f.reconcile(t)
		if again := f.oneOpenItem(t, gateway.ReviewReceiptConflict); again.ID != it.ID {
			t.Fatalf("after a pass: got item %d, want still %d", again.ID, it.ID)
		}
		if _, err := f.g.ResolveDismiss(ctx, testOperator, it.ID, "looked at it"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Hour)
		f.reconcile(t)
		back := f.oneOpenItem(t, gateway.ReviewReceiptConflict)
		if back.ID == it.ID || back.PaymentID != p.ID {
			t.Fatalf("after the dismissal and a pass: got %+v, want a new item about %s", back, p.ID)
		}
		if got := f.payment(t, p.ID); got.Status != lipa.StatusPending {
			t.Fatalf("payment: got %s, want PENDING", got.Status)
		}
		if _, err := f.g.ResolveSettle(ctx, testOperator, back.ID, gateway.Settlement{Status: lipa.StatusFailed}, "paid once, through the other app's claim"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		f.reconcile(t)
		if open := f.openItems(t); len(open) != 0 {
			t.Errorf("open items after settling: got %+v, want none", open)
		}
	})
}
