package main

// End-to-end tests: the real service started in-process (startService) in
// simulator mode, on SQLite and on PostgreSQL (sqlstoretest.Run), spoken to
// over real HTTP, with apps created through the CLI (run). No mocks.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestE2EWalkthrough follows the README: push, watch it turn SUCCESS,
// verify, claim, claim again, list; through Lipa's Go client.
func TestE2EWalkthrough(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		c := svc.appClient(t, svc.createApp(t, "shop"))
		ctx := context.Background()

		push, err := c.Push(ctx, client.PushRequest{PhoneNumber: "0708374149", Amount: client.Shillings(10), Reference: "ORDER001", Description: "Test"})
		if err != nil {
			t.Fatalf("push: got error %v, want nil", err)
		}
		if push.Status != client.StatusPending {
			t.Errorf("push status: got %q, want PENDING", push.Status)
		}
		if push.PaymentID == "" || push.CheckoutRequestID == "" || push.MerchantRequestID == "" || push.CustomerMessage == "" {
			t.Errorf("push: got %+v, want a payment_id, checkout_request_id, merchant_request_id and customer_message", push)
		}
		var dr struct{ CheckoutRequestID, ResponseCode string }
		if err := json.Unmarshal(push.DarajaResponse, &dr); err != nil {
			t.Fatalf("push daraja_response: got %s, want Daraja's answer as an object", push.DarajaResponse)
		}
		if dr.CheckoutRequestID != push.CheckoutRequestID {
			t.Errorf("daraja_response.CheckoutRequestID: got %q, want %q", dr.CheckoutRequestID, push.CheckoutRequestID)
		}
		if dr.ResponseCode != "0" {
			t.Errorf("daraja_response.ResponseCode: got %q, want \"0\"", dr.ResponseCode)
		}
		id := push.PaymentID

		p := waitPayment(t, c, id, client.StatusSuccess)
		receipt := p.MpesaReceiptNumber
		if receipt == "" {
			t.Errorf("mpesa_receipt_number: got none, want a receipt")
		}
		want := client.Payment{
			ID: id, App: "shop", PaymentType: client.TypeSTK, Status: client.StatusSuccess, PhoneNumber: "254708374149",
			Amount: client.Shillings(10), Currency: "KES", Reference: "ORDER001", AccountReference: "ORDER001", Description: "Test",
			MpesaReceiptNumber: receipt, CheckoutRequestID: push.CheckoutRequestID, ResultCode: "0",
			Refunds: []client.Refund{}, // GET /api/payments/{id}/ lists the refunds: none yet
		}
		got := *p
		got.ShortCode, got.MerchantRequestID, got.ResultDesc, got.ResolvedBy = "", "", "", ""
		got.TransactionDate, got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("payment (-want +got):\n%s", diff)
		}
		if p.TransactionDate.IsZero() {
			t.Errorf("transaction_date: got null, want the callback's date")
		}

		for _, q := range []client.VerifyQuery{{Receipt: receipt}, {Reference: "ORDER001"}, {Reference: "ORDER001", Phone: "0708374149"}} {
			v, err := c.Verify(ctx, q)
			if err != nil {
				t.Fatalf("verify %+v: got error %v, want nil", q, err)
			}
			if !v.Paid || v.Claimed || v.Amount != client.Shillings(10) || v.Phone != "254708374149" || v.Receipt != receipt ||
				v.Reference != "ORDER001" || v.PaymentID != id || v.Status != client.StatusSuccess {
				t.Errorf("verify %+v: got %+v, want paid, unclaimed KES 10 from 254708374149, receipt %s, payment %s", q, v, receipt, id)
			}
			if v.Date.IsZero() {
				t.Errorf("verify %+v: date: got null, want the transaction date", q)
			}
		}

		claim, err := c.Claim(ctx, client.ClaimRequest{Reference: "ORDER001", Amount: client.Shillings(10)})
		if err != nil {
			t.Fatalf("first claim: got error %v, want nil", err)
		}
		if claim.Message != "Payment claimed successfully" {
			t.Errorf("claim message: got %q, want %q", claim.Message, "Payment claimed successfully")
		}
		if claim.PaymentID != id || claim.Receipt != receipt || claim.Amount != client.Shillings(10) || claim.ClaimedAt.IsZero() {
			t.Errorf("claim: got %+v, want payment_id %s, receipt %s, amount 10 and claimed_at", claim, id, receipt)
		}
		_, err = c.Claim(ctx, client.ClaimRequest{Reference: "ORDER001"})
		if le := wantClientError(t, "second claim", err, http.StatusConflict, "already_claimed"); le.Details["claimed_at"] == nil {
			t.Errorf("second claim: got details %v, want claimed_at", le.Details)
		}
		if v, err := c.Verify(ctx, client.VerifyQuery{Receipt: receipt}); err != nil || !v.Claimed || !v.Paid {
			t.Errorf("verify after claim: got %+v, %v, want paid and claimed", v, err)
		}

		// More payments, then the list: newest first, and pages of one
		// visit each exactly once.
		pushed := []string{id}
		for range 4 {
			p, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: freshRef(), Description: "Test"})
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			pushed = append(pushed, p.PaymentID)
		}
		var newestFirst []string
		for i := len(pushed) - 1; i >= 0; i-- {
			newestFirst = append(newestFirst, pushed[i])
		}
		all, err := c.PaymentsPage(ctx, client.ListQuery{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var ids []string
		for _, p := range all.Payments {
			ids = append(ids, p.ID)
		}
		if diff := cmp.Diff(newestFirst, ids); diff != "" {
			t.Errorf("GET /api/payments/ ids (-want +got):\n%s", diff)
		}
		if all.NextCursor != "" {
			t.Errorf("GET /api/payments/ next_cursor: got %q, want null on the only page", all.NextCursor)
		}
		var paged []string
		q := client.ListQuery{Limit: 1}
		for page := 0; ; page++ {
			if page > len(pushed)+1 {
				t.Fatalf("pagination: got more than %d pages, want %d", page, len(pushed))
			}
			r, err := c.PaymentsPage(ctx, q)
			if err != nil {
				t.Fatalf("list page: %v", err)
			}
			if len(r.Payments) != 1 {
				t.Fatalf("page %d with limit=1: got %d payments, want 1", page, len(r.Payments))
			}
			paged = append(paged, r.Payments[0].ID)
			if r.NextCursor == "" {
				break
			}
			q.Cursor = r.NextCursor
		}
		if diff := cmp.Diff(newestFirst, paged); diff != "" {
			t.Errorf("pages of limit=1 (-want +got):\n%s", diff)
		}

		// A reference reused after a failed attempt: verify and claim find
		// the successful payment.
		failed, err := c.Push(ctx, client.PushRequest{PhoneNumber: darajasim.PhoneCancelled, Amount: client.Shillings(10), Reference: "RETRY1"})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		waitPayment(t, c, failed.PaymentID, client.StatusFailed)
		paid, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(10), Reference: "RETRY1"})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		waitPayment(t, c, paid.PaymentID, client.StatusSuccess)
		if v, err := c.Verify(ctx, client.VerifyQuery{Reference: "RETRY1"}); err != nil || v.PaymentID != paid.PaymentID || !v.Paid {
			t.Errorf("verify a reused reference: got %+v, %v, want the paid payment %s", v, err, paid.PaymentID)
		}
		claimed, err := c.Claim(ctx, client.ClaimRequest{Reference: "RETRY1"})
		if err != nil {
			t.Fatalf("claim a reused reference: got error %v, want nil", err)
		}
		if claimed.PaymentID != paid.PaymentID {
			t.Errorf("claim a reused reference: got payment %s, want the paid one %s (not the failed %s)", claimed.PaymentID, paid.PaymentID, failed.PaymentID)
		}
	})
}

// listIDs returns the ids of every payment q selects of those c's app
// lists (GET /api/payments/, page after page), in order.
func listIDs(t *testing.T, c *client.Client, q client.ListQuery) []string {
	t.Helper()
	var ids []string
	for p, err := range c.Payments(context.Background(), q) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		ids = append(ids, p.ID)
	}
	return ids
}

// TestE2ESimulatorOutcomes pushes to every magic number of the simulator's
// table and checks what each payment becomes.
func TestE2ESimulatorOutcomes(t *testing.T) {
	type want struct {
		pushStatus int    // the push's answer
		pushCode   string // its error code, for a refused push
		status     client.Status
		reason     client.FailureReason // "" for none
		resultCode string               // "" for none
	}
	wants := map[string]want{
		darajasim.PhoneCancelled:         {http.StatusOK, "", client.StatusFailed, "cancelled_by_user", "1032"},
		darajasim.PhoneInsufficientFunds: {http.StatusOK, "", client.StatusFailed, "insufficient_funds", "1"},
		darajasim.PhoneWrongPIN:          {http.StatusOK, "", client.StatusFailed, "wrong_pin", "2001"},
		darajasim.PhoneUnreachable:       {http.StatusOK, "", client.StatusFailed, "customer_unreachable", "1037"},
		darajasim.PhoneNoCallback:        {http.StatusOK, "", client.StatusPending, "", ""},
		darajasim.PhoneDuplicateCallback: {http.StatusOK, "", client.StatusSuccess, "", "0"},
		darajasim.PhoneSubscriberLocked:  {http.StatusConflict, "subscriber_busy", client.StatusFailed, "subscriber_busy", "500.001.1001"},
		darajasim.PhonePending4999:       {http.StatusOK, "", client.StatusPending, "", ""},
		darajasim.PhonePendingEmpty:      {http.StatusOK, "", client.StatusPending, "", ""},
	}
	var outcomes []darajasim.Outcome // the rows about the payment's result; faults are TestE2ESimulatorFaults's
	for _, o := range darajasim.Outcomes() {
		if o.Fault != darajasim.FaultNone {
			continue
		}
		if _, ok := wants[o.Phone]; !ok {
			t.Fatalf("simulator outcome for %s: got no expectation in this test, want one per row of the table", o.Phone)
		}
		outcomes = append(outcomes, o)
	}
	if len(outcomes) != len(wants) {
		t.Fatalf("darajasim.Outcomes(): got %d rows without a fault, want %d", len(outcomes), len(wants))
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		c := svc.appClient(t, svc.createApp(t, "shop"))
		ctx := context.Background()

		// Push to every number first, in table order, so that the
		// no-callback push is scheduled before the duplicate one.
		ids := map[string]string{}
		for _, o := range outcomes {
			w := wants[o.Phone]
			r, err := c.Push(ctx, client.PushRequest{PhoneNumber: o.Phone, Amount: client.Shillings(10), Reference: freshRef()})
			if w.pushCode != "" {
				le := wantClientError(t, "push to "+o.Phone, err, w.pushStatus, w.pushCode)
				ids[o.Phone] = le.PaymentID()
				if ids[o.Phone] == "" {
					t.Fatalf("push to %s: got details %v, want payment_id", o.Phone, le.Details)
				}
				continue
			}
			if err != nil {
				t.Fatalf("push to %s: got %v, want %d", o.Phone, err, w.pushStatus)
			}
			ids[o.Phone] = r.PaymentID
		}

		for _, o := range outcomes {
			w := wants[o.Phone]
			if w.status == "PENDING" {
				continue // checked below, once the others have settled
			}
			t.Run(o.Phone, func(t *testing.T) {
				p := waitPayment(t, c, ids[o.Phone], w.status)
				if p.FailureReason != w.reason || p.ResultCode != w.resultCode {
					t.Errorf("failure_reason, result_code: got %q, %q, want %q, %q", p.FailureReason, p.ResultCode, w.reason, w.resultCode)
				}
				if p.PhoneNumber != o.Phone {
					t.Errorf("phone_number: got %v, want %s", p.PhoneNumber, o.Phone)
				}
				if w.status == client.StatusFailed {
					_, err := c.Claim(ctx, client.ClaimRequest{PaymentID: ids[o.Phone]})
					wantClientError(t, "claim of a FAILED payment", err, http.StatusConflict, "payment_not_successful")
					v := verifyOK(t, c, client.VerifyQuery{Reference: p.Reference})
					if v.Paid != false || v.Status != client.StatusFailed {
						t.Errorf("verify: got paid %v status %v, want false FAILED", v.Paid, v.Status)
					}
					return
				}
				// The duplicate callback: once the gateway has seen the
				// second delivery, nothing has changed.
				svc.waitLog(t, "the repeated callback of "+ids[o.Phone], func(l map[string]any) bool {
					return l["msg"] == "repeated stk callback ignored" && l["payment_id"] == ids[o.Phone]
				})
				after := paymentOK(t, c, ids[o.Phone])
				if diff := cmp.Diff(p, after); diff != "" {
					t.Errorf("payment after the second delivery (-first +second):\n%s", diff)
				}
				claimOK(t, c, client.ClaimRequest{PaymentID: ids[o.Phone]})
				_, err := c.Claim(ctx, client.ClaimRequest{Receipt: p.MpesaReceiptNumber})
				wantClientError(t, "second claim", err, http.StatusConflict, "already_claimed")
			})
		}
		for _, phone := range []string{darajasim.PhoneNoCallback, darajasim.PhonePending4999, darajasim.PhonePendingEmpty} {
			t.Run(phone, func(t *testing.T) {
				p := paymentOK(t, c, ids[phone])
				if p.Status != client.StatusPending || p.ResultCode != "" || p.MpesaReceiptNumber != "" {
					t.Errorf("after the others settled: got status %v result_code %q receipt %q, want PENDING with no result",
						p.Status, p.ResultCode, p.MpesaReceiptNumber)
				}
			})
		}
	})
}

// TestE2ESimulatorFaults pushes to every number of the simulator's table
// that injects a fault into the push request itself (issue 4): the app gets
// a clear error (never a 500), the payment is stored in an accurate state,
// and no push reaches Daraja twice unless the first provably was not
// processed (an expired token, refreshed once).
func TestE2ESimulatorFaults(t *testing.T) {
	type want struct {
		accepted bool          // the customer is prompted and pays: the payment must end SUCCESS
		ok       bool          // the app must get 200 (the client recovers on its own)
		pushCode string        // for a refused push, the error code the app must get; "" for any 502/503 error
		status   int           // with pushCode, its HTTP status
		stored   client.Status // the payment's status after a refusal; "" for PENDING or FAILED
		pushes   int           // push requests that may reach the simulator
	}
	wants := map[darajasim.Fault]want{
		darajasim.FaultNoAnswer:           {pushCode: "daraja_timeout", status: http.StatusGatewayTimeout, stored: "PENDING", pushes: 1},
		darajasim.FaultUnavailable:        {pushes: 1},
		darajasim.FaultServerError:        {pushes: 1},
		darajasim.FaultTooManyRequests:    {pushCode: "daraja_rate_limited", status: http.StatusServiceUnavailable, stored: "FAILED", pushes: 1},
		darajasim.FaultSpikeArrest:        {pushCode: "daraja_rate_limited", status: http.StatusServiceUnavailable, stored: "FAILED", pushes: 1},
		darajasim.FaultGatewaySpikeArrest: {pushCode: "daraja_rate_limited", status: http.StatusServiceUnavailable, stored: "FAILED", pushes: 1},
		darajasim.FaultMalformedAnswer:    {accepted: true, pushes: 1},
		darajasim.FaultTokenExpired:       {accepted: true, ok: true, pushes: 2}, // issue 2: refresh the token once and retry
	}
	var faults []darajasim.Outcome
	for _, o := range darajasim.Outcomes() {
		if o.Fault == darajasim.FaultNone {
			continue
		}
		if _, ok := wants[o.Fault]; !ok {
			t.Fatalf("simulator fault %q (%s): got no expectation in this test, want one per row of the table", o.Fault, o.Phone)
		}
		faults = append(faults, o)
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// A short Daraja timeout, so that the push nobody answers ends
		// quickly.
		svc := startTestService(t, databaseURL, map[string]string{"MPESA_TIMEOUT": "3s"})
		// No retries: each push is one request, so that the pushes
		// reaching Daraja are Lipa's own.
		c, err := client.New(svc.URL, svc.createApp(t, "shop"), client.WithHTTPClient(svc.client), client.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range faults {
			w := wants[o.Fault]
			t.Run(string(o.Fault), func(t *testing.T) {
				r, err := c.Push(context.Background(), client.PushRequest{PhoneNumber: o.Phone, Amount: client.Shillings(10), Reference: freshRef()})
				var le *client.Error
				if err != nil && !errors.As(err, &le) {
					t.Fatalf("push: got %v, want an answer from Lipa", err)
				}
				var id string
				switch {
				case err == nil:
					id = r.PaymentID
				case w.ok:
					t.Fatalf("push: got %v, want 200", err)
				case w.pushCode != "":
					wantClientError(t, "push", err, w.status, w.pushCode)
					id = le.PaymentID()
				case le.StatusCode == http.StatusBadGateway || le.StatusCode == http.StatusServiceUnavailable:
					id = le.PaymentID()
				default:
					t.Fatalf("push: got %v, want 502 or 503 with a clear code", err)
				}
				if w.accepted && err != nil && w.pushCode == "" {
					t.Logf("push: answered %d %s although Daraja accepted it", le.StatusCode, le.Code)
				}
				if id == "" {
					t.Fatalf("push: got %+v (error %v), want the payment_id (in details for an error)", r, err)
				}
				if w.accepted {
					// Once the simulator has delivered the success callback
					// (and Lipa answered it), the payment must be SUCCESS.
					svc.waitSimCallbackDelivered(t, o.Phone)
					p := paymentOK(t, c, id)
					if p.Status != client.StatusSuccess || p.MpesaReceiptNumber == "" {
						t.Errorf("payment after the customer paid and the callback was delivered: got status %v receipt %q, want SUCCESS with the receipt (payment %+v)",
							p.Status, p.MpesaReceiptNumber, p)
					}
				} else if p := paymentOK(t, c, id); w.stored != "" && p.Status != w.stored {
					t.Errorf("payment: got status %v, want %s", p.Status, w.stored)
				} else if p.Status != client.StatusPending && p.Status != client.StatusFailed {
					t.Errorf("payment: got status %v, want PENDING or FAILED", p.Status)
				}
				if got := svc.srv.sim.PushCount(o.Phone); got != w.pushes {
					t.Errorf("push requests that reached Daraja: got %d, want %d", got, w.pushes)
				}
			})
		}
	})
}

// TestE2ESTKCallbackFixtures feeds every STK callback fixture to the
// callback endpoint against a pending payment, plus the payloads that must
// change nothing.
func TestE2ESTKCallbackFixtures(t *testing.T) {
	files := fixtureFiles(t, "stk-callback-*.json")
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// The simulator's own callbacks must not interfere: this test
		// posts them.
		svc := startTestService(t, databaseURL, map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "10m"})
		c := svc.appClient(t, svc.createApp(t, "shop"))
		postCallback := func(t *testing.T, body []byte) apiResponse {
			t.Helper()
			return svc.raw(t, http.MethodPost, "/api/mpesa/stk-callback/", nil, body)
		}
		ack := func(t *testing.T, r apiResponse) {
			t.Helper()
			wantStatus(t, "POST /api/mpesa/stk-callback/", r, http.StatusOK)
			if diff := cmp.Diff(stkAck, r.Body); diff != "" {
				t.Errorf("callback acknowledgement (-want +got):\n%s", diff)
			}
		}

		for _, file := range files {
			f := loadSTKFixture(t, file)
			t.Run(f.name, func(t *testing.T) {
				phone := freshPhone()
				push := pushOK(t, c, phone, f.amount(t), freshRef())
				id := push.PaymentID
				f.forPush(push, phone)
				ack(t, postCallback(t, f.bytes(t)))

				p := paymentOK(t, c, id)
				code := f.resultCode()
				if code == "0" {
					var txDate any // the payment's transaction_date as RFC 3339 in UTC; nil when unknown
					if !p.TransactionDate.IsZero() {
						txDate = p.TransactionDate.UTC().Format(time.RFC3339)
					}
					got := map[string]any{"status": string(p.Status), "mpesa_receipt_number": p.MpesaReceiptNumber, "result_code": p.ResultCode,
						"failure_reason": string(p.FailureReason), "transaction_date": txDate, "amount": p.Amount, "phone_number": p.PhoneNumber}
					want := map[string]any{"status": "SUCCESS", "mpesa_receipt_number": f.receipt(), "result_code": "0",
						"failure_reason": "", "transaction_date": f.transactionDateUTC(t), "amount": client.Shillings(f.amount(t)), "phone_number": phone}
					for k, w := range want {
						if got[k] != w {
							t.Errorf("%s: got %v, want %v", k, got[k], w)
						}
					}
				} else {
					reason, ok := failureReasons[code]
					if !ok {
						t.Fatalf("fixture ResultCode %s: got no expected failure_reason in this test, want one", code)
					}
					got := map[string]any{"status": string(p.Status), "result_code": p.ResultCode, "failure_reason": string(p.FailureReason),
						"mpesa_receipt_number": p.MpesaReceiptNumber, "result_desc": p.ResultDesc}
					want := map[string]any{"status": "FAILED", "result_code": code, "failure_reason": reason,
						"mpesa_receipt_number": "", "result_desc": f.callback()["ResultDesc"]}
					for k, w := range want {
						if got[k] != w {
							t.Errorf("%s: got %v, want %v", k, got[k], w)
						}
					}
				}

				ack(t, postCallback(t, f.bytes(t)))
				if diff := cmp.Diff(p, paymentOK(t, c, id)); diff != "" {
					t.Errorf("payment after a repeat of the callback (-first +repeat):\n%s", diff)
				}
			})
		}

		success := func(t *testing.T) *stkFixture {
			return loadSTKFixture(t, filepath.Join(darajaFixtures, "stk-callback-success.json"))
		}
		cancelled := func(t *testing.T) *stkFixture {
			return loadSTKFixture(t, filepath.Join(darajaFixtures, "stk-callback-cancelled-1032.json"))
		}

		t.Run("swapped nesting", func(t *testing.T) {
			push := pushOK(t, c, freshPhone(), 1, freshRef())
			before := paymentOK(t, c, push.PaymentID)
			body := fmt.Sprintf(`{"stkCallback":{"Body":{"CheckoutRequestID":%q,"ResultCode":0}}}`, push.CheckoutRequestID)
			r := postCallback(t, []byte(body))
			wantStatus(t, "swapped nesting", r, http.StatusBadRequest)
			if diff := cmp.Diff(before, paymentOK(t, c, push.PaymentID)); diff != "" {
				t.Errorf("payment after a swapped-nesting callback (-before +after):\n%s", diff)
			}
		})

		t.Run("malformed JSON", func(t *testing.T) {
			r := postCallback(t, []byte(`{"Body": {"stkCallback": `))
			wantStatus(t, "malformed JSON", r, http.StatusBadRequest)
		})

		t.Run("unknown CheckoutRequestID", func(t *testing.T) {
			f := success(t)
			f.callback()["CheckoutRequestID"] = "ws_CO_NOT_ISSUED_BY_US"
			f.setItem("MpesaReceiptNumber", "ZZORPHAN01")
			ack(t, postCallback(t, f.bytes(t)))
			_, err := c.Verify(context.Background(), client.VerifyQuery{Receipt: "ZZORPHAN01"})
			wantClientError(t, "verify the orphan's receipt", err, http.StatusNotFound, "payment_not_found")
		})

		// Not covered here: a callback arriving before the push's answer is
		// saved. From outside, a test cannot learn the simulator's
		// CheckoutRequestID before the push answers, and an unmatched
		// callback is not observable through the API.

		t.Run("concurrent repeats", func(t *testing.T) {
			// Safaricom retries a slow endpoint: the same callback arriving
			// many times at once is acknowledged each time and applied once.
			phone := freshPhone()
			push := pushOK(t, c, phone, 1, freshRef())
			id := push.PaymentID
			f := success(t).forPush(push, phone)
			f.setItem("MpesaReceiptNumber", "ZZREPEAT01")
			body := f.bytes(t)
			type answer struct {
				r   apiResponse
				err error
			}
			var wg sync.WaitGroup
			answers := make([]answer, 20)
			for i := range answers {
				wg.Go(func() {
					a := &answers[i]
					a.r, a.err = svc.send(http.MethodPost, "/api/mpesa/stk-callback/", nil, body)
				})
			}
			wg.Wait()
			for _, a := range answers {
				if a.err != nil || a.r.Status != http.StatusOK || !cmp.Equal(a.r.Body, stkAck) {
					t.Errorf("concurrent repeat: got %d %v (err %v), want 200 %v", a.r.Status, a.r.Body, a.err, stkAck)
				}
			}
			p := paymentOK(t, c, id)
			if p.Status != client.StatusSuccess || p.MpesaReceiptNumber != "ZZREPEAT01" {
				t.Fatalf("payment: got status %v receipt %q, want SUCCESS ZZREPEAT01", p.Status, p.MpesaReceiptNumber)
			}
			applied := 0
			for _, l := range svc.logLines(t) {
				if l["msg"] == "stk callback applied" && l["payment_id"] == id {
					applied++
				}
			}
			if applied != 1 {
				t.Errorf("callbacks applied to the payment: got %d, want 1", applied)
			}
		})

		t.Run("contradicting callback", func(t *testing.T) {
			phone := freshPhone()
			push := pushOK(t, c, phone, 1, freshRef())
			id := push.PaymentID
			ok := success(t).forPush(push, phone)
			ok.setItem("MpesaReceiptNumber", "ZZCONTRA01")
			ack(t, postCallback(t, ok.bytes(t)))
			before := paymentOK(t, c, id)
			if before.Status != client.StatusSuccess {
				t.Fatalf("after the success callback: got status %v, want SUCCESS", before.Status)
			}
			ack(t, postCallback(t, cancelled(t).forPush(push, phone).bytes(t)))
			if diff := cmp.Diff(before, paymentOK(t, c, id)); diff != "" {
				t.Errorf("payment after a FAILED callback contradicting SUCCESS (-before +after):\n%s", diff)
			}
		})

		t.Run("amount differs", func(t *testing.T) {
			phone := freshPhone()
			push := pushOK(t, c, phone, 5, freshRef())
			id := push.PaymentID
			before := paymentOK(t, c, id)
			f := success(t).forPush(push, phone) // Amount 1.00
			f.setItem("MpesaReceiptNumber", "ZZAMOUNT01")
			ack(t, postCallback(t, f.bytes(t)))
			if diff := cmp.Diff(before, paymentOK(t, c, id)); diff != "" {
				t.Errorf("payment of 5 after a success callback for 1 (-before +after):\n%s", diff)
			}
			_, err := c.Claim(context.Background(), client.ClaimRequest{PaymentID: id})
			wantClientError(t, "claim", err, http.StatusConflict, "payment_not_successful")
		})
	})
}

// TestE2EC2B feeds every C2B fixture to the C2B endpoints and checks the
// shared intake pool: any app can verify, one app claims.
func TestE2EC2B(t *testing.T) {
	confirmations := fixtureFiles(t, "c2b-confirmation-*.json")
	validations := fixtureFiles(t, "c2b-validation-request*.json")
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		keyA := svc.createApp(t, "appa")
		appA := svc.appClient(t, keyA)
		appB := svc.appClient(t, svc.createApp(t, "appb"))
		viewer := svc.appClient(t, svc.createApp(t, "viewer"))
		ctx := context.Background()

		confirm := func(t *testing.T, path string, body []byte) {
			t.Helper()
			r := svc.raw(t, http.MethodPost, path, nil, body)
			wantStatus(t, "POST "+path, r, http.StatusOK)
			if diff := cmp.Diff(c2bAckBody, r.Body); diff != "" {
				t.Errorf("confirmation acknowledgement (-want +got):\n%s", diff)
			}
		}
		verifyPaid := func(t *testing.T, c *client.Client, transID string, amount float64, ref, phone, txTime string) *client.Verification {
			t.Helper()
			v := verifyOK(t, c, client.VerifyQuery{Receipt: transID})
			got := map[string]any{"paid": v.Paid, "status": string(v.Status), "claimed": v.Claimed, "receipt": v.Receipt,
				"amount": v.Amount, "reference": v.Reference, "phone": v.Phone, "date": v.Date.UTC().Format(time.RFC3339)}
			want := map[string]any{"paid": true, "status": "SUCCESS", "claimed": false, "receipt": transID,
				"amount": client.Amount(math.Round(amount * 100)), "reference": ref, "phone": phone, "date": kenyaToUTC(t, txTime)}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("verify %s: %s: got %v, want %v", transID, k, got[k], w)
				}
			}
			return v
		}
		// One M-Pesa transaction is one payment: a later fixture with a
		// TransID already recorded changes nothing.
		type recorded struct {
			amount         float64
			ref, phone, at string
		}
		seen := map[string]recorded{}
		for _, file := range confirmations {
			doc := readJSONFixture(t, file)
			transID, _ := doc["TransID"].(string)
			if transID == "" {
				continue // the acknowledgement fixture
			}
			t.Run(filepath.Base(file), func(t *testing.T) {
				amount, err := strconv.ParseFloat(doc["TransAmount"].(string), 64)
				if err != nil {
					t.Fatalf("TransAmount: %v", err)
				}
				rec, dup := seen[transID]
				if !dup {
					rec = recorded{amount: amount, ref: doc["BillRefNumber"].(string), phone: doc["MSISDN"].(string), at: doc["TransTime"].(string)}
					seen[transID] = rec
				}
				body := encodeJSON(t, doc)
				confirm(t, "/api/c2b/confirmation/", body)
				confirm(t, "/api/c2b/confirmation/", body)
				verifyPaid(t, viewer, transID, rec.amount, rec.ref, rec.phone, rec.at)
			})
		}

		sandbox := func(t *testing.T, transID, amount, ref string) map[string]any {
			doc := readJSONFixture(t, filepath.Join(darajaFixtures, "c2b-confirmation-sandbox-2019.json"))
			doc["TransID"], doc["TransAmount"], doc["BillRefNumber"] = transID, amount, ref
			return doc
		}

		t.Run("amount with cents", func(t *testing.T) {
			doc := sandbox(t, "ZZCENTS001", "100.50", "CENTS1")
			confirm(t, "/api/c2b/confirmation/", encodeJSON(t, doc))
			verifyPaid(t, viewer, "ZZCENTS001", 100.5, "CENTS1", "254708374149", doc["TransTime"].(string))
		})

		t.Run("seed aliases", func(t *testing.T) {
			doc := sandbox(t, "ZZALIAS001", "20.00", "ALIAS1")
			r := svc.raw(t, http.MethodPost, "/api/mpesa/c2b/validation/", nil, encodeJSON(t, doc))
			wantStatus(t, "validation alias", r, http.StatusOK)
			if diff := cmp.Diff(map[string]any{"ResultCode": "0", "ResultDesc": "Accepted"}, r.Body); diff != "" {
				t.Errorf("validation alias answer (-want +got):\n%s", diff)
			}
			confirm(t, "/api/mpesa/c2b/confirmation/", encodeJSON(t, doc))
			verifyPaid(t, viewer, "ZZALIAS001", 20, "ALIAS1", "254708374149", doc["TransTime"].(string))
		})

		for _, file := range validations {
			t.Run(filepath.Base(file), func(t *testing.T) {
				raw, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				r := svc.raw(t, http.MethodPost, "/api/c2b/validation/", nil, raw)
				wantStatus(t, "validation", r, http.StatusOK)
				if r.Body["ResultCode"] != "0" {
					t.Errorf("validation ResultCode: got %#v, want the string \"0\"", r.Body["ResultCode"])
				}
			})
		}

		t.Run("claim moves an intake payment to one app", func(t *testing.T) {
			doc := sandbox(t, "ZZCLAIM001", "250.00", "C2BCLAIM1")
			confirm(t, "/api/c2b/confirmation/", encodeJSON(t, doc))
			v := verifyPaid(t, appB, "ZZCLAIM001", 250, "C2BCLAIM1", "254708374149", doc["TransTime"].(string))
			id := v.PaymentID

			_, err := appA.Claim(ctx, client.ClaimRequest{Receipt: "ZZCLAIM001", Amount: client.Shillings(100)})
			wantClientError(t, "claim with the wrong amount", err, http.StatusUnprocessableEntity, "amount_mismatch")

			// The amount as a JSON string, which Lipa takes too: the
			// client always sends a number, so this one goes raw.
			c := svc.raw(t, http.MethodPost, "/api/payments/claim/", keyHeader(keyA), map[string]any{"receipt": "ZZCLAIM001", "amount": "250"})
			wantStatus(t, "claim by app A", c, http.StatusOK)
			if jsonStr(c.Body, "payment_id") != id || c.Body["amount"] != float64(250) || jsonStr(c.Body, "receipt") != "ZZCLAIM001" {
				t.Errorf("claim by app A: got %s, want payment %s, amount 250, receipt ZZCLAIM001", c.Raw, id)
			}
			p := paymentOK(t, appA, id)
			if p.App != "appa" || !p.Claimed || p.PaymentType != client.TypeC2B {
				t.Errorf("app A's payment: got app %v claimed %v type %v, want appa true C2B", p.App, p.Claimed, p.PaymentType)
			}

			for _, req := range []client.ClaimRequest{{Receipt: "ZZCLAIM001"}, {PaymentID: id}, {Reference: "C2BCLAIM1"}} {
				_, err := appB.Claim(ctx, req)
				var le *client.Error
				if !errors.As(err, &le) || (le.StatusCode != http.StatusNotFound && le.StatusCode != http.StatusConflict) {
					t.Errorf("claim %+v by app B: got %v, want 404 or 409", req, err)
				}
			}
			_, err = appB.Payment(ctx, id)
			wantClientError(t, "app B reads it", err, http.StatusNotFound, "payment_not_found")
			_, err = appB.Verify(ctx, client.VerifyQuery{Receipt: "ZZCLAIM001"})
			wantClientError(t, "app B verifies it", err, http.StatusNotFound, "payment_not_found")
		})

		t.Run("TransID that is already an STK receipt", func(t *testing.T) {
			// One M-Pesa transaction is one payment, whichever channel
			// reports it.
			id := pushOK(t, appA, freshPhone(), 10, freshRef()).PaymentID
			receipt := waitPayment(t, appA, id, client.StatusSuccess).MpesaReceiptNumber
			confirm(t, "/api/c2b/confirmation/", encodeJSON(t, sandbox(t, receipt, "10.00", "DUPSTK1")))
			v := verifyOK(t, appA, client.VerifyQuery{Receipt: receipt})
			if v.PaymentID != id {
				t.Errorf("verify the receipt: got payment %s, want the STK payment %s", v.PaymentID, id)
			}
			_, err := viewer.Verify(ctx, client.VerifyQuery{Reference: "DUPSTK1"})
			wantClientError(t, "verify the C2B reference", err, http.StatusNotFound, "payment_not_found")
		})

		t.Run("lipa simulate c2b", func(t *testing.T) {
			code, stdout, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", "100", "--account", "ORDER1", "--phone", "254708374149", "--url", svc.URL)
			if code != 0 {
				t.Fatalf("lipa simulate c2b: got exit code %d (stdout %q, stderr %q), want 0", code, stdout, stderr)
			}
			v := verifyOK(t, viewer, client.VerifyQuery{Reference: "ORDER1"})
			if !v.Paid || v.Amount != client.Shillings(100) || v.Reference != "ORDER1" || v.Receipt == "" {
				t.Errorf("verify ORDER1: got %+v, want paid, amount 100, reference ORDER1 and a receipt", v)
			}
		})
	})
}

// TestE2EConcurrentClaims sends 200 claims of one payment at once.
func TestE2EConcurrentClaims(t *testing.T) {
	const n = 200
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// Issue 5's per-app rate limit would answer some of the burst with
		// 429; exactly-once is about the claims that get through, so it is
		// off here.
		svc := startTestService(t, databaseURL, map[string]string{"LIPA_APP_RATE_LIMIT": "0"})
		c := svc.appClient(t, svc.createApp(t, "shop"))
		id := pushOK(t, c, freshPhone(), 10, freshRef()).PaymentID
		waitPayment(t, c, id, client.StatusSuccess)

		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			results = map[string]int{}
			start   = make(chan struct{})
		)
		for range n {
			wg.Go(func() {
				<-start
				_, err := c.Claim(context.Background(), client.ClaimRequest{PaymentID: id})
				var le *client.Error
				outcome := "200 "
				switch {
				case errors.As(err, &le):
					outcome = strconv.Itoa(le.StatusCode) + " " + le.Code
				case err != nil:
					outcome = "transport error: " + err.Error()
				}
				mu.Lock()
				results[outcome]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		want := map[string]int{"200 ": 1, "409 already_claimed": n - 1}
		if diff := cmp.Diff(want, results); diff != "" {
			t.Errorf("outcomes of %d concurrent claims (-want +got):\n%s", n, diff)
		}
	})
}

// TestE2EPushValidation checks the phone, amount, reference and description
// rules at the API, and that a refused request stores nothing.
func TestE2EPushValidation(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "10m"})
		good := svc.createApp(t, "good")
		bad := svc.createApp(t, "bad") // only ever sends refused requests

		// The pushes go raw: they send the fields in the forms and JSON
		// types an app might (numbers as strings, phones as numbers),
		// which the typed client does not.
		accepted := func(t *testing.T, body map[string]any) *client.Payment {
			t.Helper()
			r := svc.raw(t, http.MethodPost, "/api/stk-push/", keyHeader(good), body)
			wantStatus(t, "push", r, http.StatusOK)
			return paymentOK(t, svc.appClient(t, good), jsonStr(r.Body, "payment_id"))
		}
		refused := func(t *testing.T, body map[string]any, code, field string) {
			t.Helper()
			r := svc.raw(t, http.MethodPost, "/api/stk-push/", keyHeader(bad), body)
			wantError(t, "push", r, http.StatusBadRequest, code)
			if got := jsonStr(r.Body, "error", "details", "field"); got != field {
				t.Errorf("details.field: got %q, want %q", got, field)
			}
		}
		base := func(k string, v any) map[string]any {
			b := map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": freshRef(), "description": "Test"}
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}

		for _, c := range []struct {
			in   any
			want string
		}{
			// Each form with its own number: a second push to a phone
			// with a prompt open is refused (subscriber_busy).
			{"0712345601", "254712345601"},
			{"712345602", "254712345602"},
			{"+254 712 345 603", "254712345603"},
			{"254712345604", "254712345604"},
			{"0112345605", "254112345605"},
			{"254112345606", "254112345606"},
			{"(0712) 345-607", "254712345607"},
			{json.Number("712345608"), "254712345608"},
		} {
			t.Run(fmt.Sprintf("phone %#v", c.in), func(t *testing.T) {
				if p := accepted(t, base("phone_number", c.in)); p.PhoneNumber != c.want {
					t.Errorf("phone_number: got %v, want %s", p.PhoneNumber, c.want)
				}
			})
		}
		for _, in := range []string{"12345", "+2540712345678", "0812345678", "abc", "", "+243 812 345 678"} {
			t.Run(fmt.Sprintf("phone %q", in), func(t *testing.T) {
				refused(t, base("phone_number", in), "invalid_phone_number", "phone_number")
			})
		}
		for _, in := range []any{json.Number("10"), "10", json.Number("10.0"), "10.00"} {
			t.Run(fmt.Sprintf("amount %#v", in), func(t *testing.T) {
				if p := accepted(t, base("amount", in)); p.Amount != client.Shillings(10) {
					t.Errorf("amount: got %v, want 10", p.Amount)
				}
			})
		}
		for _, in := range []any{json.Number("10.5"), "10.5", json.Number("0"), json.Number("-5"), json.Number("250001"), "abc", "1,500", true} {
			t.Run(fmt.Sprintf("amount %#v", in), func(t *testing.T) {
				refused(t, base("amount", in), "invalid_amount", "amount")
			})
		}

		t.Run("reference missing", func(t *testing.T) { refused(t, base("reference", nil), "invalid_reference", "reference") })
		t.Run("reference blank", func(t *testing.T) { refused(t, base("reference", "   "), "invalid_reference", "reference") })
		t.Run("reference of 13 characters without account_reference", func(t *testing.T) {
			refused(t, base("reference", "ABCDEFGHIJKLM"), "invalid_reference", "reference")
		})
		t.Run("reference with characters Daraja refuses", func(t *testing.T) {
			refused(t, base("reference", "A&B#1"), "invalid_reference", "reference")
		})
		t.Run("account_reference with characters Daraja refuses", func(t *testing.T) {
			b := base("reference", "Order 1")
			b["account_reference"] = "A&B"
			refused(t, b, "invalid_account_reference", "account_reference")
		})
		t.Run("description with a line break", func(t *testing.T) {
			refused(t, base("description", "line1\nline2"), "invalid_description", "description")
		})
		t.Run("long reference with account_reference", func(t *testing.T) {
			ref := "Order #2024/000123 for Jane Wanjiku, Nairobi branch"
			b := base("reference", ref)
			b["account_reference"] = "ACC-000123"
			p := accepted(t, b)
			if p.Reference != ref || p.AccountReference != "ACC-000123" {
				t.Errorf("reference, account_reference: got %v, %v, want %q, ACC-000123", p.Reference, p.AccountReference, ref)
			}
		})
		t.Run("long description", func(t *testing.T) {
			desc := strings.Repeat("abcdefghij", 5)
			if p := accepted(t, base("description", desc)); p.Description != desc {
				t.Errorf("description: got %v, want it stored whole, %q", p.Description, desc)
			}
		})

		t.Run("refused requests stored nothing", func(t *testing.T) {
			if ids := listIDs(t, svc.appClient(t, bad), client.ListQuery{}); len(ids) != 0 {
				t.Errorf("payments of the app whose pushes were all refused: got %v, want none", ids)
			}
		})
	})
}

// TestE2EAuthAndErrors checks API keys, tenant isolation and the error
// shape of unknown paths and methods.
func TestE2EAuthAndErrors(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "10m"})
		keyA := svc.createApp(t, "appa")
		keyB := svc.createApp(t, "appb")

		t.Run("missing, unknown and disabled keys", func(t *testing.T) {
			keyGone := svc.createApp(t, "gone")
			if code, _, stderr := runCLI(t, svc.Env, "apps", "disable", "gone"); code != 0 {
				t.Fatalf("lipa apps disable: got exit code %d (stderr %q), want 0", code, stderr)
			}
			for _, c := range []struct{ name, key, code string }{
				{"no key", "", "missing_api_key"},
				{"unknown key", "lipa_notakeyatall", "invalid_api_key"},
				{"disabled app", keyGone, "app_disabled"},
			} {
				ac := svc.appClient(t, c.key)
				ctx := context.Background()
				for _, req := range []struct {
					name string
					call func() error
				}{
					{"POST /api/stk-push/", func() error {
						_, err := ac.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: client.Shillings(1), Reference: "X"})
						return err
					}},
					{"GET /api/payments/", func() error { _, err := ac.PaymentsPage(ctx, client.ListQuery{}); return err }},
					{"GET /api/payments/verify/?reference=X", func() error {
						_, err := ac.Verify(ctx, client.VerifyQuery{Reference: "X"})
						return err
					}},
					{"POST /api/payments/claim/", func() error {
						_, err := ac.Claim(ctx, client.ClaimRequest{Reference: "X"})
						return err
					}},
				} {
					err := req.call()
					if le := (*client.Error)(nil); !errors.As(err, &le) || le.StatusCode != http.StatusUnauthorized || le.Code != c.code {
						t.Errorf("%s with %s: got %v, want 401 %q", req.name, c.name, err, c.code)
					}
				}
			}
			if code, _, stderr := runCLI(t, svc.Env, "apps", "enable", "gone"); code != 0 {
				t.Fatalf("lipa apps enable: got exit code %d (stderr %q), want 0", code, stderr)
			}
			listIDs(t, svc.appClient(t, keyGone), client.ListQuery{}) // the list answers again
		})

		rotate := func(t *testing.T, name, grace string) string {
			t.Helper()
			env := maps.Clone(svc.Env)
			if grace != "" {
				env["LIPA_KEY_ROTATION_GRACE"] = grace
			}
			code, stdout, stderr := runCLI(t, env, "apps", "rotate-key", name, "--json")
			if code != 0 {
				t.Fatalf("lipa apps rotate-key: got exit code %d (stderr %q), want 0", code, stderr)
			}
			var out struct {
				APIKey string `json:"api_key"`
			}
			if err := json.Unmarshal([]byte(stdout), &out); err != nil || !strings.HasPrefix(out.APIKey, "lipa_") {
				t.Fatalf("lipa apps rotate-key --json: got %q, want a new api_key", stdout)
			}
			return out.APIKey
		}
		t.Run("rotate-key without grace", func(t *testing.T) {
			oldKey := svc.createApp(t, "rot")
			listIDs(t, svc.appClient(t, oldKey), client.ListQuery{}) // the old key works before the rotation
			newKey := rotate(t, "rot", "0s")
			if newKey == oldKey {
				t.Fatalf("rotate-key: got the old key back, want a new one")
			}
			_, err := svc.appClient(t, oldKey).PaymentsPage(context.Background(), client.ListQuery{})
			wantClientError(t, "old key after rotation", err, http.StatusUnauthorized, "invalid_api_key")
			listIDs(t, svc.appClient(t, newKey), client.ListQuery{}) // the new key works
		})
		t.Run("rotate-key with the default grace", func(t *testing.T) {
			// Issue 5: the old key keeps working for LIPA_KEY_ROTATION_GRACE
			// (default 24h), so the app can switch without downtime.
			oldKey := svc.createApp(t, "rotgrace")
			newKey := rotate(t, "rotgrace", "")
			listIDs(t, svc.appClient(t, oldKey), client.ListQuery{}) // the old key works within the grace
			listIDs(t, svc.appClient(t, newKey), client.ListQuery{}) // and so does the new one
		})

		t.Run("another app's STK payment", func(t *testing.T) {
			appA, appB := svc.appClient(t, keyA), svc.appClient(t, keyB)
			ctx := context.Background()
			ref := freshRef()
			id := pushOK(t, appA, freshPhone(), 10, ref).PaymentID
			paymentOK(t, appA, id) // app A sees it
			_, err := appB.Payment(ctx, id)
			wantClientError(t, "app B reads it", err, http.StatusNotFound, "payment_not_found")
			_, err = appB.Verify(ctx, client.VerifyQuery{Reference: ref})
			wantClientError(t, "app B verifies it", err, http.StatusNotFound, "payment_not_found")
			_, err = appB.Claim(ctx, client.ClaimRequest{PaymentID: id})
			wantClientError(t, "app B claims it by id", err, http.StatusNotFound, "payment_not_found")
			_, err = appB.Claim(ctx, client.ClaimRequest{Reference: ref})
			wantClientError(t, "app B claims it by reference", err, http.StatusNotFound, "payment_not_found")
			if ids := listIDs(t, appB, client.ListQuery{}); len(ids) != 0 {
				t.Errorf("app B's list: got %v, want none of app A's payments", ids)
			}
		})

		t.Run("unknown path", func(t *testing.T) {
			for _, p := range []string{"/nope", "/api/nope/", "/api/payments/x/y/"} {
				wantError(t, "GET "+p, svc.raw(t, http.MethodGet, p, keyHeader(keyA), nil), http.StatusNotFound, "not_found")
			}
		})
		t.Run("wrong method", func(t *testing.T) {
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, "/api/stk-push/"}, {http.MethodDelete, "/api/payments/claim/"}, {http.MethodGet, "/api/mpesa/stk-callback/"},
			} {
				r := svc.raw(t, c.method, c.path, keyHeader(keyA), nil)
				wantError(t, c.method+" "+c.path, r, http.StatusMethodNotAllowed, "method_not_allowed")
			}
		})
		t.Run("health", func(t *testing.T) {
			c := svc.appClient(t, "")
			if err := c.Health(context.Background()); err != nil {
				t.Errorf("GET /healthz: got %v, want 200", err)
			}
			if _, err := c.Ready(context.Background()); err != nil {
				t.Errorf("GET /readyz: got %v, want 200", err)
			}
		})
		t.Run("bad requests", func(t *testing.T) {
			for _, c := range []struct {
				name, method, path string
				body               any
				status             int
			}{
				{"push with a JSON array", http.MethodPost, "/api/stk-push/", "[1,2]", http.StatusBadRequest},
				{"push with no body", http.MethodPost, "/api/stk-push/", nil, http.StatusBadRequest},
				{"verify with neither receipt nor reference", http.MethodGet, "/api/payments/verify/", nil, http.StatusBadRequest},
				{"claim naming nothing", http.MethodPost, "/api/payments/claim/", "{}", http.StatusBadRequest},
				{"claim of an unknown payment", http.MethodPost, "/api/payments/claim/", `{"payment_id":"pay_nope"}`, http.StatusNotFound},
				{"list with a bad cursor", http.MethodGet, "/api/payments/?cursor=zzz", nil, http.StatusBadRequest},
			} {
				r := svc.raw(t, c.method, c.path, keyHeader(keyA), c.body)
				if r.Status != c.status {
					t.Errorf("%s: got status %d, want %d (body %s)", c.name, r.Status, c.status, r.Raw)
				}
			}
		})
	})
}

// fullPhone matches the walkthrough's phone number, unmasked, where it is
// not part of a longer digit string (such as a CheckoutRequestID that ends
// in the number's last nine digits).
var fullPhone = regexp.MustCompile(`(^|[^0-9])254708374149([^0-9]|$)`)

// TestE2ELogs runs payments for 254708374149 through every path that
// handles the number, then reads LOG_FILE.
func TestE2ELogs(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		c := svc.appClient(t, key)
		ctx := context.Background()

		id := pushOK(t, c, "0708374149", 10, "LOGS1").PaymentID
		p := waitPayment(t, c, id, client.StatusSuccess)
		verifyOK(t, c, client.VerifyQuery{Reference: "LOGS1", Phone: "254708374149"})
		claimOK(t, c, client.ClaimRequest{Reference: "LOGS1", Amount: client.Shillings(10)})
		c.Claim(ctx, client.ClaimRequest{Receipt: p.MpesaReceiptNumber}) // already claimed: refused, and logged
		// An amount the client cannot send: raw.
		svc.raw(t, http.MethodPost, "/api/stk-push/", keyHeader(key), map[string]any{"phone_number": "254708374149", "amount": "ten", "reference": "LOGS2"})
		// A number in a form Lipa does not take is still the customer's
		// number.
		c.Push(ctx, client.PushRequest{PhoneNumber: "tel:+254708374149", Amount: client.Shillings(10), Reference: "LOGS3"})
		c.Verify(ctx, client.VerifyQuery{Reference: "LOGS1", Phone: "tel:+254708374149"})
		if code, _, stderr := runCLI(t, svc.Env, "simulate", "c2b", "--amount", "50", "--account", "LOGS4", "--phone", "254708374149", "--url", svc.URL); code != 0 {
			t.Fatalf("lipa simulate c2b: got exit code %d (stderr %q), want 0", code, stderr)
		}
		for _, f := range []string{"c2b-validation-request-v1-legacy-plain-msisdn.json", "c2b-confirmation-v1-legacy-plain-msisdn.json"} {
			raw, err := os.ReadFile(filepath.Join(darajaFixtures, f))
			if err != nil {
				t.Fatal(err)
			}
			path := "/api/c2b/confirmation/"
			if strings.Contains(f, "validation") {
				path = "/api/c2b/validation/"
			}
			wantStatus(t, "POST "+path, svc.raw(t, http.MethodPost, path, nil, raw), http.StatusOK)
		}
		// Wait for the last thing logged by the background callback of the
		// success push to be sure the log is complete for it.
		svc.waitLog(t, "the applied callback", func(l map[string]any) bool {
			return l["msg"] == "stk callback applied" && l["payment_id"] == id
		})

		lines := svc.logLines(t) // fails on any line that is not JSON
		data, err := os.ReadFile(svc.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) < 5 {
			t.Fatalf("LOG_FILE: got %d lines, want the service's activity", len(lines))
		}
		if !strings.Contains(string(data), "2547****4149") {
			t.Errorf("LOG_FILE: got no masked phone 2547****4149, want the push logged with it")
		}
		for _, l := range strings.Split(string(data), "\n") {
			if fullPhone.MatchString(l) {
				t.Errorf("LOG_FILE: got the full phone number 254708374149 in %s, want it masked", l)
			}
			if strings.Contains(l, key) {
				t.Errorf("LOG_FILE: got the app's API key in %s, want it never logged", l)
			}
		}
	})
}

// TestConfig checks loadConfig and Validate: each wrong setting is named.
func TestConfig(t *testing.T) {
	sandbox := map[string]string{
		"MPESA_CONSUMER_KEY": "key", "MPESA_CONSUMER_SECRET": "secret", "MPESA_SHORTCODE": "174379",
		"MPESA_PASSKEY": "passkey", "MPESA_CALLBACK_URL": "https://pay.example.test/api/mpesa/stk-callback/",
		"LIPA_CALLBACK_TOKEN": "tok_0123456789abcdef",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name    string
		env     map[string]string
		dotenv  string // .env contents; "" for no file
		wantErr string // a variable the error must name; "" for no error
		check   func(t *testing.T, cfg Config)
	}{
		{name: "no configuration is simulator mode", env: map[string]string{},
			check: func(t *testing.T, cfg Config) {
				if cfg.Environment != "simulator" || cfg.ShortCode != "174379" || cfg.ListenAddr != "127.0.0.1:8000" || cfg.DatabaseURL != "sqlite:lipa.db" || cfg.LogFile != "payments.log" {
					t.Errorf("defaults: got %s %s %s %s %s, want simulator 174379 127.0.0.1:8000 sqlite:lipa.db payments.log",
						cfg.Environment, cfg.ShortCode, cfg.ListenAddr, cfg.DatabaseURL, cfg.LogFile)
				}
			}},
		{name: "a consumer key means sandbox", env: sandbox,
			check: func(t *testing.T, cfg Config) {
				if cfg.Environment != "sandbox" {
					t.Errorf("Environment: got %q, want sandbox", cfg.Environment)
				}
			}},
		{name: "sandbox without MPESA_CONSUMER_SECRET", env: with(sandbox, "MPESA_CONSUMER_SECRET", "<unset>"), wantErr: "MPESA_CONSUMER_SECRET"},
		{name: "sandbox without MPESA_PASSKEY", env: with(sandbox, "MPESA_ENVIRONMENT", "sandbox", "MPESA_PASSKEY", "<unset>"), wantErr: "MPESA_PASSKEY"},
		{name: "live means production", env: with(sandbox, "MPESA_ENVIRONMENT", "live"),
			check: func(t *testing.T, cfg Config) {
				if cfg.Environment != "production" {
					t.Errorf("Environment: got %q, want production", cfg.Environment)
				}
			}},
		{name: "production with an http callback URL", env: with(sandbox, "MPESA_ENVIRONMENT", "production", "MPESA_CALLBACK_URL", "http://pay.example.test/api/mpesa/stk-callback/"), wantErr: "MPESA_CALLBACK_URL"},
		{name: "unknown environment", env: map[string]string{"MPESA_ENVIRONMENT": "staging"}, wantErr: "MPESA_ENVIRONMENT"},
		{name: "buy goods without MPESA_PARTY_B", env: map[string]string{"MPESA_TRANSACTION_TYPE": "CustomerBuyGoodsOnline"}, wantErr: "MPESA_PARTY_B"},
		{name: "buy goods with MPESA_PARTY_B", env: map[string]string{"MPESA_TRANSACTION_TYPE": "CustomerBuyGoodsOnline", "MPESA_PARTY_B": "600000"},
			check: func(t *testing.T, cfg Config) {
				if cfg.PartyB != "600000" {
					t.Errorf("PartyB: got %q, want 600000", cfg.PartyB)
				}
			}},
		{name: "bad callback delay", env: map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "soon"}, wantErr: "LIPA_SIMULATOR_CALLBACK_DELAY"},
		{name: "negative callback delay", env: map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "-1s"}, wantErr: "LIPA_SIMULATOR_CALLBACK_DELAY"},
		{name: "zero callback delay", env: map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "0s"},
			check: func(t *testing.T, cfg Config) {
				if cfg.SimulatorDelay != 0 {
					t.Errorf("SimulatorDelay: got %v, want 0", cfg.SimulatorDelay)
				}
			}},
		{name: ".env is read and the environment wins over it",
			env:    map[string]string{"LISTEN_ADDR": "127.0.0.1:7777"},
			dotenv: "MPESA_SHORTCODE=600111\nLISTEN_ADDR=127.0.0.1:9999\nLOG_FILE=from-dotenv.log\n",
			check: func(t *testing.T, cfg Config) {
				if cfg.ShortCode != "600111" || cfg.LogFile != "from-dotenv.log" || cfg.ListenAddr != "127.0.0.1:7777" {
					t.Errorf("got ShortCode %q LogFile %q ListenAddr %q, want 600111 from-dotenv.log 127.0.0.1:7777", cfg.ShortCode, cfg.LogFile, cfg.ListenAddr)
				}
			}},
		{name: "a bad value in .env is named", dotenv: "MPESA_SHORTCODE=12\n", env: map[string]string{}, wantErr: "MPESA_SHORTCODE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dotenv := ""
			if c.dotenv != "" {
				dotenv = filepath.Join(t.TempDir(), ".env")
				if err := os.WriteFile(dotenv, []byte(c.dotenv), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := loadConfig(lookupIn(c.env), dotenv)
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("got no error, want one naming %s", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("got error %q, want one naming %s", err, c.wantErr)
			}
			if c.check != nil {
				c.check(t, cfg)
			}
		})
	}
}

// TestServeBadConfig runs `lipa serve` with a bad configuration: it must
// stop at once with one line naming the variable.
func TestServeBadConfig(t *testing.T) {
	sandbox := map[string]string{"MPESA_CONSUMER_KEY": "key", "MPESA_SHORTCODE": "174379", "MPESA_PASSKEY": "passkey",
		"MPESA_CALLBACK_URL": "https://pay.example.test/api/mpesa/stk-callback/", "LIPA_CALLBACK_TOKEN": "tok_0123456789abcdef"}
	for _, c := range []struct {
		name, variable string
		env            map[string]string
	}{
		{"sandbox without a secret", "MPESA_CONSUMER_SECRET", sandbox},
		{"bad callback delay", "LIPA_SIMULATOR_CALLBACK_DELAY", map[string]string{"LIPA_SIMULATOR_CALLBACK_DELAY": "2 seconds"}},
		{"production over http", "MPESA_CALLBACK_URL", map[string]string{"MPESA_ENVIRONMENT": "live", "MPESA_CONSUMER_KEY": "key",
			"MPESA_CONSUMER_SECRET": "secret", "MPESA_SHORTCODE": "174379", "MPESA_PASSKEY": "passkey", "MPESA_CALLBACK_URL": "http://pay.example.test/cb",
			"LIPA_CALLBACK_TOKEN": "tok_0123456789abcdef"}},
		{"buy goods without a till", "MPESA_PARTY_B", map[string]string{"MPESA_TRANSACTION_TYPE": "CustomerBuyGoodsOnline"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(dir, "lipa.db"), "LOG_FILE": filepath.Join(dir, "payments.log"), "LISTEN_ADDR": "127.0.0.1:0"}
			for k, v := range c.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, []string{"serve"}, lookupIn(env), &stdout, &stderr)
			if code == 0 {
				t.Fatalf("lipa serve: got exit code 0, want non-zero")
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.variable) {
				t.Errorf("lipa serve stderr: got %q, want one line naming %s", stderr.String(), c.variable)
			}
		})
	}
}
