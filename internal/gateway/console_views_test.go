package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
	"github.com/lipa-gateway/lipa/webhook"
)

var consoleActor = gateway.Actor{Kind: gateway.ActorConsole, Name: "boss"}

// settled pushes amount to phone and applies the simulator's callback, and
// returns the payment as it then stands.
func (f *fixture) settled(t *testing.T, phone, amount, ref string) *lipa.Payment {
	t.Helper()
	p := f.push(t, phone, amount, ref)
	body := f.waitCallback(t, p.CheckoutRequestID)
	if err := f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/api/mpesa/stk-callback/{token}/", SourceAddr: "127.0.0.1", Body: body}); err != nil {
		t.Fatalf("callback of %s: %v", p.ID, err)
	}
	return f.payment(t, p.ID)
}

// c2b records a C2B confirmation from testdata/daraja (the file's
// TransID and BillRefNumber replaced when not empty).
func (f *fixture) c2b(t *testing.T, file, transID, ref string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "daraja", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	if transID != "" {
		s = strings.Replace(s, `"RKL51ZDR4F"`, fmt.Sprintf("%q", transID), 1)
	}
	if ref != "" {
		s = strings.Replace(s, `"Sample Transaction"`, fmt.Sprintf("%q", ref), 1)
	}
	if err := f.g.ReceiveC2BConfirmation(context.Background(), gateway.Inbound{Path: "/api/c2b/confirmation/{token}/", SourceAddr: "127.0.0.1", Body: []byte(s)}); err != nil {
		t.Fatalf("C2B confirmation: %v", err)
	}
}

func ids(ps []lipa.Payment) []lipa.PaymentID {
	out := []lipa.PaymentID{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// TestSearchPayments: one search value finds a payment by receipt (any
// case), reference, phone in any Kenyan form (also a C2B payment whose
// MSISDN is the SHA-256 of the number), CheckoutRequestID or id; filters
// narrow by app, status, type, claimed and Kenya dates; pages follow each
// other without gaps or repeats.
func TestSearchPayments(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond}, gateway.Config{})
		ctx := context.Background()
		other, _, err := f.g.CreateApp(ctx, testOperator, "other")
		if err != nil {
			t.Fatal(err)
		}
		paid := f.settled(t, "254708374149", "10", "CONS1")
		f.clock.Advance(time.Minute)
		failed := f.settled(t, darajasim.PhoneCancelled, "11", "CONS2")
		f.clock.Advance(time.Minute)
		pending := f.push(t, "254711000077", "12", "CONS3")
		f.clock.Advance(time.Minute)
		res, err := f.g.InitiateSTKPush(ctx, other, gateway.STKPushRequest{PhoneNumber: "254711000078", Amount: "13", Reference: "CONS1"})
		if err != nil {
			t.Fatal(err)
		}
		theirs := res.Payment
		f.clock.Advance(time.Minute)
		f.c2b(t, "c2b-confirmation-hashed-msisdn.json", "", "")
		intake, _, err := f.g.SearchPayments(ctx, gateway.PaymentQuery{Q: "RKL51ZDR4F"})
		if err != nil || len(intake) != 1 {
			t.Fatalf("C2B payment by its receipt: got %v, %v", ids(intake), err)
		}
		c2b := intake[0]
		if _, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: paid.ID}); err != nil {
			t.Fatal(err)
		}
		today := f.clock.Now().In(lipa.NairobiTime).Format("2006-01-02")
		yesterday := f.clock.Now().In(lipa.NairobiTime).AddDate(0, 0, -1).Format("2006-01-02")

		all := []lipa.PaymentID{c2b.ID, theirs.ID, pending.ID, failed.ID, paid.ID}
		for _, c := range []struct {
			name string
			q    gateway.PaymentQuery
			want []lipa.PaymentID
		}{
			{"everything, newest first", gateway.PaymentQuery{}, all},
			{"receipt", gateway.PaymentQuery{Q: paid.MpesaReceiptNumber}, []lipa.PaymentID{paid.ID}},
			{"receipt in lower case", gateway.PaymentQuery{Q: strings.ToLower(paid.MpesaReceiptNumber)}, []lipa.PaymentID{paid.ID}},
			{"reference of two apps", gateway.PaymentQuery{Q: "CONS1"}, []lipa.PaymentID{theirs.ID, paid.ID}},
			{"reference with surrounding spaces", gateway.PaymentQuery{Q: "  CONS2 "}, []lipa.PaymentID{failed.ID}},
			{"phone in 07 form (the STK payment and the C2B payment hashed)", gateway.PaymentQuery{Q: "0708374149"}, []lipa.PaymentID{c2b.ID, paid.ID}},
			{"phone in +254 form with spaces", gateway.PaymentQuery{Q: "+254 711 000 077"}, []lipa.PaymentID{pending.ID}},
			{"phone in 7… form", gateway.PaymentQuery{Q: "711000077"}, []lipa.PaymentID{pending.ID}},
			{"CheckoutRequestID", gateway.PaymentQuery{Q: failed.CheckoutRequestID}, []lipa.PaymentID{failed.ID}},
			{"payment id", gateway.PaymentQuery{Q: string(pending.ID)}, []lipa.PaymentID{pending.ID}},
			{"no match", gateway.PaymentQuery{Q: "NOSUCH0000"}, []lipa.PaymentID{}},
			{"part of a receipt matches nothing", gateway.PaymentQuery{Q: paid.MpesaReceiptNumber[:5]}, []lipa.PaymentID{}},
			{"app", gateway.PaymentQuery{App: "other"}, []lipa.PaymentID{theirs.ID}},
			{"app and search", gateway.PaymentQuery{App: "shop", Q: "CONS1"}, []lipa.PaymentID{paid.ID}},
			{"status", gateway.PaymentQuery{Status: "failed"}, []lipa.PaymentID{failed.ID}},
			{"status PENDING", gateway.PaymentQuery{Status: "PENDING"}, []lipa.PaymentID{theirs.ID, pending.ID}},
			{"type C2B", gateway.PaymentQuery{Type: "c2b"}, []lipa.PaymentID{c2b.ID}},
			{"type STK and SUCCESS", gateway.PaymentQuery{Type: "STK", Status: "SUCCESS"}, []lipa.PaymentID{paid.ID}},
			{"claimed", gateway.PaymentQuery{Claimed: "true"}, []lipa.PaymentID{paid.ID}},
			{"not claimed and SUCCESS", gateway.PaymentQuery{Claimed: "false", Status: "SUCCESS"}, []lipa.PaymentID{c2b.ID}},
			{"today (Kenya)", gateway.PaymentQuery{From: today, To: today}, all},
			{"yesterday (Kenya)", gateway.PaymentQuery{From: yesterday, To: yesterday}, []lipa.PaymentID{}},
			{"from yesterday", gateway.PaymentQuery{From: yesterday}, all},
			{"until yesterday", gateway.PaymentQuery{To: yesterday}, []lipa.PaymentID{}},
		} {
			got, next, err := f.g.SearchPayments(ctx, c.q)
			if err != nil {
				t.Errorf("%s: got error %v, want nil", c.name, err)
				continue
			}
			if !slices.Equal(ids(got), c.want) || next != "" {
				t.Errorf("%s: got %v (next %q), want %v", c.name, ids(got), next, c.want)
			}
		}

		// Pages of two, newest first, cover everything once.
		var seen []lipa.PaymentID
		q := gateway.PaymentQuery{Limit: 2}
		for range 10 {
			page, next, err := f.g.SearchPayments(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(page)...)
			if next == "" {
				break
			}
			q.Cursor = next
		}
		if !slices.Equal(seen, all) {
			t.Errorf("pages of 2: got %v, want %v", seen, all)
		}

		for _, c := range []struct {
			name string
			q    gateway.PaymentQuery
			code string
		}{
			{"unknown app", gateway.PaymentQuery{App: "nosuch"}, "invalid_app"},
			{"unknown status", gateway.PaymentQuery{Status: "PAID"}, "invalid_status"},
			{"unknown type", gateway.PaymentQuery{Type: "B2C"}, "invalid_type"},
			{"claimed not a boolean", gateway.PaymentQuery{Claimed: "maybe"}, "invalid_claimed"},
			{"bad date", gateway.PaymentQuery{From: "1/12/2026"}, "invalid_date"},
			{"dates the wrong way round", gateway.PaymentQuery{From: today, To: yesterday}, "invalid_date"},
			{"limit too large", gateway.PaymentQuery{Limit: 201}, "invalid_limit"},
			{"made-up cursor", gateway.PaymentQuery{Cursor: "bm9wZQ"}, "invalid_cursor"},
		} {
			if _, _, err := f.g.SearchPayments(ctx, c.q); lipa.ErrorCode(err) != c.code || lipa.ErrorKind(err) != lipa.Invalid {
				t.Errorf("%s: got %v, want Invalid %q", c.name, err, c.code)
			}
		}

		// The intake pool: unclaimed C2B payments, oldest first.
		f.clock.Advance(time.Minute)
		f.c2b(t, "c2b-confirmation-hashed-msisdn.json", "RKL51ZDR5G", "INV77")
		list, next, err := f.g.Intake(ctx, "", 0)
		if err != nil || len(list) != 2 || list[0].ID != c2b.ID || list[1].Reference != "INV77" || next != "" {
			t.Fatalf("Intake: got %v %q %v, want the two C2B payments, oldest first", ids(list), next, err)
		}
		if _, err := f.g.Claim(ctx, other, gateway.ClaimRequest{Receipt: "RKL51ZDR4F"}); err != nil {
			t.Fatal(err)
		}
		if list, _, _ := f.g.Intake(ctx, "", 0); len(list) != 1 || list[0].Reference != "INV77" {
			t.Errorf("Intake after a claim: got %v, want only INV77's payment", ids(list))
		}
	})
}

// TestExportPayments: the export returns every matching payment, across
// its internal pages of ExportPageSize, newest first, each once.
func TestExportPayments(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		ctx := context.Background()
		n := gateway.ExportPageSize + 7
		for i := range n {
			f.clock.Advance(time.Second)
			f.c2b(t, "c2b-confirmation-hashed-msisdn.json", fmt.Sprintf("EXP%07d", i), fmt.Sprintf("EXPORT%d", i%2))
		}
		var got []string
		count, err := f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{Type: "C2B"}, func(p *lipa.Payment) error {
			got = append(got, p.MpesaReceiptNumber)
			return nil
		})
		if err != nil || count != n || len(got) != n {
			t.Fatalf("ExportPayments: got %d rows (%d counted), %v, want %d", len(got), count, err, n)
		}
		for i, r := range got {
			if want := fmt.Sprintf("EXP%07d", n-1-i); r != want {
				t.Fatalf("row %d: got receipt %s, want %s (newest first, each once)", i, r, want)
			}
		}
		got = nil
		count, err = f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{Q: "EXPORT1"}, func(p *lipa.Payment) error {
			got = append(got, p.Reference)
			return nil
		})
		if err != nil || count != n/2 {
			t.Errorf("ExportPayments of one reference: got %d rows, %v, want %d", count, err, n/2)
		}
		if _, err := f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{Status: "PAID"}, func(*lipa.Payment) error { return nil }); lipa.ErrorCode(err) != "invalid_status" {
			t.Errorf("ExportPayments with a bad filter: got %v, want invalid_status", err)
		}
	})
}

// TestPaymentTimeline: a payment's timeline holds, oldest first, the
// request, Daraja's answer, the raw callback with what Lipa did with it
// (and a repeat of it), the claim, the events and every webhook attempt.
func TestPaymentTimeline(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond}, gateway.Config{})
		ctx := context.Background()
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		t.Cleanup(hook.Close)
		if _, err := f.g.SetWebhook(ctx, testOperator, "shop", hook.URL); err != nil {
			t.Fatal(err)
		}
		p := f.push(t, "254708374149", "10", "TL1")
		body := f.waitCallback(t, p.CheckoutRequestID)
		f.clock.Advance(2 * time.Second)
		for range 2 {
			if err := f.g.ReceiveSTKCallback(ctx, gateway.Inbound{Path: "/api/mpesa/stk-callback/{token}/", SourceAddr: "196.201.214.200", Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		deliver := func() {
			f.clock.Advance(time.Second)
			if _, err := f.g.DeliverWebhooks(ctx); err != nil {
				t.Fatal(err)
			}
			f.g.Wait()
		}
		deliver()
		f.clock.Advance(time.Second)
		if _, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID}); err != nil {
			t.Fatal(err)
		}
		deliver()

		d, err := f.g.PaymentDetail(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for i, e := range d.Timeline {
			kinds = append(kinds, string(e.Kind)+":"+e.Outcome)
			if i > 0 && e.At.Before(d.Timeline[i-1].At) {
				t.Errorf("entry %d (%s) at %v is before the one above it (%v): want oldest first", i, e.Title, e.At, d.Timeline[i-1].At)
			}
		}
		want := []string{"request:", "daraja_answer:", "safaricom:applied", "safaricom:duplicate", "event:", "webhook_attempt:",
			"claim:", "event:", "webhook_attempt:"}
		if !slices.Equal(kinds, want) {
			t.Fatalf("timeline kinds: got %v, want %v", kinds, want)
		}
		answer, cb := d.Timeline[1], d.Timeline[2]
		if !strings.Contains(answer.Body, p.CheckoutRequestID) || !strings.Contains(answer.Body, "ResponseCode") {
			t.Errorf("Daraja's answer: got body %q, want Daraja's JSON with the CheckoutRequestID", answer.Body)
		}
		if !strings.Contains(cb.Body, "MpesaReceiptNumber") || !strings.Contains(cb.Body, d.Payment.MpesaReceiptNumber) ||
			!strings.Contains(cb.Body, "\n  ") || cb.Source != "196.201.214.200 /api/mpesa/stk-callback/{token}/" {
			t.Errorf("callback entry: got body %q from %q, want the raw callback pretty-printed, from its source", cb.Body, cb.Source)
		}
		if d.ClaimedBy != "shop" || d.Timeline[6].App != "shop" {
			t.Errorf("claim: got claimed by %q, entry %+v, want shop", d.ClaimedBy, d.Timeline[6])
		}
		if a := d.Timeline[5]; a.StatusCode != http.StatusNoContent || a.Source != hook.URL {
			t.Errorf("webhook attempt: got %+v, want HTTP 204 to %s", a, hook.URL)
		}
		if _, err := f.g.PaymentDetail(ctx, "pay_nosuch"); lipa.ErrorCode(err) != "payment_not_found" {
			t.Errorf("PaymentDetail of an unknown id: got %v, want payment_not_found", err)
		}

		f.c2b(t, "c2b-confirmation-hashed-msisdn.json", "", "")
		list, _, _ := f.g.SearchPayments(ctx, gateway.PaymentQuery{Q: "RKL51ZDR4F"})
		d, err = f.g.PaymentDetail(ctx, list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Timeline) < 2 || d.Timeline[0].Kind != gateway.TimelineRequest || d.Timeline[1].Kind != gateway.TimelineSafaricom ||
			!strings.Contains(d.Timeline[1].Body, "BillRefNumber") || d.Timeline[1].Outcome != "applied" {
			t.Errorf("C2B timeline: got %+v, want the recording and the raw confirmation, applied", d.Timeline)
		}
	})
}

// TestDashboardFigures: a Kenya day's figures count payments by app,
// status, type and failure reason, with the amount collected, the STK
// success rate, reconciliation catches and the callback lag; PENDING
// payments and the webhook backlog are counted live.
func TestDashboardFigures(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond},
			gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		ctx := context.Background()
		f.settled(t, "254708374149", "100", "D1")
		f.settled(t, "254708374149", "50", "D2")
		f.settled(t, darajasim.PhoneCancelled, "20", "D3")
		f.settled(t, darajasim.PhoneInsufficientFunds, "30", "D4")
		f.push(t, darajasim.PhoneNoCallback, "40", "D5") // no callback: settled by the STK push query
		f.push(t, "254711000090", "60", "D6")            // its callback is never applied: settled by the query too
		f.push(t, "254711000091", "70", "D7")            // the same
		f.c2b(t, "c2b-confirmation-hashed-msisdn.json", "", "")
		f.clock.Advance(time.Minute)
		// Pushed after the others: too young for the reconciler, PENDING.
		if _, err := f.g.InitiateSTKPush(ctx, f.app, gateway.STKPushRequest{PhoneNumber: "254711000092", Amount: "80", Reference: "D8"}); err != nil {
			t.Fatal(err)
		}
		wantReport(t, "reconciliation", f.reconcile(t), gateway.ReconcileReport{Checked: 3, Succeeded: 3})

		live, err := f.g.LiveStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		day, err := f.g.DayStats(ctx, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := gateway.KenyaDay(f.clock.Now()); !day.Day.Equal(want) || day.Day.Hour() != 0 || day.Day.Location() != lipa.NairobiTime {
			t.Errorf("DayStats day: got %v, want Kenya midnight %v", day.Day, want)
		}
		sums := gateway.Summarize([]*gateway.DayStats{day})
		if len(sums) != 3 || sums[0].App != "" || sums[1].App != gateway.IntakeName || sums[2].App != "shop" {
			t.Fatalf("Summarize: got apps %v, want the total, then (intake), then shop", sums)
		}
		shop := sums[2]
		if shop.Payments != 8 || shop.ByType[lipa.TypeSTK] != 8 || shop.ByStatus[lipa.StatusFailed] != 2 ||
			shop.ByStatus[lipa.StatusSuccess] != 5 || shop.ByStatus[lipa.StatusPending] != 1 {
			t.Errorf("shop: got %d payments %v %v, want 8 STK: 5 SUCCESS, 2 FAILED, 1 PENDING", shop.Payments, shop.ByType, shop.ByStatus)
		}
		if live.Pending["shop"] != 1 {
			t.Errorf("PENDING now: got %v, want shop 1", live.Pending)
		}
		if shop.Failures[lipa.ReasonCancelledByUser] != 1 || shop.Failures[lipa.ReasonInsufficientFunds] != 1 {
			t.Errorf("shop failures: got %v, want one cancelled, one insufficient funds", shop.Failures)
		}
		if shop.SuccessRate != 5.0/7 {
			t.Errorf("shop success rate: got %v, want 5/7", shop.SuccessRate)
		}
		if shop.Reconciled != 3 || shop.Collected != lipa.Shillings(100+50+40+60+70) {
			t.Errorf("shop: got %d reconciled, %s collected, want 3 and 320", shop.Reconciled, shop.Collected)
		}
		if shop.LagSamples != 4 || shop.LagP50 > shop.LagP95 {
			t.Errorf("shop callback lag: got %d samples p50 %v p95 %v, want 4 applied callbacks", shop.LagSamples, shop.LagP50, shop.LagP95)
		}
		if in := sums[1]; in.Payments != 1 || in.ByType[lipa.TypeC2B] != 1 || in.Collected != lipa.Shillings(5) {
			t.Errorf("intake: got %+v, want one C2B payment of 5", in)
		}
		if sums[0].Payments != 9 {
			t.Errorf("total: got %d payments, want 9", sums[0].Payments)
		}
		yesterday, err := f.g.DayStats(ctx, f.clock.Now().AddDate(0, 0, -1))
		if err != nil || len(yesterday.Counts) != 0 {
			t.Errorf("DayStats of the day before: got %+v, %v, want nothing", yesterday, err)
		}
		if !live.Daraja.Connected || live.Daraja.TokenFetchedAt.IsZero() || live.Daraja.LastOKAt.IsZero() {
			t.Errorf("Daraja health: got %+v, want a token fetched and a successful call", live.Daraja)
		}
	})
}

// TestKenyaDay: days run midnight to midnight in Kenya time (UTC+3).
func TestKenyaDay(t *testing.T) {
	for _, c := range []struct{ utc, want string }{
		{"2026-12-01T20:59:59Z", "2026-12-01"},
		{"2026-12-01T21:00:00Z", "2026-12-02"},
		{"2026-12-02T00:30:00Z", "2026-12-02"},
	} {
		at, _ := time.Parse(time.RFC3339, c.utc)
		if got := gateway.KenyaDay(at).Format("2006-01-02"); got != c.want {
			t.Errorf("KenyaDay(%s): got %s, want %s", c.utc, got, c.want)
		}
	}
}

// TestWebhookOperations: a test event reaches the app's webhook signed with
// its secret; an app without a webhook is told so; a paused webhook is
// resumed; the deliveries list filters by app and state.
func TestWebhookOperations(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond}, gateway.Config{})
		ctx := context.Background()
		if _, err := f.g.SendTestEvent(ctx, consoleActor, "shop"); lipa.ErrorCode(err) != "no_webhook" {
			t.Errorf("SendTestEvent without a webhook: got %v, want no_webhook", err)
		}
		var mu sync.Mutex
		var got []byte
		var sigErr error
		var secret string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			got, _ = io.ReadAll(r.Body)
			sigErr = webhook.Verify(r.Header.Get(webhook.HeaderName), got, []byte(secret), 0, f.clock.Now())
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(hook.Close)
		s, err := f.g.SetWebhook(ctx, testOperator, "shop", hook.URL)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		secret = s.Reveal()
		mu.Unlock()
		res, err := f.g.SendTestEvent(ctx, consoleActor, "shop")
		if err != nil || res.StatusCode != http.StatusOK || res.Error != "" {
			t.Fatalf("SendTestEvent: got %+v, %v, want HTTP 200", res, err)
		}
		mu.Lock()
		if sigErr != nil || !strings.Contains(string(got), `"type":"webhook.test"`) || !strings.Contains(string(got), res.EventID) {
			t.Errorf("test event as received: got %s (signature %v), want a signed webhook.test event", got, sigErr)
		}
		mu.Unlock()
		if evs, _, _ := f.g.Events(ctx, f.app, "", ""); len(evs) != 0 {
			t.Errorf("events feed after a test event: got %d events, want none", len(evs))
		}

		if was, err := f.g.ResumeWebhook(ctx, consoleActor, "shop"); err != nil || was {
			t.Errorf("ResumeWebhook of a webhook that is not paused: got %v, %v, want false", was, err)
		}
		p := f.settled(t, "254708374149", "10", "WH1")
		f.g.DeliverWebhooks(ctx)
		f.g.Wait()
		list, next, err := f.g.WebhookDeliveryList(ctx, gateway.DeliveryQuery{App: "shop", State: "delivered"})
		if err != nil || len(list) != 1 || next != "" || list[0].PaymentID != p.ID || len(list[0].Attempts) != 1 || list[0].Attempts[0].StatusCode != 200 {
			t.Fatalf("WebhookDeliveryList delivered: got %+v %q %v, want the payment's event with one 200 attempt", list, next, err)
		}
		if list, _, _ := f.g.WebhookDeliveryList(ctx, gateway.DeliveryQuery{State: "failed"}); len(list) != 0 {
			t.Errorf("WebhookDeliveryList failed: got %d, want none", len(list))
		}
		for _, c := range []struct {
			q    gateway.DeliveryQuery
			code string
		}{{gateway.DeliveryQuery{State: "lost"}, "invalid_state"}, {gateway.DeliveryQuery{App: "nosuch"}, "invalid_app"},
			{gateway.DeliveryQuery{Cursor: "x"}, "invalid_cursor"}} {
			if _, _, err := f.g.WebhookDeliveryList(ctx, c.q); lipa.ErrorCode(err) != c.code {
				t.Errorf("WebhookDeliveryList %+v: got %v, want %s", c.q, err, c.code)
			}
		}
		// Paused after failing for the whole span (set directly: waiting a
		// whole retry span is another test's job).
		if _, err := rawDB(t, databaseURL).Exec("UPDATE apps SET webhook_paused_at = updated_at WHERE name = 'shop'"); err != nil {
			t.Fatal(err)
		}
		if was, err := f.g.ResumeWebhook(ctx, consoleActor, "shop"); err != nil || !was {
			t.Errorf("ResumeWebhook of a paused webhook: got %v, %v, want true", was, err)
		}
		apps, _ := f.g.Apps(ctx)
		if !apps[0].PausedAt.IsZero() {
			t.Errorf("app after resume: got paused at %v, want not paused", apps[0].PausedAt)
		}
	})
}

// TestClosedDaysKept: a day past the pending expiry with no PENDING
// payment is computed once and kept, so later views read the kept figures;
// a day with a PENDING payment is computed again each time.
// TestKeepClosedDays: the background pass keeps every closed day of the
// dashboard's fortnight before anyone views it, and none that may change.
func TestKeepClosedDays(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond},
			gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		ctx := context.Background()
		f.settled(t, "254708374149", "100", "K1")
		f.clock.Advance(3 * 24 * time.Hour)
		if err := f.g.KeepClosedDays(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		rawDB(t, databaseURL).QueryRow("SELECT COUNT(*) FROM payment_days").Scan(&n)
		if n != gateway.DashboardDays-1 {
			t.Errorf("kept days: got %d, want %d (every day of the fortnight but today)", n, gateway.DashboardDays-1)
		}
	})
}

func TestClosedDaysKept(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Millisecond},
			gateway.Config{ReconcileAfter: time.Minute, PendingExpiry: time.Hour})
		ctx := context.Background()
		day := f.clock.Now()
		f.settled(t, "254708374149", "100", "K1")
		f.push(t, "254711000095", "50", "K2") // its callback is never applied
		raw := rawDB(t, databaseURL)
		kept := func() (n int) {
			raw.QueryRow("SELECT COUNT(*) FROM payment_days").Scan(&n)
			return n
		}
		collected := func() lipa.Amount {
			d, err := f.g.DayStats(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			return gateway.Summarize([]*gateway.DayStats{d})[0].Collected
		}
		if got := collected(); got != lipa.Shillings(100) || kept() != 0 {
			t.Fatalf("today: got %s collected, %d days kept, want 100 and none kept", got, kept())
		}
		f.clock.Advance(48 * time.Hour)
		if got := collected(); got != lipa.Shillings(100) || kept() != 0 {
			t.Fatalf("a past day with a PENDING payment: got %s, %d kept, want 100 and not kept", got, kept())
		}
		f.reconcile(t) // K2 settled SUCCESS by the STK push query
		if got := collected(); got != lipa.Shillings(150) || kept() != 1 {
			t.Fatalf("the day once settled: got %s, %d kept, want 150 and kept", got, kept())
		}
		if _, err := raw.Exec("UPDATE payments SET amount_cents = 1"); err != nil {
			t.Fatal(err)
		}
		if got := collected(); got != lipa.Shillings(150) {
			t.Errorf("a kept day: got %s, want the kept 150", got)
		}
		d, _ := f.g.DayStats(ctx, day)
		if s := gateway.Summarize([]*gateway.DayStats{d}); s[0].LagSamples != 1 || s[0].Payments != 2 || s[0].Reconciled != 1 {
			t.Errorf("a kept day: got %+v, want 2 payments, 1 reconciled, 1 callback lag", s[0])
		}
	})
}
