package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// initiatorEnv is the environment of a Lipa with initiator credentials
// (Safaricom's public sandbox initiator name); extra overrides or adds.
func initiatorEnv(extra map[string]string) map[string]string {
	env := map[string]string{"MPESA_INITIATOR_NAME": "testapi", "MPESA_INITIATOR_PASSWORD": "Safaricom999!*!",
		"LIPA_REFUND_RESULT_TIMEOUT": "1s"}
	maps.Copy(env, extra)
	return env
}

// doWith is do with extra request headers.
func (s *testService) doWith(t *testing.T, method, path, key string, headers map[string]string, body any) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &r.Body); err != nil || r.Body == nil {
		t.Errorf("%s %s: got body %q (status %d), want a JSON object", method, path, raw, r.Status)
	}
	if r.Status >= 400 {
		checkErrorShape(t, method+" "+path, r)
	}
	return r
}

// refund asks for a refund of payment pid with body under Idempotency-Key
// idem ("" for none).
func (s *testService) refund(t *testing.T, key, pid string, body map[string]any, idem string) apiResponse {
	t.Helper()
	h := map[string]string{}
	if idem != "" {
		h["Idempotency-Key"] = idem
	}
	return s.doWith(t, http.MethodPost, "/api/payments/"+pid+"/refund/", key, h, body)
}

// paid pushes amount to phone and returns the payment once SUCCESS.
func (s *testService) paid(t *testing.T, key, phone string, amount int) map[string]any {
	t.Helper()
	r := s.pushOK(t, key, phone, amount, freshRef())
	return s.waitStatus(t, key, jsonStr(r.Body, "payment_id"), "SUCCESS")
}

// waitRefund polls GET /api/refunds/{id}/ until its status is one of want,
// and returns it; it fails the test at the deadline.
func (s *testService) waitRefund(t *testing.T, key, id string, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		r := s.do(t, http.MethodGet, "/api/refunds/"+id+"/", key, nil)
		wantStatus(t, "GET /api/refunds/"+id+"/", r, http.StatusOK)
		for _, w := range want {
			if jsonStr(r.Body, "status") == w {
				return r.Body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s: got %s, want status %v", id, r.Raw, want)
		}
		time.Sleep(e2ePollInterval)
	}
}

// eventsOf returns the app's events of type typ.
func (s *testService) eventsOf(t *testing.T, key, typ string) []map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/api/events/?limit=500", key, nil)
	wantStatus(t, "GET /api/events/", r, http.StatusOK)
	var out []map[string]any
	list, _ := r.Body["events"].([]any)
	for _, e := range list {
		if m, _ := e.(map[string]any); m != nil && m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

// reviewItems returns the open review items with reason, as `lipa review
// list --json` shows them.
func reviewItems(t *testing.T, env map[string]string, reason string) []map[string]any {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, "review", "list", "--json", "--reason", reason)
	if code != 0 {
		t.Fatalf("lipa review list: got exit code %d (stderr %q), want 0", code, stderr)
	}
	var items []map[string]any
	if err := json.Unmarshal([]byte(stdout), &items); err != nil {
		t.Fatalf("lipa review list --json: got %q: %v", stdout, err)
	}
	return items
}

// TestRefundHappyPath: a SUCCESS payment is refunded through Daraja's
// Reversal in the simulator: 202 PENDING, the same Idempotency-Key gets
// the same refund, the Result makes it SUCCESS with the reversal's
// receipt, the payment shows refunded_amount and the refund and keeps its
// status and claim, refund.succeeded is in the feed, and a second refund
// is 409 already_refunded.
func TestRefundHappyPath(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(nil))
		key := s.createApp(t, "shop")
		other := s.createApp(t, "school")
		p := s.paid(t, key, freshPhone(), 10)
		pid := jsonStr(p, "id")
		if c := s.do(t, http.MethodPost, "/api/payments/claim/", key, map[string]any{"payment_id": pid}); c.Status != http.StatusOK {
			t.Fatalf("claim: got %d %s, want 200", c.Status, c.Raw)
		}

		r := s.refund(t, key, pid, map[string]any{"reason": "customer returned goods", "amount": 10}, "refund-1")
		wantStatus(t, "POST refund", r, http.StatusAccepted)
		id := jsonStr(r.Body, "id")
		if !strings.HasPrefix(id, "ref_") || jsonStr(r.Body, "payment_id") != pid || jsonStr(r.Body, "mpesa_receipt_number") != jsonStr(p, "mpesa_receipt_number") {
			t.Fatalf("POST refund: got %s, want a ref_ refund of %s", r.Raw, pid)
		}
		if st := jsonStr(r.Body, "status"); st != "PENDING" && st != "SUCCESS" {
			t.Errorf("POST refund: got status %q, want PENDING (or SUCCESS already)", st)
		}
		again := s.refund(t, key, pid, map[string]any{"reason": "customer returned goods", "amount": 10}, "refund-1")
		wantStatus(t, "POST refund again", again, http.StatusAccepted)
		if jsonStr(again.Body, "id") != id || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("same Idempotency-Key: got %s (Idempotent-Replayed %q), want refund %s replayed", again.Raw, again.Header.Get("Idempotent-Replayed"), id)
		}
		reused := s.refund(t, key, pid, map[string]any{"reason": "another reason"}, "refund-1")
		wantError(t, "same key, other reason", reused, http.StatusUnprocessableEntity, "idempotency_key_reused")

		done := s.waitRefund(t, key, id, "SUCCESS", "FAILED")
		if jsonStr(done, "status") != "SUCCESS" || jsonStr(done, "resolved_by") != "result" || jsonStr(done, "reversal_receipt") == "" ||
			jsonStr(done, "result_code") != "0" || jsonStr(done, "conversation_id") == "" {
			t.Fatalf("refund: got %v, want SUCCESS by its result with a reversal receipt", done)
		}
		got := s.payment(t, key, pid)
		if got["status"] != "SUCCESS" || got["claimed"] != true || got["refunded_amount"] != float64(10) {
			t.Errorf("payment after the refund: got status %v claimed %v refunded_amount %v, want SUCCESS, true, 10", got["status"], got["claimed"], got["refunded_amount"])
		}
		if rs, _ := got["refunds"].([]any); len(rs) != 1 || jsonStr(rs[0].(map[string]any), "id") != id {
			t.Errorf("payment's refunds: got %v, want [%s]", got["refunds"], id)
		}
		evs := s.eventsOf(t, key, "refund.succeeded")
		if len(evs) != 1 || jsonStr(evs[0], "refund", "id") != id || jsonStr(evs[0], "payment", "id") != pid {
			t.Errorf("refund.succeeded events: got %v, want one about %s", evs, id)
		}
		if n := len(s.eventsOf(t, other, "refund.succeeded")); n != 0 {
			t.Errorf("another app's feed: got %d refund events, want none", n)
		}

		wantError(t, "second refund", s.refund(t, key, pid, map[string]any{"reason": "again please"}, "refund-2"), http.StatusConflict, "already_refunded")

		// The same through Lipa's Go client.
		c := s.appClient(t, key)
		if got, err := c.RefundByID(context.Background(), id); err != nil || got.Status != client.RefundSucceeded || got.ReversalReceipt == "" {
			t.Errorf("client.RefundByID: got %+v, %v; want SUCCESS with a reversal receipt", got, err)
		}
		if got, err := c.Payment(context.Background(), pid); err != nil || got.RefundedAmount != client.Shillings(10) || len(got.Refunds) != 1 {
			t.Errorf("client.Payment: got %+v, %v; want refunded_amount 10 and one refund", got, err)
		}
		_, err := c.Refund(context.Background(), client.RefundRequest{PaymentID: pid, Reason: "third time"})
		if !errors.Is(err, client.ErrAlreadyRefunded) {
			t.Errorf("client.Refund of a refunded payment: got %v, want ErrAlreadyRefunded", err)
		}
		viaClient := s.paid(t, key, freshPhone(), 11)
		if got, err := c.Refund(context.Background(), client.RefundRequest{PaymentID: jsonStr(viaClient, "id"), Reason: "via the client"}); err != nil ||
			!strings.HasPrefix(got.ID, "ref_") || got.Amount != client.Shillings(11) {
			t.Errorf("client.Refund: got %+v, %v; want a refund of 11", got, err)
		}
		wantError(t, "another app's payment", s.refund(t, other, pid, map[string]any{"reason": "not mine"}, ""), http.StatusNotFound, "payment_not_found")
		wantError(t, "another app's refund", s.do(t, http.MethodGet, "/api/refunds/"+id+"/", other, nil), http.StatusNotFound, "refund_not_found")

		p2 := s.paid(t, key, freshPhone(), 20)
		for _, c := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"part of the amount", map[string]any{"reason": "half back", "amount": 5}, http.StatusUnprocessableEntity, "partial_refund_unsupported"},
			{"no reason", map[string]any{"amount": 20}, http.StatusBadRequest, "invalid_reason"},
			{"a one-letter reason", map[string]any{"reason": "x"}, http.StatusBadRequest, "invalid_reason"},
			{"a bad amount", map[string]any{"reason": "ok then", "amount": "abc"}, http.StatusBadRequest, "invalid_amount"},
		} {
			wantError(t, c.name, s.refund(t, key, jsonStr(p2, "id"), c.body, ""), c.status, c.code)
		}
		failed := s.pushOK(t, key, darajasim.PhoneCancelled, 30, freshRef())
		s.waitStatus(t, key, jsonStr(failed.Body, "payment_id"), "FAILED")
		wantError(t, "a FAILED payment", s.refund(t, key, jsonStr(failed.Body, "payment_id"), map[string]any{"reason": "nothing to give"}, ""),
			http.StatusConflict, "payment_not_successful")
	})
}

// TestRefundOutcomes: each scripted outcome of the simulator's Reversal
// (by the original payer's phone) ends the refund as Daraja's result says;
// a Result that never comes, and a request that expires in M-Pesa's queue,
// are settled by Transaction Status after LIPA_REFUND_RESULT_TIMEOUT; a
// wrong initiator is initiator_rejected.
func TestRefundOutcomes(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(nil))
		key := s.createApp(t, "shop")
		for _, c := range []struct {
			phone, status, reason, resolvedBy, code string
		}{
			{darajasim.PhoneReversalAlreadyReversed, "FAILED", "already_refunded", "result", "R000001"},
			{darajasim.PhoneReversalInitiatorFails, "FAILED", "initiator_rejected", "result", "2001"},
			{darajasim.PhoneReversalLocked, "FAILED", "credential_locked", "result", "8006"},
			{darajasim.PhoneReversalInvalid, "FAILED", "transaction_not_found", "result", "R000002"},
			{darajasim.PhoneReversalNoResult, "SUCCESS", "", "status", "0"},
			{darajasim.PhoneReversalQueueTimeout, "FAILED", "reversal_not_found", "status", "2032"},
		} {
			t.Run(c.phone, func(t *testing.T) {
				p := s.paid(t, key, c.phone, 15)
				r := s.refund(t, key, jsonStr(p, "id"), map[string]any{"reason": "test outcome"}, "")
				wantStatus(t, "POST refund", r, http.StatusAccepted)
				got := s.waitRefund(t, key, jsonStr(r.Body, "id"), "SUCCESS", "FAILED")
				if jsonStr(got, "status") != c.status || jsonStr(got, "failure_reason") != c.reason ||
					jsonStr(got, "resolved_by") != c.resolvedBy || jsonStr(got, "result_code") != c.code {
					t.Errorf("refund: got %v, want %s %q by %s with result code %s", got, c.status, c.reason, c.resolvedBy, c.code)
				}
				if c.status == "SUCCESS" && jsonStr(got, "reversal_receipt") == "" {
					t.Errorf("refund settled by Transaction Status: got no reversal_receipt, want the reversal's")
				}
				want := "refund.failed"
				if c.status == "SUCCESS" {
					want = "refund.succeeded"
				}
				n := 0
				for _, e := range s.eventsOf(t, key, want) {
					if jsonStr(e, "refund", "id") == jsonStr(r.Body, "id") {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s events of the refund: got %d, want 1", want, n)
				}
			})
		}
		t.Run("after R000001 a new refund is already_refunded", func(t *testing.T) {
			rs := s.do(t, http.MethodGet, "/api/payments/?limit=200", key, nil)
			for _, x := range rs.Body["payments"].([]any) {
				pm := x.(map[string]any)
				if pm["phone_number"] == darajasim.PhoneReversalAlreadyReversed {
					wantError(t, "refund again", s.refund(t, key, jsonStr(pm, "id"), map[string]any{"reason": "once more"}, ""),
						http.StatusConflict, "already_refunded")
					return
				}
			}
			t.Fatal("no payment of the R000001 phone")
		})
	})
	t.Run("wrong initiator", func(t *testing.T) {
		s := startTestService(t, sqlstoretest.URL(t, "sqlite"), initiatorEnv(map[string]string{"MPESA_INITIATOR_NAME": darajasim.InitiatorInvalid}))
		key := s.createApp(t, "shop")
		p := s.paid(t, key, freshPhone(), 10)
		r := s.refund(t, key, jsonStr(p, "id"), map[string]any{"reason": "wrong initiator"}, "")
		wantStatus(t, "POST refund", r, http.StatusAccepted)
		got := s.waitRefund(t, key, jsonStr(r.Body, "id"), "SUCCESS", "FAILED")
		if jsonStr(got, "failure_reason") != "initiator_rejected" || jsonStr(got, "result_code") != "2001" {
			t.Errorf("refund as a wrong initiator: got %v, want FAILED initiator_rejected (2001)", got)
		}
		if rd := s.do(t, http.MethodGet, "/readyz", "", nil); rd.Status != http.StatusOK {
			t.Errorf("/readyz after a refused initiator: got %d %s, want 200", rd.Status, rd.Raw)
		}
	})
}

// TestRefundApproval: with LIPA_REFUND_APPROVAL an amount, a refund above
// it waits in AWAITING_APPROVAL until an operator approves it (then it is
// sent and succeeds) or rejects it (REJECTED, refund.failed, M-Pesa never
// asked); smaller ones go at once; decisions are audited; the app has no
// way to approve.
func TestRefundApproval(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(map[string]string{"LIPA_REFUND_APPROVAL": "50", "LIPA_ADMIN_KEY": "admin-key-0123456789"}))
		key := s.createApp(t, "shop")

		small := s.paid(t, key, freshPhone(), 50)
		r := s.refund(t, key, jsonStr(small, "id"), map[string]any{"reason": "small refund"}, "")
		if st := jsonStr(r.Body, "status"); r.Status != http.StatusAccepted || st == "AWAITING_APPROVAL" {
			t.Errorf("refund of 50 (not above 50): got %d %s, want 202 without approval", r.Status, r.Raw)
		}

		big := s.paid(t, key, freshPhone(), 60)
		r = s.refund(t, key, jsonStr(big, "id"), map[string]any{"reason": "big refund"}, "approve-me")
		wantStatus(t, "POST refund", r, http.StatusAccepted)
		id := jsonStr(r.Body, "id")
		if jsonStr(r.Body, "status") != "AWAITING_APPROVAL" || r.Body["approval_required"] != true {
			t.Fatalf("refund of 60: got %s, want AWAITING_APPROVAL", r.Raw)
		}
		// The app's key opens no operators' endpoint.
		app := s.doWith(t, http.MethodPost, "/api/admin/refunds/"+id+"/approve/", "", map[string]string{"X-ADMIN-KEY": key}, map[string]any{"reason": "self"})
		wantError(t, "approval with the app's key", app, http.StatusUnauthorized, "invalid_admin_key")
		if code, _, _ := runCLI(t, s.Env, "refunds", "approve", id); code != 2 {
			t.Errorf("lipa refunds approve without --reason: got exit code %d, want 2", code)
		}
		code, stdout, stderr := runCLI(t, s.Env, "refunds", "list", "--status", "AWAITING_APPROVAL")
		if code != 0 || !strings.Contains(stdout, id) {
			t.Errorf("lipa refunds list --status AWAITING_APPROVAL: got %d %q %q, want it to list %s", code, stdout, stderr, id)
		}
		code, stdout, stderr = runCLI(t, s.Env, "refunds", "approve", id, "--reason", "receipt checked")
		if code != 0 {
			t.Fatalf("lipa refunds approve: got %d %q %q, want 0", code, stdout, stderr)
		}
		got := s.waitRefund(t, key, id, "SUCCESS", "FAILED")
		if jsonStr(got, "status") != "SUCCESS" {
			t.Errorf("approved refund: got %v, want SUCCESS", got)
		}
		if code, _, _ := runCLI(t, s.Env, "refunds", "approve", id, "--reason", "twice"); code != 1 {
			t.Errorf("approving a refund twice: got exit code %d, want 1", code)
		}

		other := s.paid(t, key, freshPhone(), 70)
		r = s.refund(t, key, jsonStr(other, "id"), map[string]any{"reason": "rejected refund"}, "")
		id2 := jsonStr(r.Body, "id")
		rej := s.doWith(t, http.MethodPost, "/api/admin/refunds/"+id2+"/reject/", "", map[string]string{"X-ADMIN-KEY": "admin-key-0123456789"},
			map[string]any{"reason": "not our customer"})
		wantStatus(t, "admin reject", rej, http.StatusOK)
		if jsonStr(rej.Body, "status") != "REJECTED" || jsonStr(rej.Body, "decided_by") != "api:admin-api" {
			t.Errorf("admin reject: got %s, want REJECTED decided by api:admin-api", rej.Raw)
		}
		got = s.waitRefund(t, key, id2, "REJECTED")
		if jsonStr(got, "failure_reason") != "rejected_by_operator" || jsonStr(got, "conversation_id") != "" {
			t.Errorf("rejected refund: got %v, want rejected_by_operator and never sent", got)
		}
		found := false
		for _, e := range s.eventsOf(t, key, "refund.failed") {
			found = found || jsonStr(e, "refund", "id") == id2
		}
		if !found {
			t.Errorf("refund.failed of the rejected refund: got none, want one")
		}
		code, stdout, _ = runCLI(t, s.Env, "audit", "list", "--json")
		if code != 0 || !strings.Contains(stdout, `"refund.approve"`) || !strings.Contains(stdout, `"refund.reject"`) || !strings.Contains(stdout, "refund:"+id) {
			t.Errorf("audit log: got %q, want refund.approve and refund.reject entries", stdout)
		}
	})
}

// TestRefundResultAppliedOnce: a Reversal Result delivered again (twice
// more) changes nothing and sends no second event; a contradicting one is
// stored and goes to the review queue; one for no known request is stored
// as unmatched and goes there too.
func TestRefundResultAppliedOnce(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(nil))
		key := s.createApp(t, "shop")
		p := s.paid(t, key, freshPhone(), 10)
		r := s.refund(t, key, jsonStr(p, "id"), map[string]any{"reason": "replay test"}, "")
		ref := s.waitRefund(t, key, jsonStr(r.Body, "id"), "SUCCESS")
		result := func(code any, conv, orig, receipt string) []byte {
			b, _ := json.Marshal(map[string]any{"Result": map[string]any{"ResultType": 0, "ResultCode": code,
				"ResultDesc": "The service request is processed successfully.", "OriginatorConversationID": orig,
				"ConversationID": conv, "TransactionID": receipt}})
			return b
		}
		same := result(0, jsonStr(ref, "conversation_id"), jsonStr(ref, "originator_conversation_id"), jsonStr(ref, "reversal_receipt"))
		for i := range 2 {
			st, body, err := s.safaricomPost("/api/reversal/result/", same)
			if err != nil || st != http.StatusOK || body["ResultCode"] != float64(0) {
				t.Fatalf("Result again (%d): got %d %v %v, want 200 Accepted", i+1, st, body, err)
			}
		}
		if got := s.waitRefund(t, key, jsonStr(ref, "id"), "SUCCESS"); jsonStr(got, "updated_at") != jsonStr(ref, "updated_at") {
			t.Errorf("refund after the repeats: got %v, want it unchanged (%v)", got, ref)
		}
		if n := len(s.eventsOf(t, key, "refund.succeeded")); n != 1 {
			t.Errorf("refund.succeeded events: got %d, want 1", n)
		}
		contra := result("R000001", jsonStr(ref, "conversation_id"), jsonStr(ref, "originator_conversation_id"), "UAA0000000")
		if st, _, err := s.safaricomPost("/api/reversal/result/", contra); err != nil || st != http.StatusOK {
			t.Fatalf("contradicting Result: got %d %v, want 200", st, err)
		}
		if got := s.waitRefund(t, key, jsonStr(ref, "id"), "SUCCESS"); jsonStr(got, "status") != "SUCCESS" {
			t.Errorf("refund after a contradicting Result: got %v, want still SUCCESS", got)
		}
		if items := reviewItems(t, s.Env, "refund_conflict"); len(items) != 1 {
			t.Errorf("refund_conflict review items: got %v, want one", items)
		}
		if st, _, err := s.safaricomPost("/api/reversal/result/", result(0, "AG_20261129_000000000000unknown", "unknown-originator", "UAA1111111")); err != nil || st != http.StatusOK {
			t.Fatalf("unknown Result: got %d %v, want 200", st, err)
		}
		if items := reviewItems(t, s.Env, "unmatched_result"); len(items) != 1 {
			t.Errorf("unmatched_result review items: got %v, want one", items)
		}
		if st, _, err := s.safaricomPost("/api/reversal/result/", []byte(`{"not":"a result"}`)); err != nil || st != http.StatusBadRequest {
			t.Errorf("malformed Result: got %d %v, want 400", st, err)
		}
	})
}

// TestAfterSaleNotConfigured: without initiator settings refunds and
// lookup=daraja answer 501 not_configured naming them; /readyz is 200.
func TestAfterSaleNotConfigured(t *testing.T) {
	s := startTestService(t, sqlstoretest.URL(t, "sqlite"), nil)
	key := s.createApp(t, "shop")
	p := s.paid(t, key, freshPhone(), 10)
	r := s.refund(t, key, jsonStr(p, "id"), map[string]any{"reason": "no initiator"}, "")
	wantError(t, "refund without initiator", r, http.StatusNotImplemented, "not_configured")
	if !strings.Contains(string(r.Raw), "MPESA_INITIATOR_NAME") || !strings.Contains(string(r.Raw), "MPESA_INITIATOR_PASSWORD") {
		t.Errorf("refund without initiator: got %s, want the settings named", r.Raw)
	}
	wantError(t, "lookup without initiator", s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {"UAB1234567"}, "lookup": {"daraja"}}.Encode(), key, nil), http.StatusNotImplemented, "not_configured")
	if rd := s.do(t, http.MethodGet, "/readyz", "", nil); rd.Status != http.StatusOK {
		t.Errorf("/readyz: got %d %s, want 200", rd.Status, rd.Raw)
	}
	if code, _, stderr := runCLI(t, s.Env, "transactions", "status", "UAB1234567"); code != 1 || !strings.Contains(stderr, "MPESA_INITIATOR_NAME") {
		t.Errorf("lipa transactions status without initiator: got %d %q, want 1 naming MPESA_INITIATOR_NAME", code, stderr)
	}
}

// TestTransactionStatusForOperators: `lipa transactions status` and the
// admin API show what M-Pesa says about a receipt (Completed, and Lipa's
// payment), and about one it does not know.
func TestTransactionStatusForOperators(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(map[string]string{"LIPA_ADMIN_KEY": "admin-key-0123456789"}))
		key := s.createApp(t, "shop")
		p := s.paid(t, key, freshPhone(), 25)
		receipt := jsonStr(p, "mpesa_receipt_number")
		code, stdout, stderr := runCLI(t, s.Env, "transactions", "status", receipt)
		if code != 0 || !strings.Contains(stdout, "Completed") || !strings.Contains(stdout, jsonStr(p, "id")) || !strings.Contains(stdout, "25 shillings") {
			t.Errorf("lipa transactions status %s: got %d %q %q, want Completed, 25 shillings and the payment", receipt, code, stdout, stderr)
		}
		code, stdout, _ = runCLI(t, s.Env, "transactions", "status", "UZZ9999999")
		if code != 0 || !strings.Contains(stdout, "not found") || !strings.Contains(stdout, "2032") {
			t.Errorf("lipa transactions status of an unknown receipt: got %d %q, want not found (2032)", code, stdout)
		}
		a := s.doWith(t, http.MethodPost, "/api/admin/transactions/status/", "", map[string]string{"X-ADMIN-KEY": "admin-key-0123456789"},
			map[string]any{"receipt": receipt})
		wantStatus(t, "admin transaction status", a, http.StatusOK)
		if a.Body["found"] != true || jsonStr(a.Body, "transaction_status") != "Completed" || a.Body["amount"] != float64(25) ||
			jsonStr(a.Body, "payment", "id") != jsonStr(p, "id") || jsonStr(a.Body, "source") != "daraja" {
			t.Errorf("admin transaction status: got %s, want found, Completed, 25 and the payment", a.Raw)
		}
		bad := s.doWith(t, http.MethodPost, "/api/admin/transactions/status/", "", map[string]string{"X-ADMIN-KEY": "admin-key-0123456789"},
			map[string]any{"receipt": "not a receipt"})
		wantError(t, "admin transaction status of a bad receipt", bad, http.StatusBadRequest, "invalid_receipt")
	})
}

// TestVerifyLookupDaraja: verify with lookup=daraja asks M-Pesa about a
// receipt Lipa has never seen: one M-Pesa knows (a C2B payment whose
// confirmation was withheld) is answered as Daraja's, creates no payment
// and goes to the review queue; one it does not know is 404 with
// details.source daraja; without lookup nothing is asked.
func TestVerifyLookupDaraja(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(nil))
		key := s.createApp(t, "shop")
		if code, out, stderr := runCLI(t, s.Env, "simulate", "c2b", "--amount", "45", "--account", "LOOKUP1", "--phone", "254708374149", "--no-confirmation"); code != 0 {
			t.Fatalf("lipa simulate c2b --no-confirmation: got %d %q %q, want 0", code, out, stderr)
		}
		receipt := simReceipt(t, s, "LOOKUP1")
		wantError(t, "verify without lookup", s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {receipt}}.Encode(), key, nil), http.StatusNotFound, "payment_not_found")
		r := s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {receipt}, "lookup": {"daraja"}}.Encode(), key, nil)
		wantStatus(t, "verify lookup=daraja", r, http.StatusOK)
		if jsonStr(r.Body, "source") != "daraja" || r.Body["paid"] != false || r.Body["claimable"] != false || r.Body["amount"] != float64(45) ||
			jsonStr(r.Body, "transaction_status") != "Completed" {
			t.Errorf("verify lookup=daraja: got %s, want M-Pesa's answer, not paid, 45", r.Raw)
		}
		if list := s.do(t, http.MethodGet, "/api/payments/?reference=LOOKUP1", key, nil); len(list.Body["payments"].([]any)) != 0 {
			t.Errorf("payments under LOOKUP1: got %s, want none (a lookup creates no payment)", list.Raw)
		}
		if items := reviewItems(t, s.Env, "daraja_lookup"); len(items) != 1 || jsonStr(items[0], "receipt") != receipt {
			t.Errorf("daraja_lookup review items: got %v, want one for %s", items, receipt)
		}
		nf := s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {"UZZ0000001"}, "lookup": {"daraja"}}.Encode(), key, nil)
		wantError(t, "lookup of an unknown receipt", nf, http.StatusNotFound, "payment_not_found")
		if jsonStr(nf.Body, "error", "details", "source") != "daraja" {
			t.Errorf("lookup of an unknown receipt: got %s, want details.source daraja", nf.Raw)
		}
		wantError(t, "lookup=other", s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"receipt": {receipt}, "lookup": {"elsewhere"}}.Encode(), key, nil), http.StatusBadRequest, "invalid_parameter")
	})
}

// simReceipt waits until the built-in simulator's transaction log has a
// payment under billRef, and returns its receipt.
func simReceipt(t *testing.T, s *testService, billRef string) string {
	t.Helper()
	deadline := time.Now().Add(e2eWaitTimeout)
	for {
		for _, tx := range s.srv.sim.Transactions() {
			if tx.BillRef == billRef {
				return tx.Receipt
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator logged no payment under %s", billRef)
		}
		time.Sleep(e2ePollInterval)
	}
}

// pulledPayments returns the payments under reference the app sees.
func (s *testService) pulledPayments(t *testing.T, key, reference string) []map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/api/payments/?limit=200&reference="+url.QueryEscape(reference), key, nil)
	wantStatus(t, "GET /api/payments/", r, http.StatusOK)
	var out []map[string]any
	for _, p := range r.Body["payments"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

// TestPullRecoversWithheldC2B: a C2B payment whose confirmation never
// reached Lipa appears after `lipa pull run` as one intake payment
// (resolved_by pull, c2b.received), also when two pulls run at once and
// when the pull runs again.
func TestPullRecoversWithheldC2B(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(map[string]string{"LIPA_PULL_INTERVAL": "0"}))
		key := s.createApp(t, "shop")
		for _, ref := range []string{"PULL1", "PULL2"} {
			if code, out, stderr := runCLI(t, s.Env, "simulate", "c2b", "--amount", "55", "--account", ref, "--phone", "254708374149", "--no-confirmation"); code != 0 {
				t.Fatalf("lipa simulate c2b --no-confirmation: got %d %q %q, want 0", code, out, stderr)
			}
		}
		simReceipt(t, s, "PULL1")
		simReceipt(t, s, "PULL2")
		if ps := s.pulledPayments(t, key, "PULL1"); len(ps) != 0 {
			t.Fatalf("before the pull: got %v, want no payment", ps)
		}
		var wg sync.WaitGroup
		codes := make([]int, 2)
		outs := make([]string, 2)
		for i := range 2 {
			wg.Go(func() { codes[i], outs[i], _ = runCLI(t, s.Env, "pull", "run", "--since", "1h") })
		}
		wg.Wait()
		for i := range 2 {
			if codes[i] != 0 {
				t.Errorf("lipa pull run (at once, %d): got exit code %d (%q), want 0", i, codes[i], outs[i])
			}
		}
		if code, out, stderr := runCLI(t, s.Env, "pull", "run", "--since", "1h", "--json"); code != 0 || !strings.Contains(out, `"created":0`) {
			t.Errorf("lipa pull run again: got %d %q %q, want 0 with nothing created", code, out, stderr)
		}
		for _, ref := range []string{"PULL1", "PULL2"} {
			ps := s.pulledPayments(t, key, ref)
			if len(ps) != 1 {
				t.Fatalf("payments under %s after the pulls: got %d (%v), want 1", ref, len(ps), ps)
			}
			p := ps[0]
			if p["payment_type"] != "C2B" || p["status"] != "SUCCESS" || p["resolved_by"] != "pull" || p["amount"] != float64(55) ||
				jsonStr(p, "mpesa_receipt_number") == "" || p["app"] != nil {
				t.Errorf("pulled payment %s: got %v, want a SUCCESS C2B intake payment of 55 resolved_by pull with a receipt", ref, p)
			}
			v := s.do(t, http.MethodGet, "/api/payments/verify/?"+url.Values{"reference": {ref}}.Encode(), key, nil)
			if v.Status != http.StatusOK || v.Body["paid"] != true {
				t.Errorf("verify %s: got %d %s, want paid", ref, v.Status, v.Raw)
			}
		}
		if n := len(s.eventsOf(t, key, "c2b.received")); n != 2 {
			t.Errorf("c2b.received events: got %d, want 2 (one per payment)", n)
		}
	})
}

// TestPullGivesQuerySettledReceipt: a push settled SUCCESS by the STK
// push query (its callback never came, so no receipt) gets its receipt from
// the Pull backfill, as the simulator's log has it; nothing else is made.
func TestPullGivesQuerySettledReceipt(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(map[string]string{"LIPA_RECONCILE_AFTER": "1s", "LIPA_PULL_INTERVAL": "0"}))
		key := s.createApp(t, "shop")
		r := s.pushOK(t, key, darajasim.PhoneNoCallback, 35, "QUERY1")
		pid := jsonStr(r.Body, "payment_id")
		p := s.waitStatus(t, key, pid, "SUCCESS")
		if p["resolved_by"] != "query" || p["mpesa_receipt_number"] != nil {
			t.Fatalf("payment settled by query: got %v, want resolved_by query without a receipt", p)
		}
		wantError(t, "refund without a receipt", s.refund(t, key, pid, map[string]any{"reason": "too early"}, ""), http.StatusConflict, "payment_has_no_receipt")
		if code, out, stderr := runCLI(t, s.Env, "pull", "run", "--since", "1h"); code != 0 {
			t.Fatalf("lipa pull run: got %d %q %q, want 0", code, out, stderr)
		}
		p = s.payment(t, key, pid)
		want := simReceipt(t, s, "QUERY1")
		if jsonStr(p, "mpesa_receipt_number") != want || p["status"] != "SUCCESS" || p["resolved_by"] != "query" {
			t.Errorf("after the pull: got %v, want SUCCESS by query with receipt %q", p, want)
		}
		if ps := s.pulledPayments(t, key, "QUERY1"); len(ps) != 1 {
			t.Errorf("payments under QUERY1: got %d, want 1 (no C2B copy)", len(ps))
		}
	})
}

// TestC2BConfirmedByTransactionStatus: with LIPA_CONFIRM_BY_QUERY and
// initiator credentials, a C2B confirmation becomes a payment only once
// Transaction Status confirms its receipt and amount; a forged one (a
// receipt M-Pesa does not know) makes none and goes to the review queue;
// an STK callback's receipt is checked the same way once the STK push
// query has confirmed the payment.
func TestC2BConfirmedByTransactionStatus(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, initiatorEnv(map[string]string{"LIPA_CONFIRM_BY_QUERY": "true"}))
		key := s.createApp(t, "shop")
		// Paid at the built-in simulator, so that M-Pesa's log has it.
		if _, err := s.srv.sim.PayC2B(context.Background(), darajasim.C2BPayment{ShortCode: darajasim.SandboxShortCode,
			CommandID: darajasim.CommandPayBill, Amount: 65, MSISDN: "254708374149", BillRefNumber: "CONF1"}); err != nil {
			t.Fatalf("PayC2B: %v", err)
		}
		deadline := time.Now().Add(e2eWaitTimeout)
		for len(s.pulledPayments(t, key, "CONF1")) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the confirmed C2B payment never appeared")
			}
			time.Sleep(e2ePollInterval)
		}
		forged, _ := json.Marshal(map[string]any{"TransactionType": "Pay Bill", "TransID": "UFF0000001", "TransTime": "20261129100000",
			"TransAmount": "1000.00", "BusinessShortCode": "174379", "BillRefNumber": "FORGED1", "MSISDN": "254708374149"})
		if st, _, err := s.safaricomPost("/api/c2b/confirmation/", forged); err != nil || st != http.StatusOK {
			t.Fatalf("forged confirmation: got %d %v, want 200", st, err)
		}
		deadline = time.Now().Add(e2eWaitTimeout)
		for len(reviewItems(t, s.Env, "receipt_not_confirmed")) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the forged confirmation never reached the review queue")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ps := s.pulledPayments(t, key, "FORGED1"); len(ps) != 0 {
			t.Errorf("payments under FORGED1: got %v, want none", ps)
		}

		// An STK push: its callback waits for the STK push query, and the
		// receipt it brings is then checked with Transaction Status.
		r := s.pushOK(t, key, freshPhone(), 12, freshRef())
		p := s.waitStatus(t, key, jsonStr(r.Body, "payment_id"), "SUCCESS")
		receipt := ""
		deadline = time.Now().Add(e2eWaitTimeout)
		for receipt == "" {
			receipt = jsonStr(s.payment(t, key, jsonStr(p, "id")), "mpesa_receipt_number")
			if time.Now().After(deadline) {
				t.Fatal("the confirmed push never got its receipt")
			}
			time.Sleep(e2ePollInterval)
		}
		s.waitLog(t, "Transaction Status answering about "+receipt, func(l map[string]any) bool {
			return l["msg"] == "transaction status answered" && l["purpose"] == "confirm_receipt" && l["result_code"] == "0"
		})
		for _, it := range reviewItems(t, s.Env, "receipt_not_confirmed") {
			if jsonStr(it, "receipt") == receipt {
				t.Errorf("a genuine receipt in the review queue: %v", it)
			}
		}
	})
}

// TestAfterSaleConfig: the settings' defaults and refusals.
func TestAfterSaleConfig(t *testing.T) {
	cfg, err := loadConfig(lookupIn(map[string]string{}), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RefundResultTimeout != 5*time.Minute || cfg.PullInterval != 15*time.Minute || cfg.RefundApproval.Required ||
		cfg.DarajaLookupsPerHour != 30 || cfg.InitiatorName != "" || cfg.PullNominatedNumber != "254708374149" {
		t.Errorf("defaults: got %+v", cfg)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MPESA_INITIATOR_NAME": "testapi"}, "MPESA_INITIATOR_PASSWORD"},
		{map[string]string{"MPESA_INITIATOR_PASSWORD": "x"}, "MPESA_INITIATOR_NAME"},
		{map[string]string{"LIPA_REFUND_APPROVAL": "sometimes"}, "LIPA_REFUND_APPROVAL"},
		{map[string]string{"LIPA_PULL_INTERVAL": "72h"}, "LIPA_PULL_INTERVAL"},
		{map[string]string{"LIPA_REFUND_RESULT_TIMEOUT": "10ms"}, "LIPA_REFUND_RESULT_TIMEOUT"},
		{map[string]string{"LIPA_DARAJA_LOOKUPS_PER_HOUR": "-1"}, "LIPA_DARAJA_LOOKUPS_PER_HOUR"},
	} {
		if _, err := loadConfig(lookupIn(c.env), ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("loadConfig(%v): got %v, want an error naming %s", c.env, err, c.want)
		}
	}
	cfg, err = loadConfig(lookupIn(map[string]string{"LIPA_REFUND_APPROVAL": "500", "MPESA_INITIATOR_NAME": "testapi", "MPESA_INITIATOR_PASSWORD": "secret-pass"}), "")
	if err != nil || !cfg.RefundApproval.Required || cfg.RefundApproval.Above.String() != "500" {
		t.Errorf("LIPA_REFUND_APPROVAL=500: got %+v %v", cfg.RefundApproval, err)
	}
	if s := fmt.Sprintf("%v %+v", cfg.InitiatorPassword, cfg); strings.Contains(s, "secret-pass") {
		t.Errorf("the initiator password is printed: %s", s)
	}
}

// safaricomPost sends body to path as Safaricom would (no key), through the
// harness's one raw sender, and returns the status and the JSON answer.
func (s *testService) safaricomPost(path string, body []byte) (int, map[string]any, error) {
	r, err := s.send(http.MethodPost, path, nil, body)
	return r.Status, r.Body, err
}
