package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// The payment lifecycle (issue 4), end to end: the real service started
// in-process on a free loopback port, real HTTP, and a real Daraja
// simulator, either the built-in one or one of the test's own on an
// httptest server (MPESA_BASE_URL) when the test needs to watch it.

// lcSim is a Daraja simulator run by the test on its own httptest server,
// so that the test can count what reaches it.
type lcSim struct {
	*darajasim.Server
	URL     string
	oauth   atomic.Int64 // OAuth token requests received
	queries atomic.Int64 // STK push queries received

	// hook, when set, runs on every request before the simulator sees it.
	hook atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

// startLCSim starts a simulator configured by cfg on a loopback httptest
// server, closed at cleanup.
func startLCSim(t *testing.T, cfg darajasim.Config) *lcSim {
	t.Helper()
	s := &lcSim{Server: darajasim.New(cfg)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/v1/generate":
			s.oauth.Add(1)
		case "/mpesa/stkpushquery/v1/query":
			s.queries.Add(1)
		}
		if h := s.hook.Load(); h != nil && (*h)(w, r) {
			return
		}
		s.Server.ServeHTTP(w, r)
	}))
	s.URL = srv.URL
	t.Cleanup(func() {
		s.Server.Close() // releases pushes held open by FaultNoAnswer
		srv.Close()
	})
	return s
}

// lcEnv returns the environment every lifecycle service runs with, plus
// extra.
func lcEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"MPESA_ENVIRONMENT":               "simulator",
		"MPESA_ALLOW_TOKENLESS_CALLBACKS": "true",
	}
	maps.Copy(env, extra)
	return env
}

// lcPushWithKey pushes body raw as the app with apiKey, with the
// Idempotency-Key idemKey: the idempotency tests compare whole answers,
// bytes and headers, which the typed client does not show.
func lcPushWithKey(t *testing.T, svc *testService, apiKey, idemKey string, body any) apiResponse {
	t.Helper()
	return svc.raw(t, http.MethodPost, "/api/stk-push/", http.Header{"X-Api-Key": {apiKey}, "Idempotency-Key": {idemKey}}, body)
}

// lcCallback is an STK callback as Safaricom sends it (docs/daraja.md
// "STK callback"): ResultCode 0 carries the metadata, any other code none.
func lcCallback(checkoutID, merchantID string, resultCode int, amount int64, receipt, phone string) map[string]any {
	cb := map[string]any{
		"MerchantRequestID": merchantID, "CheckoutRequestID": checkoutID, "ResultCode": resultCode,
		"ResultDesc": "Request cancelled by user",
	}
	if resultCode == 0 {
		cb["ResultDesc"] = "The service request is processed successfully."
		cb["CallbackMetadata"] = map[string]any{"Item": []map[string]any{
			{"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
			{"Name": "Balance"}, {"Name": "TransactionDate", "Value": json.Number("20261129101500")},
			{"Name": "PhoneNumber", "Value": json.Number(phone)},
		}}
	}
	return map[string]any{"Body": map[string]any{"stkCallback": cb}}
}

// postCallback posts an STK callback to the service, which must
// acknowledge it with 200 and ResultCode 0.
func (s *testService) postCallback(t *testing.T, cb map[string]any) {
	t.Helper()
	r := s.raw(t, http.MethodPost, "/api/mpesa/stk-callback/", nil, cb)
	if r.Status != http.StatusOK || jsonAt(r.Body, "ResultCode") != float64(0) {
		t.Fatalf("POST /api/mpesa/stk-callback/: got %d %s, want 200 with ResultCode 0", r.Status, r.Raw)
	}
}

// paymentsOf returns the payments to phone (all when phone is "") that the
// app with key lists (GET /api/payments/, through the client).
func (s *testService) paymentsOf(t *testing.T, key, phone string) []client.Payment {
	t.Helper()
	var out []client.Payment
	for p, err := range s.appClient(t, key).Payments(context.Background(), client.ListQuery{Limit: 200}) {
		if err != nil {
			t.Fatalf("GET /api/payments/: %v", err)
		}
		if phone == "" || p.PhoneNumber == phone {
			out = append(out, p)
		}
	}
	return out
}

// logNames reports whether some line of the service's log names the
// payment.
func (s *testService) logNames(t *testing.T, paymentID string) bool {
	t.Helper()
	for _, l := range s.logLines(t) {
		if l["payment_id"] == paymentID {
			return true
		}
	}
	return false
}

// checkNoPanic fails the test when the service's log mentions a panic.
func (s *testService) checkNoPanic(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatalf("read LOG_FILE: %v", err)
	}
	if bytes.Contains(bytes.ToLower(data), []byte("panic")) {
		t.Errorf("LOG_FILE: got a line mentioning a panic, want none:\n%s", data)
	}
}

// TestLifecycleIdempotencyKey: an Idempotency-Key makes a push safe to
// repeat: the same request gets the first answer byte for byte and sends no
// second prompt, even when the repeats arrive at once; another request under
// the key is refused; keys belong to one app; an error answer is replayed
// too.
func TestLifecycleIdempotencyKey(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// No callback during the test: the first push stays PENDING, so a
		// repeat also proves the key passes the one-prompt-per-phone rule.
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL}))
		shop := svc.createApp(t, "shop")
		school := svc.createApp(t, "school")

		t.Run("sequential repeat", func(t *testing.T) {
			phone := freshPhone()
			body := map[string]any{"phone_number": phone, "amount": 10, "reference": freshRef()}
			first := lcPushWithKey(t, svc, shop, "order-1", body)
			wantStatus(t, "first push", first, http.StatusOK)
			if got := first.Header.Get("Idempotent-Replayed"); got != "" {
				t.Errorf("first push: got Idempotent-Replayed %q, want none", got)
			}
			second := lcPushWithKey(t, svc, shop, "order-1", body)
			wantStatus(t, "repeated push", second, http.StatusOK)
			if got := second.Header.Get("Idempotent-Replayed"); got != "true" {
				t.Errorf("repeated push: got Idempotent-Replayed %q, want \"true\"", got)
			}
			if got, want := jsonStr(second.Body, "payment_id"), jsonStr(first.Body, "payment_id"); got != want {
				t.Errorf("repeated push: got payment_id %q, want the first's %q", got, want)
			}
			if !bytes.Equal(second.Raw, first.Raw) {
				t.Errorf("repeated push: got body %s, want the first answer %s", second.Raw, first.Raw)
			}
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
			if got := svc.paymentsOf(t, shop, phone); len(got) != 1 {
				t.Errorf("payments to %s: got %d, want 1", phone, len(got))
			}
		})

		t.Run("concurrent repeats", func(t *testing.T) {
			phone := freshPhone()
			body := map[string]any{"phone_number": phone, "amount": 25, "reference": freshRef()}
			const n = 10
			answers := make([]apiResponse, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i], errs[i] = svc.send(http.MethodPost, "/api/stk-push/",
						http.Header{"X-Api-Key": {shop}, "Idempotency-Key": {"order-concurrent"}}, body)
				}()
			}
			close(start)
			wg.Wait()
			ids := map[string]int{}
			replayed := 0
			for i, a := range answers {
				if errs[i] != nil {
					t.Fatalf("push %d: %v", i, errs[i])
				}
				if a.Status != http.StatusOK {
					t.Errorf("push %d: got %d %s, want 200", i, a.Status, a.Raw)
				}
				ids[jsonStr(a.Body, "payment_id")]++
				if a.Header.Get("Idempotent-Replayed") == "true" {
					replayed++
				}
			}
			if len(ids) != 1 {
				t.Errorf("payment_ids answered: got %v, want one for all %d requests", ids, n)
			}
			if replayed != n-1 {
				t.Errorf("answers marked Idempotent-Replayed: got %d, want %d", replayed, n-1)
			}
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
			if got := svc.paymentsOf(t, shop, phone); len(got) != 1 {
				t.Errorf("payments to %s: got %d, want 1", phone, len(got))
			}
		})

		t.Run("same key, other amount", func(t *testing.T) {
			phone := freshPhone()
			ref := freshRef()
			first := lcPushWithKey(t, svc, shop, "order-2", map[string]any{"phone_number": phone, "amount": 10, "reference": ref})
			wantStatus(t, "first push", first, http.StatusOK)
			other := lcPushWithKey(t, svc, shop, "order-2", map[string]any{"phone_number": phone, "amount": 11, "reference": ref})
			checkErrorShape(t, "push reusing the key", other)
			wantError(t, "push reusing the key for another amount", other, http.StatusUnprocessableEntity, "idempotency_key_reused")
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
			if got := svc.paymentsOf(t, shop, phone); len(got) != 1 {
				t.Errorf("payments to %s: got %d, want 1", phone, len(got))
			}
		})

		t.Run("a refused request under the key leaves the first answer", func(t *testing.T) {
			phone := freshPhone()
			body := map[string]any{"phone_number": phone, "amount": 12, "reference": freshRef()}
			first := lcPushWithKey(t, svc, shop, "order-kept", body)
			wantStatus(t, "first push", first, http.StatusOK)
			// The same key with a body that does not even validate.
			bad := lcPushWithKey(t, svc, shop, "order-kept", map[string]any{"phone_number": "12345", "amount": 12, "reference": freshRef()})
			checkErrorShape(t, "push with an invalid body under the key", bad)
			if bad.Status != http.StatusBadRequest && bad.Status != http.StatusUnprocessableEntity {
				t.Errorf("push with an invalid body under the key: got %d %s, want 400 or 422", bad.Status, bad.Raw)
			}
			again := lcPushWithKey(t, svc, shop, "order-kept", body)
			if again.Status != http.StatusOK || !bytes.Equal(again.Raw, first.Raw) {
				t.Errorf("repeat of the first request: got %d %s, want the first answer 200 %s", again.Status, again.Raw, first.Raw)
			}
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
		})

		t.Run("keys belong to one app", func(t *testing.T) {
			a := lcPushWithKey(t, svc, shop, "order-3", map[string]any{"phone_number": freshPhone(), "amount": 30, "reference": freshRef()})
			wantStatus(t, "shop's push", a, http.StatusOK)
			// Another app may use the same key for a request of its own.
			phone := freshPhone()
			body := map[string]any{"phone_number": phone, "amount": 31, "reference": freshRef()}
			b := lcPushWithKey(t, svc, school, "order-3", body)
			wantStatus(t, "school's push with the shop's key", b, http.StatusOK)
			if b.Header.Get("Idempotent-Replayed") != "" || jsonStr(b.Body, "payment_id") == jsonStr(a.Body, "payment_id") {
				t.Errorf("school's push: got payment_id %q (Idempotent-Replayed %q), want a payment of its own, not the shop's %q",
					jsonStr(b.Body, "payment_id"), b.Header.Get("Idempotent-Replayed"), jsonStr(a.Body, "payment_id"))
			}
			again := lcPushWithKey(t, svc, school, "order-3", body)
			if again.Status != http.StatusOK || jsonStr(again.Body, "payment_id") != jsonStr(b.Body, "payment_id") {
				t.Errorf("school's repeat: got %d %s, want 200 with payment_id %q", again.Status, again.Raw, jsonStr(b.Body, "payment_id"))
			}
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes sent to Daraja for the school: got %d, want 1", got)
			}
		})

		t.Run("error answer replayed", func(t *testing.T) {
			body := map[string]any{"phone_number": darajasim.PhoneSubscriberLocked, "amount": 10, "reference": freshRef()}
			first := lcPushWithKey(t, svc, shop, "order-busy", body)
			wantError(t, "push to a locked subscriber", first, http.StatusConflict, "subscriber_busy")
			if jsonStr(first.Body, "error", "details", "payment_id") == "" {
				t.Errorf("push to a locked subscriber: got %s, want details.payment_id", first.Raw)
			}
			second := lcPushWithKey(t, svc, shop, "order-busy", body)
			if second.Status != http.StatusConflict || !bytes.Equal(second.Raw, first.Raw) {
				t.Errorf("repeat: got %d %s, want the first answer %d %s", second.Status, second.Raw, first.Status, first.Raw)
			}
			if got := second.Header.Get("Idempotent-Replayed"); got != "true" {
				t.Errorf("repeat: got Idempotent-Replayed %q, want \"true\"", got)
			}
			if got := sim.PushCount(darajasim.PhoneSubscriberLocked); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
		})
	})
}

// TestLifecycleIdempotencyKeyPhoneBudget: LIPA_PHONE_PUSHES_PER_HOUR
// limits the STK pushes sent to one phone whether or not the app sends
// Idempotency-Keys: a new key is a new push and spends the budget; only a
// repeat of a key is free (it sends nothing).
func TestLifecycleIdempotencyKeyPhoneBudget(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL,
			"LIPA_PHONE_PUSHES_PER_HOUR": "1", "LIPA_PROMPT_LIFETIME": "1ms"}))
		c := svc.appClient(t, svc.createApp(t, "shop"))
		ctx := context.Background()

		// Without keys, the budget holds. (The client always sends a key:
		// a fresh one per push is a push without a key of the app's own.)
		plain := freshPhone()
		pushOK(t, c, plain, 10, freshRef())
		if _, err := c.Push(ctx, client.PushRequest{PhoneNumber: plain, Amount: client.Shillings(11), Reference: freshRef()}); !errors.Is(err, client.ErrPhoneRateLimited) {
			t.Errorf("second push to a phone without a key: got %v, want 429 phone_rate_limited", err)
		}

		// With keys: a repeat is free, a new key is a new push.
		phone := freshPhone()
		req := client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(10), Reference: freshRef(), IdempotencyKey: "budget-1"}
		first, err := c.Push(ctx, req)
		if err != nil {
			t.Fatalf("first push: %v", err)
		}
		if r, err := c.Push(ctx, req); err != nil || r.PaymentID != first.PaymentID {
			t.Errorf("repeat of the first key: got %+v (error %v), want its first answer", r, err)
		}
		_, err = c.Push(ctx, client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(12), Reference: freshRef(), IdempotencyKey: "budget-2"})
		if le := (*client.Error)(nil); !errors.As(err, &le) || le.StatusCode != http.StatusTooManyRequests || le.Code != "phone_rate_limited" {
			t.Errorf("second push to the phone, with a new key: got %v, want 429 phone_rate_limited", err)
		}
		if got := sim.PushCount(phone); got != 1 {
			t.Errorf("STK pushes sent to the phone: got %d, want 1 (LIPA_PHONE_PUSHES_PER_HOUR=1)", got)
		}
	})
}

// TestLifecyclePromptPerPhone: a push to a phone with a PENDING push is
// refused at once with subscriber_busy, without calling Daraja or storing a
// payment; once the first push settles, the phone is free again.
func TestLifecyclePromptPerPhone(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// The test pays the first push with a callback of its own, which the
		// simulator never learns of: its subscriber lock stays off so that
		// Lipa's own per-phone rule is what is tested.
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL}))
		key := svc.createApp(t, "shop")
		c := svc.appClient(t, key)
		phone := freshPhone()

		first := pushOK(t, c, phone, 10, freshRef())
		_, err := c.Push(context.Background(), client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(20), Reference: freshRef()})
		wantClientError(t, "second push while the first is PENDING", err, http.StatusConflict, "subscriber_busy")
		if got := sim.PushCount(phone); got != 1 {
			t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
		}
		if got := svc.paymentsOf(t, key, phone); len(got) != 1 {
			t.Errorf("payments to %s: got %d, want 1 (the refused push stores nothing)", phone, len(got))
		}
		// Another phone is not affected.
		pushOK(t, c, freshPhone(), 10, freshRef())

		// Pushes to one phone arriving at once: one prompt.
		busy := freshPhone()
		const n = 8
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := c.Push(context.Background(), client.PushRequest{PhoneNumber: busy, Amount: client.Shillings(int64(10 + i)), Reference: freshRef()})
				var le *client.Error
				switch {
				case err == nil:
					statuses[i] = http.StatusOK
				case errors.As(err, &le):
					statuses[i], codes[i] = le.StatusCode, le.Code
				default:
					t.Errorf("concurrent push %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		accepted := 0
		for i := range n {
			switch {
			case statuses[i] == http.StatusOK:
				accepted++
			case statuses[i] != http.StatusConflict || codes[i] != "subscriber_busy":
				t.Errorf("concurrent push %d: got %d %q, want 200 or 409 subscriber_busy", i, statuses[i], codes[i])
			}
		}
		if accepted != 1 || sim.PushCount(busy) != 1 {
			t.Errorf("concurrent pushes to one phone: got %d accepted and %d sent to Daraja, want 1 and 1", accepted, sim.PushCount(busy))
		}

		// The customer pays: the phone is free again.
		svc.postCallback(t, lcCallback(first.CheckoutRequestID, first.MerchantRequestID, 0, 10, "UKPROMPT01", phone))
		waitPayment(t, c, first.PaymentID, client.StatusSuccess)
		pushOK(t, c, phone, 30, freshRef())
		if got := sim.PushCount(phone); got != 2 {
			t.Errorf("STK pushes sent to Daraja after the first settled: got %d, want 2", got)
		}
	})
}

// TestLifecyclePromptLifetime: a PENDING push older than
// LIPA_PROMPT_LIFETIME no longer keeps its phone busy.
func TestLifecyclePromptLifetime(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// A 1ms prompt lifetime stands for a prompt that has expired at
		// Daraja too, which a simulator whose prompts last an hour cannot
		// model: its subscriber lock stays off.
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL, "LIPA_PROMPT_LIFETIME": "1ms"}))
		c := svc.appClient(t, svc.createApp(t, "shop"))
		phone := freshPhone()
		a := pushOK(t, c, phone, 10, freshRef())
		b := pushOK(t, c, phone, 20, freshRef())
		if a.PaymentID == b.PaymentID {
			t.Errorf("second push: got the first's payment_id %s, want a new payment", b.PaymentID)
		}
		if got := sim.PushCount(phone); got != 2 {
			t.Errorf("STK pushes sent to Daraja: got %d, want 2", got)
		}
	})
}

// TestLifecycleReconcileByQuery: a push whose callback never comes is
// settled by serve's background reconciliation with an STK push query: a
// SUCCESS without a receipt, resolved_by "query", claimable by payment_id
// and by reference; a late callback then attaches the receipt.
func TestLifecycleReconcileByQuery(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{
			"LIPA_RECONCILE_AFTER": "200ms", // a pass every second
			"LIPA_PROMPT_LIFETIME": "1ms",   // two pushes to the one no-callback number
		}))
		c := svc.appClient(t, svc.createApp(t, "shop"))
		ctx := context.Background()
		refA, refB := freshRef(), freshRef()
		// One after the other: Daraja refuses a push to a phone whose prompt
		// is still open, and the query says "0" only once it has closed.
		var pushes []*client.PushResult
		for i, ref := range []string{refA, refB} {
			r := pushOK(t, c, darajasim.PhoneNoCallback, int64(10*(i+1)), ref)
			pushes = append(pushes, r)
			id := r.PaymentID
			p := waitPayment(t, c, id, client.StatusSuccess)
			if p.ResolvedBy != "query" || p.MpesaReceiptNumber != "" || p.ResultCode != "0" {
				t.Errorf("payment %s settled by the query: got resolved_by %q receipt %q result_code %q, want \"query\", null, \"0\"",
					id, p.ResolvedBy, p.MpesaReceiptNumber, p.ResultCode)
			}
		}
		a, b := pushes[0], pushes[1]
		idA, idB := a.PaymentID, b.PaymentID
		if v, err := c.Verify(ctx, client.VerifyQuery{Reference: refA}); err != nil || !v.Paid || v.Receipt != "" {
			t.Errorf("verify by reference: got %+v (error %v), want 200 paid true receipt null", v, err)
		}
		if _, err := c.Claim(ctx, client.ClaimRequest{PaymentID: idA}); err != nil {
			t.Errorf("claim by payment_id: got %v, want 200", err)
		}
		if cl, err := c.Claim(ctx, client.ClaimRequest{Reference: refB, Amount: client.Shillings(20)}); err != nil || cl.PaymentID != idB {
			t.Errorf("claim by reference: got %+v (error %v), want 200 for %s", cl, err, idB)
		}

		// The callback comes late after all, with the receipt.
		svc.postCallback(t, lcCallback(a.CheckoutRequestID, a.MerchantRequestID, 0, 10, "UKLATE0001", darajasim.PhoneNoCallback))
		p := paymentOK(t, c, idA)
		if p.Status != client.StatusSuccess || p.MpesaReceiptNumber != "UKLATE0001" || !p.Claimed {
			t.Errorf("after the late callback: got status %v receipt %q claimed %v, want SUCCESS UKLATE0001 true",
				p.Status, p.MpesaReceiptNumber, p.Claimed)
		}
		if v, err := c.Verify(ctx, client.VerifyQuery{Receipt: "UKLATE0001"}); err != nil || v.PaymentID != idA {
			t.Errorf("verify by the late receipt: got %+v (error %v), want 200 for %s", v, err, idA)
		}
	})
}

// TestLifecycleReconcilePendingExpires: while Daraja's STK push query keeps
// answering "still being processed" (in each of its three shapes), the
// payment stays PENDING pass after pass, then expires: FAILED "expired",
// resolved_by "expiry".
func TestLifecycleReconcilePendingExpires(t *testing.T) {
	for _, style := range []string{darajasim.QueryPendingError, darajasim.QueryPending4999, darajasim.QueryPendingEmpty} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour, QueryPendingStyle: style})
				svc := startTestService(t, databaseURL, lcEnv(map[string]string{
					"MPESA_BASE_URL":       sim.URL,
					"LIPA_RECONCILE_AFTER": "200ms", // a pass every second
					"LIPA_PENDING_EXPIRY":  "4s",
				}))
				c := svc.appClient(t, svc.createApp(t, "shop"))
				id := pushOK(t, c, freshPhone(), 10, freshRef()).PaymentID
				p := waitPayment(t, c, id, client.StatusFailed)
				if p.FailureReason != "expired" || p.ResolvedBy != "expiry" {
					t.Errorf("payment: got failure_reason %v resolved_by %v, want expired, expiry (payment %+v)", p.FailureReason, p.ResolvedBy, p)
				}
				deferred := 0
				for _, l := range svc.logLines(t) {
					if l["payment_id"] == id && l["msg"] == "pending payment deferred" {
						deferred++
					}
				}
				if deferred < 2 {
					t.Errorf("reconciliation passes that left the payment PENDING: got %d, want at least 2", deferred)
				}
			})
		})
	}
}

// TestLifecycleReconcileCommand: `lipa reconcile` runs one pass by hand
// against the configured Daraja.
func TestLifecycleReconcileCommand(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := startLCSim(t, darajasim.Config{}) // settles at once; no callback for this number
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL}))
		c := svc.appClient(t, svc.createApp(t, "shop"))
		id := pushOK(t, c, darajasim.PhoneNoCallback, 10, freshRef()).PaymentID
		lcWaitQueryFinal(t, sim, paymentOK(t, c, id).CheckoutRequestID)

		env := maps.Clone(svc.Env)
		env["LIPA_RECONCILE_AFTER"] = "1ms"
		code, stdout, stderr := runCLI(t, env, "reconcile")
		if code != 0 || !strings.Contains(stdout, "1 succeeded") {
			t.Fatalf("lipa reconcile: got exit code %d, stdout %q, stderr %q, want 0 and 1 succeeded", code, stdout, stderr)
		}
		p := paymentOK(t, c, id)
		if p.Status != client.StatusSuccess || p.ResolvedBy != "query" {
			t.Errorf("payment after lipa reconcile: got %v resolved_by %v, want SUCCESS by query", p.Status, p.ResolvedBy)
		}
	})
}

// lcWaitQueryFinal waits until the simulator's STK push query reports a
// final result for the push crid, asking it with a Daraja client of the
// test's own. That client talks to the simulator, not to Lipa, so it has
// no OpenAPI-checking transport.
func lcWaitQueryFinal(t *testing.T, sim *lcSim, crid string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, err := daraja.New(daraja.Config{BaseURL: sim.URL, ConsumerKey: "test", ConsumerSecret: "test", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		q, err := c.STKQuery(context.Background(), darajasim.SandboxShortCode, darajasim.SandboxPasskey, crid)
		if err == nil && !q.Pending() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("STK push query of %s: got %v %v, want a final result", crid, q, err)
		}
		time.Sleep(e2ePollInterval)
	}
}

// TestLifecycleReconcileReplicas: two services on one database reconcile
// the same PENDING payments; each check of a payment is made by one of
// them (one STK push query, one attempt number), never by both.
func TestLifecycleReconcileReplicas(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour})
		// Daraja takes a moment to answer each query, so that the two
		// replicas' passes overlap.
		slow := func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/mpesa/stkpushquery/v1/query" {
				time.Sleep(30 * time.Millisecond)
			}
			return false
		}
		sim.hook.Store(&slow)
		env := lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL, "LIPA_RECONCILE_AFTER": "200ms", "LIPA_PENDING_EXPIRY": "4s"})
		a := startTestService(t, databaseURL, env)
		b := startTestService(t, databaseURL, env)
		key := a.createApp(t, "shop")
		ca, cb := a.appClient(t, key), b.appClient(t, key)
		var ids []string
		for range 10 {
			ids = append(ids, pushOK(t, ca, freshPhone(), 10, freshRef()).PaymentID)
		}
		for _, id := range ids {
			if p := waitPayment(t, cb, id, client.StatusFailed); p.FailureReason != "expired" {
				t.Errorf("payment %s: got failure_reason %v, want expired", id, p.FailureReason)
			}
		}
		attempts := map[string][]float64{}
		deferrals := 0
		for _, svc := range []*testService{a, b} {
			for _, l := range svc.logLines(t) {
				if l["msg"] == "pending payment expired" {
					deferrals++ // the pass that expires a payment asks Daraja once more first
					continue
				}
				if l["msg"] != "pending payment deferred" {
					continue
				}
				id := jsonStr(l, "payment_id")
				n, _ := l["attempt"].(float64)
				attempts[id] = append(attempts[id], n)
				deferrals++
			}
		}
		for _, id := range ids {
			seen := map[float64]bool{}
			for _, n := range attempts[id] {
				if seen[n] {
					t.Errorf("payment %s: got check attempt %v made twice (attempts %v), want each made by one replica", id, n, attempts[id])
				}
				seen[n] = true
			}
		}
		if got := sim.queries.Load(); got != int64(deferrals) {
			t.Errorf("STK push queries: got %d, want %d (one per deferred or expiring check)", got, deferrals)
		}
	})
}

// TestLifecycleDarajaFaults pushes to each of the simulator's fault numbers
// and checks what the app is told, what is stored, the log, and that no STK
// push reached Daraja twice.
func TestLifecycleDarajaFaults(t *testing.T) {
	cases := []struct {
		name   string
		phone  string
		status int                  // HTTP status the app gets
		code   string               // its error code; "" for 200
		want   client.Status        // the payment's status right after the answer
		reason client.FailureReason // its failure_reason, for FAILED
		pushes int                  // push requests that may reach Daraja
	}{
		{"no answer", darajasim.PhoneNoAnswer, http.StatusGatewayTimeout, "daraja_timeout", "PENDING", "", 1},
		{"503 html", darajasim.PhoneUnavailable, http.StatusBadGateway, "daraja_error", "PENDING", "", 1},
		{"500 html", darajasim.PhoneServerError, http.StatusBadGateway, "daraja_error", "PENDING", "", 1},
		{"429", darajasim.PhoneTooManyRequests, http.StatusServiceUnavailable, "daraja_rate_limited", "FAILED", "rate_limited", 1},
		{"429 spike-arrest fault", darajasim.PhoneGatewayLimited, http.StatusServiceUnavailable, "daraja_rate_limited", "FAILED", "rate_limited", 1},
		{"malformed answer", darajasim.PhoneMalformedAnswer, http.StatusBadGateway, "daraja_error", "PENDING", "", 1},
		{"spike arrest", darajasim.PhoneSpikeArrest, http.StatusServiceUnavailable, "daraja_rate_limited", "FAILED", "rate_limited", 1},
		{"token expired", darajasim.PhoneTokenExpired, http.StatusOK, "", "PENDING", "", 2},
		{"subscriber locked", darajasim.PhoneSubscriberLocked, http.StatusConflict, "subscriber_busy", "FAILED", "subscriber_busy", 1},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := startLCSim(t, darajasim.Config{CallbackDelay: 100 * time.Millisecond})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL}))
		key := svc.createApp(t, "shop")
		// A short Daraja timeout for the push nobody answers, on a service
		// of its own so that no other call can run out of time.
		impatient := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL, "MPESA_TIMEOUT": "300ms"}))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				svc := svc
				if c.phone == darajasim.PhoneNoAnswer {
					svc = impatient
				}
				ac := svc.appClient(t, key)
				r, err := ac.Push(context.Background(), client.PushRequest{PhoneNumber: c.phone, Amount: client.Shillings(10), Reference: freshRef()})
				var id string
				if c.code == "" {
					if err != nil {
						t.Fatalf("push: got %v, want %d", err, c.status)
					}
					id = r.PaymentID
				} else {
					id = wantClientError(t, "push", err, c.status, c.code).PaymentID()
				}
				if id == "" {
					t.Fatalf("push: got %+v (error %v), want the payment_id", r, err)
				}
				p := paymentOK(t, ac, id)
				if p.Status != c.want && !(c.code == "" && p.Status == client.StatusSuccess) {
					t.Errorf("payment: got status %v, want %s (payment %+v)", p.Status, c.want, p)
				}
				if c.reason != "" && p.FailureReason != c.reason {
					t.Errorf("payment: got failure_reason %v, want %s", p.FailureReason, c.reason)
				}
				if got := sim.PushCount(c.phone); got > c.pushes {
					t.Errorf("STK push requests that reached Daraja: got %d, want at most %d", got, c.pushes)
				}
				if !svc.logNames(t, id) {
					t.Errorf("LOG_FILE: got no line naming payment %s, want one", id)
				}
				if c.code == "" {
					waitPayment(t, ac, id, client.StatusSuccess)
				}
				svc.checkNoPanic(t)
			})
		}

		t.Run("malformed answer settled by its callback", func(t *testing.T) {
			// Daraja accepted the push; its callback names a
			// CheckoutRequestID Lipa could not read, yet finds the payment
			// (the one PENDING push to that phone for that amount).
			ps := svc.paymentsOf(t, key, darajasim.PhoneMalformedAnswer)
			if len(ps) != 1 {
				t.Fatalf("payments to %s: got %d, want 1", darajasim.PhoneMalformedAnswer, len(ps))
			}
			p := waitPayment(t, svc.appClient(t, key), ps[0].ID, client.StatusSuccess)
			if p.MpesaReceiptNumber == "" || !strings.HasSuffix(p.CheckoutRequestID, darajasim.PhoneMalformedAnswer[3:]) {
				t.Errorf("payment: got receipt %q checkout_request_id %q, want the simulator's", p.MpesaReceiptNumber, p.CheckoutRequestID)
			}
			if got := sim.PushCount(darajasim.PhoneMalformedAnswer); got != 1 {
				t.Errorf("STK pushes sent to Daraja: got %d, want 1", got)
			}
		})

		t.Run("unmatched callback of the unanswered push matched by an operator", func(t *testing.T) {
			// The push nobody answered is PENDING with no CheckoutRequestID;
			// its failure callback cannot be told apart, so it waits for an
			// operator.
			ps := impatient.paymentsOf(t, key, darajasim.PhoneNoAnswer)
			if len(ps) != 1 || ps[0].Status != client.StatusPending || ps[0].CheckoutRequestID != "" {
				t.Fatalf("payments to %s: got %+v, want one PENDING without a checkout_request_id", darajasim.PhoneNoAnswer, ps)
			}
			id := ps[0].ID
			ic := impatient.appClient(t, key)
			crid := "ws_CO_LOST_" + strings.TrimPrefix(freshRef(), "REF")
			impatient.postCallback(t, lcCallback(crid, "4242-1", 1032, 10, "", darajasim.PhoneNoAnswer))
			inbound := lcWaitUnmatched(t, impatient, func(m map[string]any) bool { return m["checkout_request_id"] == crid })
			if p := paymentOK(t, ic, id); p.Status != client.StatusPending {
				t.Fatalf("payment before the operator matched the callback: got %v, want PENDING", p.Status)
			}
			code, stdout, stderr := runCLI(t, impatient.Env, "callbacks", "match", inbound, id)
			if code != 0 {
				t.Fatalf("lipa callbacks match %s %s: got exit code %d (stdout %q, stderr %q), want 0", inbound, id, code, stdout, stderr)
			}
			p := paymentOK(t, ic, id)
			if p.Status != client.StatusFailed || p.FailureReason != "cancelled_by_user" || p.CheckoutRequestID != crid {
				t.Errorf("payment after matching: got %v %v checkout_request_id %q, want FAILED cancelled_by_user %s",
					p.Status, p.FailureReason, p.CheckoutRequestID, crid)
			}
			lcWaitGone(t, impatient, crid)
		})

		t.Run("tokens revoked between two pushes", func(t *testing.T) {
			c := svc.appClient(t, key)
			pushOK(t, c, freshPhone(), 10, freshRef())
			before := sim.oauth.Load()
			sim.RevokeTokens()
			phone := freshPhone()
			pushOK(t, c, phone, 10, freshRef())
			if got := sim.oauth.Load() - before; got != 1 {
				t.Errorf("token requests after the revocation: got %d, want 1", got)
			}
			if got := sim.PushCount(phone); got != 1 {
				t.Errorf("STK pushes that reached the push handler: got %d, want 1", got)
			}
		})
		svc.checkNoPanic(t)
	})
}

// lcWaitUnmatched polls `lipa callbacks unmatched --json` until it lists a
// callback that match accepts, and returns that callback's ID.
func lcWaitUnmatched(t *testing.T, svc *testService, match func(map[string]any) bool) string {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		code, stdout, stderr := runCLI(t, svc.Env, "callbacks", "unmatched", "--json")
		if code != 0 {
			t.Fatalf("lipa callbacks unmatched --json: got exit code %d (stderr %q), want 0", code, stderr)
		}
		var list []map[string]any
		if err := json.Unmarshal([]byte(stdout), &list); err != nil {
			t.Fatalf("lipa callbacks unmatched --json: got %q, want a JSON array: %v", stdout, err)
		}
		for _, m := range list {
			if match(m) {
				switch id := m["id"].(type) {
				case float64:
					return strconv.FormatInt(int64(id), 10)
				case string:
					return id
				}
				t.Fatalf("lipa callbacks unmatched --json: got id %v, want a number", m["id"])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lipa callbacks unmatched --json: got %s, want the callback listed", stdout)
		}
		time.Sleep(e2ePollInterval)
	}
}

// lcWaitGone checks that `lipa callbacks unmatched --json` no longer lists
// the callback for checkoutRequestID.
func lcWaitGone(t *testing.T, svc *testService, checkoutRequestID string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, svc.Env, "callbacks", "unmatched", "--json")
	if code != 0 {
		t.Fatalf("lipa callbacks unmatched --json: got exit code %d (stderr %q), want 0", code, stderr)
	}
	if strings.Contains(stdout, checkoutRequestID) {
		t.Errorf("lipa callbacks unmatched --json: got %s, want the matched callback %s gone", stdout, checkoutRequestID)
	}
}

// TestLifecycleFaultUnreachable: when no connection to Daraja can be made,
// the push was provably not sent: 503 daraja_unreachable, payment FAILED.
func TestLifecycleFaultUnreachable(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": closed}))
		c := svc.appClient(t, svc.createApp(t, "shop"))
		_, err = c.Push(context.Background(), client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef()})
		le := wantClientError(t, "push with Daraja unreachable", err, http.StatusServiceUnavailable, "daraja_unreachable")
		id := le.PaymentID()
		if id == "" {
			t.Fatalf("push: got details %v, want details.payment_id", le.Details)
		}
		p := paymentOK(t, c, id)
		if p.Status != client.StatusFailed || p.FailureReason != "daraja_unreachable" {
			t.Errorf("payment: got status %v failure_reason %v, want FAILED daraja_unreachable", p.Status, p.FailureReason)
		}
		if !svc.logNames(t, id) {
			t.Errorf("LOG_FILE: got no line naming payment %s, want one", id)
		}
		svc.checkNoPanic(t)
	})
}

// TestLifecycleReadyMisconfigured: a push refused for Lipa's own
// configuration (a wrong passkey, a wrong consumer secret) makes /readyz
// answer 503 daraja_misconfigured, until a Daraja call succeeds again.
func TestLifecycleReadyMisconfigured(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string // Lipa's wrong setting
		daraja darajasim.Config  // Daraja, which refuses it
		fixed  darajasim.Config  // Daraja once the operator's fix makes them agree
	}{
		{
			name:   "wrong passkey",
			env:    map[string]string{"MPESA_PASSKEY": "wrong"},
			daraja: darajasim.Config{CallbackDelay: time.Hour},
			fixed:  darajasim.Config{CallbackDelay: time.Hour, ShortCodes: map[string]lipa.Secret{darajasim.SandboxShortCode: "wrong"}},
		},
		{
			name:   "wrong consumer secret",
			env:    map[string]string{"MPESA_CONSUMER_KEY": "shop-app", "MPESA_CONSUMER_SECRET": "wrong"},
			daraja: darajasim.Config{CallbackDelay: time.Hour, ConsumerKey: "shop-app", ConsumerSecret: "right"},
			fixed:  darajasim.Config{CallbackDelay: time.Hour, ConsumerKey: "shop-app", ConsumerSecret: "wrong"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
				sim := startLCSim(t, c.daraja)
				fixed := darajasim.New(c.fixed)
				t.Cleanup(fixed.Close)
				var useFixed atomic.Bool
				hook := func(w http.ResponseWriter, r *http.Request) bool {
					if useFixed.Load() {
						fixed.ServeHTTP(w, r)
						return true
					}
					return false
				}
				sim.hook.Store(&hook)
				env := map[string]string{"MPESA_BASE_URL": sim.URL}
				maps.Copy(env, c.env)
				svc := startTestService(t, databaseURL, lcEnv(env))
				c := svc.appClient(t, svc.createApp(t, "shop"))
				ctx := context.Background()

				if _, err := c.Ready(ctx); err != nil {
					t.Fatalf("/readyz before any Daraja call: got %v, want 200", err)
				}
				_, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef()})
				le := wantClientError(t, "push Daraja refuses for Lipa's configuration", err, http.StatusBadGateway, "daraja_error")
				if id := le.PaymentID(); id == "" {
					t.Errorf("push: got details %v, want details.payment_id", le.Details)
				} else if p := paymentOK(t, c, id); p.Status != client.StatusFailed {
					t.Errorf("payment: got status %v, want FAILED (the push was refused)", p.Status)
				}
				_, err = c.Ready(ctx)
				wantClientError(t, "/readyz after Daraja refused the configuration", err, http.StatusServiceUnavailable, "daraja_misconfigured")
				svc.waitLog(t, "an error-level line about the refusal", func(l map[string]any) bool {
					return l["level"] == "ERROR" && strings.Contains(jsonStr(l, "msg"), "Daraja refused")
				})

				useFixed.Store(true)
				pushOK(t, c, freshPhone(), 10, freshRef())
				if _, err := c.Ready(ctx); err != nil {
					t.Errorf("/readyz after a successful push: got %v, want 200", err)
				}
			})
		})
	}
}

// TestLifecycleCallbackOrder: callbacks delivered twice, out of order,
// before the push's answer is saved, or for unknown payments.
func TestLifecycleCallbackOrder(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := startLCSim(t, darajasim.Config{CallbackDelay: time.Hour})
		svc := startTestService(t, databaseURL, lcEnv(map[string]string{"MPESA_BASE_URL": sim.URL, "LIPA_ADMIN_KEY": "operators-secret"}))
		c := svc.appClient(t, svc.createApp(t, "shop"))

		settled := func(t *testing.T, resultCode int, receipt string) (push *client.PushResult, phone string, p *client.Payment) {
			t.Helper()
			phone = freshPhone()
			push = pushOK(t, c, phone, 40, freshRef())
			svc.postCallback(t, lcCallback(push.CheckoutRequestID, push.MerchantRequestID, resultCode, 40, receipt, phone))
			want := client.StatusSuccess
			if resultCode != 0 {
				want = client.StatusFailed
			}
			return push, phone, waitPayment(t, c, push.PaymentID, want)
		}
		// fields are the payment's fields a late callback must not change.
		fields := func(p *client.Payment) map[string]any {
			return map[string]any{"status": p.Status, "mpesa_receipt_number": p.MpesaReceiptNumber, "failure_reason": p.FailureReason,
				"result_code": p.ResultCode, "resolved_by": p.ResolvedBy, "updated_at": p.UpdatedAt}
		}
		unchanged := func(t *testing.T, id string, before *client.Payment) {
			t.Helper()
			after, was := fields(paymentOK(t, c, id)), fields(before)
			for _, f := range []string{"status", "mpesa_receipt_number", "failure_reason", "result_code", "resolved_by", "updated_at"} {
				if after[f] != was[f] {
					t.Errorf("payment %s: got %s %v, want it unchanged (%v)", id, f, after[f], was[f])
				}
			}
		}

		t.Run("failure after success", func(t *testing.T) {
			push, phone, p := settled(t, 0, "UKORDER001")
			svc.postCallback(t, lcCallback(push.CheckoutRequestID, push.MerchantRequestID, 1032, 40, "", phone))
			unchanged(t, p.ID, p)
		})
		t.Run("success after failure", func(t *testing.T) {
			push, phone, p := settled(t, 1032, "")
			svc.postCallback(t, lcCallback(push.CheckoutRequestID, push.MerchantRequestID, 0, 40, "UKORDER002", phone))
			unchanged(t, p.ID, p)
			if v, err := c.Verify(context.Background(), client.VerifyQuery{Receipt: "UKORDER002"}); !errors.Is(err, client.ErrPaymentNotFound) {
				t.Errorf("verify the contradicting callback's receipt: got %+v (error %v), want 404", v, err)
			}
		})
		t.Run("success delivered twice", func(t *testing.T) {
			push, phone, p := settled(t, 0, "UKORDER003")
			svc.postCallback(t, lcCallback(push.CheckoutRequestID, push.MerchantRequestID, 0, 40, "UKORDER003", phone))
			unchanged(t, p.ID, p)
		})
		t.Run("callback before the push's answer is saved", func(t *testing.T) {
			phone := freshPhone()
			hook := func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/mpesa/stkpush/v1/processrequest" {
					return false
				}
				rec := httptest.NewRecorder()
				sim.Server.ServeHTTP(rec, r)
				var ans struct{ CheckoutRequestID, MerchantRequestID string }
				json.Unmarshal(rec.Body.Bytes(), &ans)
				cb, _ := json.Marshal(lcCallback(ans.CheckoutRequestID, ans.MerchantRequestID, 0, 40, "UKEARLY002", phone))
				if r, err := svc.send(http.MethodPost, "/api/mpesa/stk-callback/", nil, cb); err != nil {
					t.Errorf("early callback: %v", err)
				} else if r.Status != http.StatusOK {
					t.Errorf("early callback: got status %d, want 200", r.Status)
				}
				maps.Copy(w.Header(), rec.Header())
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return true
			}
			sim.hook.Store(&hook)
			push := pushOK(t, c, phone, 40, freshRef())
			sim.hook.Store(nil)
			p := paymentOK(t, c, push.PaymentID)
			if p.Status != client.StatusSuccess || p.MpesaReceiptNumber != "UKEARLY002" {
				t.Errorf("payment whose callback beat the push's answer: got status %v receipt %q, want SUCCESS UKEARLY002", p.Status, p.MpesaReceiptNumber)
			}
		})
		t.Run("unknown CheckoutRequestID", func(t *testing.T) {
			crid := "ws_CO_UNKNOWN_" + strings.TrimPrefix(freshRef(), "REF")
			svc.postCallback(t, lcCallback(crid, "1-2-3", 0, 55, "UKUNKNOWN1", freshPhone()))
			lcWaitUnmatched(t, svc, func(m map[string]any) bool { return m["checkout_request_id"] == crid })

			admin := func(adminKey string) apiResponse {
				t.Helper()
				h := http.Header{}
				if adminKey != "" {
					h.Set("X-Admin-Key", adminKey)
				}
				r, err := svc.send(http.MethodGet, "/api/admin/callbacks/unmatched/", h, nil)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			r := admin("operators-secret")
			wantStatus(t, "GET /api/admin/callbacks/unmatched/", r, http.StatusOK)
			found := false
			list, _ := r.Body["callbacks"].([]any)
			for _, c := range list {
				if m, ok := c.(map[string]any); ok && m["checkout_request_id"] == crid {
					found = true
				}
			}
			if !found {
				t.Errorf("GET /api/admin/callbacks/unmatched/: got %s, want the callback for %s listed", r.Raw, crid)
			}
			for _, k := range []string{"wrong", ""} {
				r := admin(k)
				checkErrorShape(t, "admin API with X-ADMIN-KEY "+strconv.Quote(k), r)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("admin API with X-ADMIN-KEY %q: got %d %s, want 401", k, r.Status, r.Raw)
				}
			}
		})
	})
}

// TestLifecycleAdminAPIOff: without LIPA_ADMIN_KEY the operators' API does
// not exist.
func TestLifecycleAdminAPIOff(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, lcEnv(nil))
		r, err := svc.send(http.MethodGet, "/api/admin/callbacks/unmatched/", http.Header{"X-Admin-Key": {"anything"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkErrorShape(t, "admin API without LIPA_ADMIN_KEY", r)
		if r.Status != http.StatusNotFound {
			t.Errorf("admin API without LIPA_ADMIN_KEY: got %d %s, want 404", r.Status, r.Raw)
		}
	})
}
