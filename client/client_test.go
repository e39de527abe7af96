package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/api/openapitest"
	"github.com/lipa-gateway/lipa/webhook"
)

// The simulator's magic phone numbers (README, "The simulator's outcomes").
const (
	phoneCancelled = "254700000001" // the customer cancels: FAILED, cancelled_by_user
	phoneBusy      = "254700000007" // Daraja refuses the push at once: 409 subscriber_busy
)

// TestPushVerifyClaim follows an app's main path: push, the simulator's
// callback settles it, verify says paid, the first claim wins and the
// second is ErrAlreadyClaimed.
func TestPushVerifyClaim(t *testing.T) {
	ctx := context.Background()
	c, app := newApp(t)
	phone, ref := freshPhone(), freshRef()

	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: "0" + phone[3:], Amount: client.Shillings(10), Reference: ref, Description: "Order"})
	if err != nil {
		t.Fatalf("Push: got error %v, want nil", err)
	}
	if push.Status != client.StatusPending || !strings.HasPrefix(push.PaymentID, "pay_") || push.CheckoutRequestID == "" || push.Replayed {
		t.Errorf("Push: got %+v, want a PENDING pay_ payment with a CheckoutRequestID, not replayed", push)
	}
	if len(push.IdempotencyKey) != 32 {
		t.Errorf("Push IdempotencyKey: got %q, want a random 32-digit key", push.IdempotencyKey)
	}
	p := waitFinal(t, c, push.PaymentID)
	if p.Status != client.StatusSuccess || p.Amount != client.Shillings(10) || p.PhoneNumber != phone || p.App != app ||
		p.Reference != ref || p.PaymentType != client.TypeSTK || p.MpesaReceiptNumber == "" || p.TransactionDate.IsZero() || p.Claimed || !p.ClaimedAt.IsZero() {
		t.Errorf("Payment: got %+v, want SUCCESS, KES 10 from %s under %s, with a receipt and unclaimed", p, phone, ref)
	}

	for _, q := range []client.VerifyQuery{{Reference: ref}, {Receipt: p.MpesaReceiptNumber}, {Reference: ref, Phone: phone}} {
		v, err := c.Verify(ctx, q)
		if err != nil {
			t.Fatalf("Verify(%+v): got error %v, want nil", q, err)
		}
		if !v.Paid || v.PaymentID != p.ID || v.Amount != client.Shillings(10) || v.Claimed || v.Receipt != p.MpesaReceiptNumber || v.Date.IsZero() || v.FromIntake {
			t.Errorf("Verify(%+v): got %+v, want paid, unclaimed, payment %s", q, v, p.ID)
		}
	}
	v, _ := c.Verify(ctx, client.VerifyQuery{Reference: ref})
	if v.AmountExpected == nil || *v.AmountExpected != client.Shillings(10) || v.AmountPaid != client.Shillings(10) {
		t.Errorf("Verify by reference: got amount_expected %v amount_paid %v, want 10 and 10", v.AmountExpected, v.AmountPaid)
	}
	if v, _ := c.Verify(ctx, client.VerifyQuery{Receipt: p.MpesaReceiptNumber}); v.AmountExpected != nil {
		t.Errorf("Verify by receipt: got amount_expected %v, want nil", *v.AmountExpected)
	}

	claim, err := c.Claim(ctx, client.ClaimRequest{Reference: ref, Amount: client.Shillings(10)})
	if err != nil {
		t.Fatalf("Claim: got error %v, want nil", err)
	}
	if claim.PaymentID != p.ID || claim.Receipt != p.MpesaReceiptNumber || claim.Amount != client.Shillings(10) || claim.ClaimedAt.IsZero() || claim.Status != client.StatusSuccess {
		t.Errorf("Claim: got %+v, want payment %s claimed", claim, p.ID)
	}
	_, err = c.Claim(ctx, client.ClaimRequest{PaymentID: p.ID})
	if !errors.Is(err, client.ErrAlreadyClaimed) {
		t.Fatalf("second Claim: got %v, want ErrAlreadyClaimed", err)
	}
	var le *client.Error
	if !errors.As(err, &le) || le.StatusCode != http.StatusConflict || le.Code != "already_claimed" || le.Details["claimed_at"] == nil || le.Message == "" {
		t.Errorf("second Claim: got %#v, want a 409 *Error already_claimed with details.claimed_at", le)
	}
	if errors.Is(err, client.ErrPaymentNotFound) {
		t.Errorf("second Claim: errors.Is(err, ErrPaymentNotFound) is true, want false")
	}
	if p, _ := c.Payment(ctx, p.ID); !p.Claimed || p.ClaimedAt.IsZero() {
		t.Errorf("Payment after Claim: got claimed %v at %v, want claimed", p.Claimed, p.ClaimedAt)
	}
}

// TestPushIdempotency: an explicit key makes a repeat return the first
// answer (Replayed) with the same payment; the same key with other fields
// is ErrIdempotencyKeyReused; pushes without a key get keys of their own.
func TestPushIdempotency(t *testing.T) {
	ctx := context.Background()
	c, _ := newApp(t)
	req := client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(25), Reference: freshRef(), IdempotencyKey: "order-77-attempt-1"}
	first, err := c.Push(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Push(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.PaymentID != first.PaymentID || !again.Replayed || first.Replayed || again.IdempotencyKey != "order-77-attempt-1" {
		t.Errorf("repeat: got %+v after %+v, want the same payment, replayed", again, first)
	}
	other := req
	other.Amount = client.Shillings(26)
	if _, err := c.Push(ctx, other); !errors.Is(err, client.ErrIdempotencyKeyReused) {
		t.Errorf("same key, other amount: got %v, want ErrIdempotencyKeyReused", err)
	}
	a, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(1), Reference: freshRef()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(1), Reference: freshRef()})
	if err != nil {
		t.Fatal(err)
	}
	if a.IdempotencyKey == b.IdempotencyKey || a.PaymentID == b.PaymentID {
		t.Errorf("two pushes without a key: got keys %q and %q, payments %s and %s, want different ones", a.IdempotencyKey, b.IdempotencyKey, a.PaymentID, b.PaymentID)
	}
}

// dropFirst is a proxy in front of Lipa that forwards every request but
// hangs up, without an answer, on the first one whose path is path: Lipa
// has done the work, the client has lost the answer.
func dropFirst(t *testing.T, path string) string {
	t.Helper()
	target, _ := url.Parse(lipaURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var dropped atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || dropped.Swap(true) {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r) // Lipa answers…
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close() // …and the answer never arrives.
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPushRepeatedAfterLostAnswer: when the answer to a push is lost, the
// client sends it again with the same Idempotency-Key and gets the first
// answer: one payment, one prompt. A claim whose answer is lost is not
// sent again.
func TestPushRepeatedAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	_, name := newApp(t)
	key, err := createApp(name + "x")
	if err != nil {
		t.Fatal(err)
	}
	base := dropFirst(t, "/api/stk-push/")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	c, err := client.New(base, key, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ref := freshRef()
	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: ref})
	if err != nil {
		t.Fatalf("Push through a connection that drops the first answer: got error %v, want the answer of the repeat", err)
	}
	if !push.Replayed {
		t.Errorf("Push: got Replayed false, want true (the second attempt gets the stored answer)")
	}
	page, err := c.PaymentsPage(ctx, client.ListQuery{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Payments) != 1 || page.Payments[0].ID != push.PaymentID {
		t.Fatalf("payments under %s: got %d, want exactly the one push %s", ref, len(page.Payments), push.PaymentID)
	}

	// A claim is not repeated: its answer lost, the caller sees an error
	// that is not a *Error, and verify tells what happened.
	waitFinal(t, newClient(t, key), push.PaymentID)
	c2, err := client.New(dropFirst(t, "/api/payments/claim/"), key, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.Claim(ctx, client.ClaimRequest{PaymentID: push.PaymentID})
	var le *client.Error
	if err == nil || errors.As(err, &le) {
		t.Fatalf("Claim with its answer lost: got %v, want a network error (no repeat)", err)
	}
	if v, err := c2.Verify(ctx, client.VerifyQuery{Reference: ref}); err != nil || !v.Claimed {
		t.Errorf("Verify after the lost claim: got %+v, %v, want claimed (the claim reached Lipa once)", v, err)
	}
}

// TestErrors: Lipa's error answers become *Error values with their code,
// status and details, and errors.Is matches the common codes.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	c, _ := newApp(t)
	cancelled, err := c.Push(ctx, client.PushRequest{PhoneNumber: phoneCancelled, Amount: client.Shillings(10), Reference: freshRef()})
	if err != nil {
		t.Fatal(err)
	}
	if p := waitFinal(t, c, cancelled.PaymentID); p.Status != client.StatusFailed || p.FailureReason != "cancelled_by_user" {
		t.Fatalf("push to %s: got %s %s, want FAILED cancelled_by_user", phoneCancelled, p.Status, p.FailureReason)
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   string
		is     error  // an Err value the error matches, or nil
		field  string // details.field, when the error names one
	}{
		{"bad phone", func() error {
			_, err := c.Push(ctx, client.PushRequest{PhoneNumber: "12345", Amount: client.Shillings(10), Reference: freshRef()})
			return err
		}, 400, "invalid_phone_number", nil, "phone_number"},
		{"fractional amount", func() error {
			_, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: 1050, Reference: freshRef()})
			return err
		}, 400, "invalid_amount", nil, "amount"},
		{"busy subscriber", func() error {
			_, err := c.Push(ctx, client.PushRequest{PhoneNumber: phoneBusy, Amount: client.Shillings(10), Reference: freshRef()})
			return err
		}, 409, "subscriber_busy", client.ErrSubscriberBusy, ""},
		{"unknown payment", func() error {
			_, err := c.Payment(ctx, "pay_doesnotexist000")
			return err
		}, 404, "payment_not_found", client.ErrPaymentNotFound, ""},
		{"verify nothing", func() error {
			_, err := c.Verify(ctx, client.VerifyQuery{})
			return err
		}, 400, "missing_parameter", nil, "receipt"},
		{"verify unknown reference", func() error {
			_, err := c.Verify(ctx, client.VerifyQuery{Reference: "NOSUCHREF"})
			return err
		}, 404, "payment_not_found", client.ErrPaymentNotFound, ""},
		{"claim a failed payment", func() error {
			_, err := c.Claim(ctx, client.ClaimRequest{PaymentID: cancelled.PaymentID})
			return err
		}, 409, "payment_not_successful", client.ErrPaymentNotSuccessful, ""},
		{"bad list filter", func() error {
			_, err := c.PaymentsPage(ctx, client.ListQuery{Limit: 1000})
			return err
		}, 400, "invalid_limit", nil, "limit"},
		{"unknown event", func() error {
			_, err := c.EventsPage(ctx, client.EventsQuery{After: "evt_nosuchevent"})
			return err
		}, 404, "event_not_found", client.ErrEventNotFound, ""},
		{"wrong key", func() error {
			_, err := newClient(t, "lipa_wrongkey").Payment(ctx, cancelled.PaymentID)
			return err
		}, 401, "invalid_api_key", client.ErrInvalidAPIKey, ""},
		{"no key", func() error {
			_, err := newClient(t, "").Verify(ctx, client.VerifyQuery{Reference: "X"})
			return err
		}, 401, "missing_api_key", client.ErrMissingAPIKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var le *client.Error
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *client.Error", err)
			}
			if le.StatusCode != tc.status || le.Code != tc.code || le.Message == "" || le.Details == nil {
				t.Errorf("got %d %q %q %v, want %d %q with a message and details", le.StatusCode, le.Code, le.Message, le.Details, tc.status, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v): got false, want true", err, tc.is)
			}
			if le.Field() != tc.field {
				t.Errorf("Field(): got %q, want %q", le.Field(), tc.field)
			}
			if !strings.Contains(le.Error(), tc.code) {
				t.Errorf("Error(): got %q, want it to name %s", le.Error(), tc.code)
			}
		})
	}
}

// TestPaymentsIterator: Payments follows the cursor page by page, newest
// first, each payment once, and stops when the loop does.
func TestPaymentsIterator(t *testing.T) {
	ctx := context.Background()
	c, _ := newApp(t)
	var pushed []string
	for range 5 {
		p, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef()})
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, p.PaymentID)
	}
	slices.Reverse(pushed)
	var got []string
	for p, err := range c.Payments(ctx, client.ListQuery{Limit: 2}) {
		if err != nil {
			t.Fatalf("Payments: got error %v", err)
		}
		got = append(got, p.ID)
	}
	if !slices.Equal(got, pushed) {
		t.Errorf("Payments with pages of 2: got %v, want %v (newest first)", got, pushed)
	}
	got = got[:0]
	for p, err := range c.Payments(ctx, client.ListQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, p.ID); len(got) == 3 {
			break
		}
	}
	if !slices.Equal(got, pushed[:3]) {
		t.Errorf("Payments, stopped after 3: got %v, want %v", got, pushed[:3])
	}
	for _, err := range c.Payments(ctx, client.ListQuery{Cursor: "not-a-cursor"}) {
		if !errors.Is(err, &client.Error{Code: "invalid_cursor"}) {
			t.Errorf("Payments with a bad cursor: got %v, want invalid_cursor", err)
		}
	}
}

// TestEventsIterator: Events reads the feed in order across pages, and a
// later read after the last id seen returns only what is new.
func TestEventsIterator(t *testing.T) {
	ctx := context.Background()
	c, _ := newApp(t)
	var ids []string
	for range 3 {
		p, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef()})
		if err != nil {
			t.Fatal(err)
		}
		waitFinal(t, c, p.PaymentID)
		ids = append(ids, p.PaymentID)
	}
	var got []string
	last := ""
	for ev, err := range c.Events(ctx, client.EventsQuery{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != client.EventPaymentSucceeded || ev.Payment.Status != client.StatusSuccess || ev.CreatedAt.IsZero() {
			t.Errorf("event %+v: want payment.succeeded with a SUCCESS payment", ev)
		}
		got = append(got, ev.Payment.ID)
		last = ev.ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("Events in pages of 1: got payments %v, want %v in order", got, ids)
	}
	if _, err := c.Claim(ctx, client.ClaimRequest{PaymentID: ids[0]}); err != nil {
		t.Fatal(err)
	}
	var fresh []client.Event
	for ev, err := range c.Events(ctx, client.EventsQuery{After: last}) {
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, ev)
	}
	if len(fresh) != 1 || fresh[0].Type != client.EventPaymentClaimed || fresh[0].Payment.ID != ids[0] || !fresh[0].Payment.Claimed {
		t.Errorf("Events after %s: got %+v, want one payment.claimed of %s", last, fresh, ids[0])
	}
}

// TestWebhookHandler: Lipa's real deliveries pass WebhookHandler and fit
// the document's webhooks; a delivery signed with another secret is 400
// and never reaches the handler.
func TestWebhookHandler(t *testing.T) {
	ctx := context.Background()
	c, name := newApp(t)
	checker, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []*client.Event
	var secret []byte
	got := make(chan struct{}, 16)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		s := secret
		mu.Unlock()
		client.WebhookHandler(s, func(_ context.Context, ev *client.Event) error {
			if err := checker.CheckWebhook(ev.Type, body); err != nil {
				t.Errorf("delivery: %v", err)
			}
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			got <- struct{}{}
			return nil
		}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	out, err := lipaCLI("apps", "set-webhook", name, srv.URL+"/lipa", "--json")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	secret = []byte(jsonField(t, out, "webhook_secret"))
	mu.Unlock()

	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivery within 15 s")
	}
	mu.Lock()
	ev := events[0]
	mu.Unlock()
	if ev.Type != client.EventPaymentSucceeded || ev.Payment.ID != push.PaymentID || !strings.HasPrefix(ev.ID, "evt_") {
		t.Errorf("delivery: got %+v, want payment.succeeded of %s", ev, push.PaymentID)
	}

	// A forged delivery.
	body := []byte(`{"id":"evt_forged","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_x"}}`)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/lipa", bytes.NewReader(body))
	req.Header.Set(webhook.HeaderName, webhook.Sign([]byte("whsec_wrong"), time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged delivery: got %d, want 400", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		if e.ID == "evt_forged" {
			t.Errorf("forged delivery reached the handler")
		}
	}
}

// TestParseWebhook: signatures are checked with the webhook package's
// rules.
func TestParseWebhook(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"id":"evt_1","type":"payment.failed","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_1","status":"FAILED","amount":100.5,"failure_reason":"insufficient_funds","claimed_at":null}}`)
	sent := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	header := webhook.Sign(secret, sent, body)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"fresh", header, body, secret, sent.Add(time.Minute), nil},
		{"replayed an hour later", header, body, secret, sent.Add(time.Hour), webhook.ErrTooOld},
		{"tampered body", header, bytes.Replace(body, []byte("100.5"), []byte("1000"), 1), secret, sent, webhook.ErrNoMatch},
		{"other secret", header, body, []byte("whsec_other"), sent, webhook.ErrNoMatch},
		{"no header", "", body, secret, sent, webhook.ErrMissingHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := client.ParseWebhook(tc.header, tc.body, tc.secret, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == nil && (ev.ID != "evt_1" || ev.Type != client.EventPaymentFailed || ev.Payment.Amount != 10050 ||
				ev.Payment.FailureReason != "insufficient_funds" || !ev.Payment.ClaimedAt.IsZero()) {
				t.Errorf("got %+v, want evt_1 payment.failed of KES 100.50", ev)
			}
		})
	}
}

// TestServiceEndpoints: Health, Ready and OpenAPI need no key.
func TestServiceEndpoints(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "")
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: got %v, want nil", err)
	}
	if v, err := c.Ready(ctx); err != nil || v == "" {
		t.Errorf("Ready: got %q, %v, want a version", v, err)
	}
	doc, err := c.OpenAPI(ctx)
	if err != nil || !bytes.Contains(doc, []byte(`"openapi": "3.1.0"`)) {
		t.Errorf("OpenAPI: got %.80s, %v, want the 3.1 document", doc, err)
	}
}

// TestNew refuses base URLs that are not absolute http(s) URLs.
func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8000", "ftp://lipa.example.com", "http://"} {
		if _, err := client.New(u, "k"); err == nil {
			t.Errorf("New(%q): got nil error, want one", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8000", "https://lipa.example.com/", "https://example.com/lipa/"} {
		if _, err := client.New(u, "k"); err != nil {
			t.Errorf("New(%q): got %v, want nil", u, err)
		}
	}
}

// TestNoRepeatOfAnswers: an error answer is returned at once, never sent
// again; a network failure of a read is repeated WithRetries times.
func TestNoRepeatOfAnswers(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":"rate_limited","message":"too many requests","details":{"retry_after":7}}}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "k")
	_, err := c.Payment(context.Background(), "pay_1")
	var le *client.Error
	if !errors.As(err, &le) || !errors.Is(err, client.ErrRateLimited) || le.RetryAfter != 7*time.Second {
		t.Errorf("got %#v, want rate_limited with RetryAfter 7s", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("requests sent: got %d, want 1", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	defer ln.Close()
	c, _ = client.New("http://"+ln.Addr().String(), "k", client.WithRetries(3))
	if _, err := c.Payment(context.Background(), "pay_1"); err == nil || errors.As(err, &le) {
		t.Errorf("no answer: got %v, want a network error", err)
	}
	if n := accepted.Load(); n != 4 {
		t.Errorf("attempts: got %d, want 4 (1 + 3 retries)", n)
	}
}
