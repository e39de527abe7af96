package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/api/openapitest"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// The security suite (issue 5): every test attacks the real service,
// started in-process by startService on a free loopback port, over real
// HTTP, and after each attack checks the answer and that nothing changed.

// secToken is the LIPA_CALLBACK_TOKEN of every service these tests start.
const secToken = "secTest_cbToken_7Qk2xV9pLm3Z"

// secQuick bounds how long a hostile request may take to be answered: a
// failure deadline against pathological parsing, not a benchmark.
const secQuick = 5 * time.Second

// secStart starts Lipa in simulator mode on databaseURL with
// LIPA_CALLBACK_TOKEN=secToken and tokenless callbacks off (the default of
// lipa serve, set explicitly as startTestService turns them on), a
// built-in simulator that settles pushes only after ten minutes (a push
// stays PENDING until the test posts its callback), no reconciliation, no
// per-app or failed-authentication limit, and then the settings in kv
// (name, value, name, value…), which override those.
func secStart(t *testing.T, databaseURL string, kv ...string) *testService {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("secStart: got %d settings strings, want name/value pairs", len(kv))
	}
	env := map[string]string{
		"LIPA_CALLBACK_TOKEN":             secToken,
		"MPESA_ALLOW_TOKENLESS_CALLBACKS": "false",
		"LIPA_SIMULATOR_CALLBACK_DELAY":   "10m",
		"LIPA_RECONCILE_AFTER":            "10m",
		"LIPA_APP_RATE_LIMIT":             "0",
		"LIPA_AUTH_FAILURES_PER_MINUTE":   "0",
	}
	for i := 0; i < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return startTestService(t, databaseURL, env)
}

// secReq is one request a security test sends.
type secReq struct {
	method string
	path   string            // with its query string
	key    string            // X-API-KEY, when not empty
	header map[string]string // more headers
	body   any               // nil; a string or []byte, sent as is; or a value sent as its JSON
}

// secSend sends r to svc through client (svc's own when nil; both check
// the exchange against the OpenAPI document) and returns the answer, its
// body decoded when it is a JSON object. Only a transport error stops the
// test: a hostile request may get any answer, JSON or not.
func secSend(t *testing.T, svc *testService, client *http.Client, r secReq) apiResponse {
	t.Helper()
	header := http.Header{}
	if r.key != "" {
		header.Set("X-API-KEY", r.key)
	}
	for k, v := range r.header {
		header.Set(k, v)
	}
	if client == nil {
		client = svc.client
	}
	out, err := svc.sendVia(client, r.method, r.path, header, r.body)
	if err != nil && out.Status == 0 {
		t.Fatalf("%s %q: %v", r.method, r.path, err)
	}
	return out
}

// secClientFrom returns an HTTP client whose connections come from the
// loopback address src (127.0.0.2, 127.0.0.3, …), so that one service
// sees several source addresses.
func secClientFrom(t *testing.T, src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	hc := checkedClient(t, &http.Transport{DialContext: d.DialContext})
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// secCode returns the error code of an error answer.
func secCode(r apiResponse) string { return jsonStr(r.Body, "error", "code") }

// secPending is an STK push that the simulator does not settle during the
// test.
type secPending struct {
	id, checkoutID, phone, ref string
	amount                     int
}

// secPush pushes amount shillings to a fresh phone as the app with key and
// returns the PENDING payment.
func secPush(t *testing.T, svc *testService, key string, amount int) secPending {
	t.Helper()
	p := secPending{phone: freshPhone(), ref: freshRef(), amount: amount}
	r := pushOK(t, svc.appClient(t, key), p.phone, int64(amount), p.ref)
	p.id, p.checkoutID = r.PaymentID, r.CheckoutRequestID
	return p
}

// secPaymentRaw returns the payment as the app with key reads it, byte
// for byte: equal snapshots mean nothing about it changed (status,
// receipt, claim, updated_at…).
func secPaymentRaw(t *testing.T, svc *testService, key, id string) string {
	t.Helper()
	r := svc.raw(t, http.MethodGet, "/api/payments/"+id+"/", keyHeader(key), nil)
	wantStatus(t, "GET /api/payments/"+id+"/", r, http.StatusOK)
	return string(r.Raw)
}

// secListRaw returns the app's newest 200 payments as listed, byte for
// byte.
func secListRaw(t *testing.T, svc *testService, key string) string {
	t.Helper()
	r := svc.raw(t, http.MethodGet, "/api/payments/?limit=200", keyHeader(key), nil)
	wantStatus(t, "GET /api/payments/", r, http.StatusOK)
	return string(r.Raw)
}

// secBrief sums up a payment read by secPaymentRaw for a failure message.
func secBrief(raw string) string {
	var p map[string]any
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return raw
	}
	return fmt.Sprintf("{status %v, receipt %v, amount %v, claimed %v, app %v, updated_at %v}",
		p["status"], p["mpesa_receipt_number"], p["amount"], p["claimed"], p["app"], p["updated_at"])
}

// secReceipt returns an M-Pesa-like receipt number (ten characters) no
// other test in this process has used.
func secReceipt() string { return fmt.Sprintf("SEC%07d", e2eSeq.Add(1)) }

// secSTKSuccess is a success STK callback as Daraja sends it (Daraja
// docs/daraja.md "STK callback"). amount and phone are the Amount and PhoneNumber values;
// nil leaves that item out.
func secSTKSuccess(checkoutID string, amount, phone any, receipt string) map[string]any {
	items := []map[string]any{}
	if amount != nil {
		items = append(items, map[string]any{"Name": "Amount", "Value": amount})
	}
	items = append(items, map[string]any{"Name": "MpesaReceiptNumber", "Value": receipt}, map[string]any{"Name": "Balance"},
		map[string]any{"Name": "TransactionDate", "Value": json.Number("20261129101500")})
	if phone != nil {
		items = append(items, map[string]any{"Name": "PhoneNumber", "Value": phone})
	}
	return map[string]any{"Body": map[string]any{"stkCallback": map[string]any{
		"MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": checkoutID, "ResultCode": 0,
		"ResultDesc": "The service request is processed successfully.", "CallbackMetadata": map[string]any{"Item": items},
	}}}
}

// secSTKFailure is a failure STK callback with the given ResultCode.
func secSTKFailure(checkoutID string, code int) map[string]any {
	return map[string]any{"Body": map[string]any{"stkCallback": map[string]any{
		"MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": checkoutID, "ResultCode": code,
		"ResultDesc": "Request cancelled by user",
	}}}
}

// secC2B is a C2B validation or confirmation body (docs/daraja.md "C2B").
func secC2B(transID, billRef string, amount any, msisdn string) map[string]any {
	return map[string]any{
		"TransactionType": "Pay Bill", "TransID": transID, "TransTime": "20261129101500", "TransAmount": amount,
		"BusinessShortCode": "174379", "BillRefNumber": billRef, "InvoiceNumber": "", "OrgAccountBalance": "",
		"ThirdPartyTransID": "", "MSISDN": msisdn, "FirstName": "John",
	}
}

// The Safaricom-facing endpoints, each by its bare path.
const (
	secSTKPath          = "/api/mpesa/stk-callback/"
	secConfirmationPath = "/api/c2b/confirmation/"
	secValidationPath   = "/api/c2b/validation/"
)

// secInbound is one kind of Safaricom-facing message a test forges.
type secInbound struct {
	name string
	base string // bare path, ending in "/"
	kind string // "stk", "confirmation" or "validation"
}

var secInbounds = []secInbound{
	{"STK callback", secSTKPath, "stk"},
	{"C2B confirmation", secConfirmationPath, "confirmation"},
	{"C2B validation", secValidationPath, "validation"},
	{"C2B confirmation (alias)", "/api/mpesa/c2b/confirmation/", "confirmation"},
	{"C2B validation (alias)", "/api/mpesa/c2b/validation/", "validation"},
}

// secFire forges a genuine-looking message of kind in to path (through
// client, with the extra headers) and reports whether it took effect: the
// STK callback settled its PENDING payment with its receipt; the C2B
// confirmation recorded a payment; the validation answered ResultCode "0".
// When it did not take effect, secFire checks that it changed nothing the
// app can see.
func secFire(t *testing.T, svc *testService, key string, in secInbound, path string, hc *http.Client, header map[string]string) (apiResponse, bool) {
	t.Helper()
	switch in.kind {
	case "stk":
		p := secPush(t, svc, key, 10)
		before, list := secPaymentRaw(t, svc, key, p.id), secListRaw(t, svc, key)
		receipt := secReceipt()
		r := secSend(t, svc, hc, secReq{method: http.MethodPost, path: path, header: header,
			body: secSTKSuccess(p.checkoutID, 10, json.Number(p.phone), receipt)})
		after := paymentOK(t, svc.appClient(t, key), p.id)
		if after.Status == client.StatusSuccess && after.MpesaReceiptNumber == receipt {
			return r, true
		}
		if got := secPaymentRaw(t, svc, key, p.id); got != before {
			t.Errorf("%s to %s: got payment %s, want it unchanged: %s", in.name, path, secBrief(got), secBrief(before))
		}
		if got := secListRaw(t, svc, key); got != list {
			t.Errorf("%s to %s: the payment list changed, want it unchanged", in.name, path)
		}
		return r, false
	case "confirmation":
		ref, list := freshRef(), secListRaw(t, svc, key)
		r := secSend(t, svc, hc, secReq{method: http.MethodPost, path: path, header: header,
			body: secC2B(secReceipt(), ref, "50.00", "2547 ***** 149")})
		ids := listIDs(t, svc.appClient(t, key), client.ListQuery{Reference: ref})
		if len(ids) == 0 {
			if got := secListRaw(t, svc, key); got != list {
				t.Errorf("%s to %s: the payment list changed, want it unchanged", in.name, path)
			}
		}
		return r, len(ids) == 1
	default:
		r := secSend(t, svc, hc, secReq{method: http.MethodPost, path: path, header: header,
			body: secC2B(secReceipt(), freshRef(), "50.00", "2547 ***** 149")})
		return r, r.Status == http.StatusOK && jsonStr(r.Body, "ResultCode") == "0"
	}
}

// TestSecurityCallbackToken forges each kind of Safaricom message to the
// bare path and to wrong tokens: with LIPA_CALLBACK_TOKEN set and tokenless
// callbacks off (the default) only the secret path works; with
// MPESA_ALLOW_TOKENLESS_CALLBACKS=true the bare path works too, but a wrong
// token never does.
func TestSecurityCallbackToken(t *testing.T) {
	upper := strings.ToUpper(secToken)
	paths := []struct {
		name     string
		path     func(base string) string
		want     int // tokenless off
		wantLess int // tokenless on
	}{
		{"bare path", func(b string) string { return b }, 404, 200},
		{"bare path without its slash", func(b string) string { return strings.TrimSuffix(b, "/") }, 404, 200},
		{"wrong token", func(b string) string { return b + "wrongtoken/" }, 404, 404},
		{"the token but its last character", func(b string) string { return b + secToken[:len(secToken)-1] + "/" }, 404, 404},
		{"the token in upper case", func(b string) string { return b + upper + "/" }, 404, 404},
		{"the token and another segment", func(b string) string { return b + secToken + "/x/" }, 404, 404},
		{"right token", func(b string) string { return b + secToken + "/" }, 200, 200},
		{"right token without the slash", func(b string) string { return b + secToken }, 200, 200},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		for i, mode := range []struct {
			name      string
			tokenless string
		}{{"tokenless off (default)", ""}, {"MPESA_ALLOW_TOKENLESS_CALLBACKS=true", "true"}} {
			t.Run(mode.name, func(t *testing.T) {
				var kv []string
				if mode.tokenless != "" {
					kv = []string{"MPESA_ALLOW_TOKENLESS_CALLBACKS", mode.tokenless}
				}
				svc := secStart(t, databaseURL, kv...)
				key := svc.createApp(t, "shop"+strconv.Itoa(i))
				for _, in := range secInbounds {
					for _, p := range paths {
						want := p.want
						if mode.tokenless != "" {
							want = p.wantLess
						}
						path := p.path(in.base)
						r, took := secFire(t, svc, key, in, path, nil, nil)
						switch {
						case want == http.StatusOK && (r.Status != http.StatusOK || !took):
							t.Errorf("%s to %s (%s): got %d %s, applied %v; want 200 and applied", in.name, path, p.name, r.Status, r.Raw, took)
						case want != http.StatusOK && (r.Status != want || secCode(r) != "not_found" || took):
							t.Errorf("%s to %s (%s): got %d %q, applied %v; want %d not_found and nothing changed", in.name, path, p.name, r.Status, secCode(r), took, want)
						}
						if r.Status >= 400 {
							checkErrorShape(t, in.name+" to "+path, r)
						}
					}
				}
				// A refused message is logged with its reason.
				svc.waitLog(t, "a rejected request logged with its reason", func(l map[string]any) bool {
					return l["msg"] == "rejected a Safaricom-facing request" && l["reason"] == "wrong callback token in the path"
				})
				if mode.tokenless != "" {
					svc.waitLog(t, "the tokenless warning at start", func(l map[string]any) bool {
						return l["level"] == "WARN" && strings.Contains(jsonStr(l, "msg"), "MPESA_ALLOW_TOKENLESS_CALLBACKS")
					})
				}
			})
		}
	})
}

// TestSecurityCallbackSource forges each kind of Safaricom message with the
// right token from addresses in and out of LIPA_CALLBACK_ALLOWED_IPS, with
// and without a trusted reverse proxy: X-Forwarded-For is believed only
// from LIPA_TRUSTED_PROXIES, and only its nearest untrusted hop counts.
func TestSecurityCallbackSource(t *testing.T) {
	safaricomOnly := []string{"LIPA_CALLBACK_ALLOWED_IPS", "196.201.214.200"}
	behindProxy := []string{"LIPA_CALLBACK_ALLOWED_IPS", "196.201.214.200", "LIPA_TRUSTED_PROXIES", "127.0.0.1"}
	behindTwo := []string{"LIPA_CALLBACK_ALLOWED_IPS", "196.201.214.200", "LIPA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"}
	cases := []struct {
		name string
		env  []string
		xff  string // X-Forwarded-For sent, when not empty
		want int
	}{
		{"loopback, the simulator's default allow-list", nil, "", 200},
		{"any source allowed", []string{"LIPA_CALLBACK_ALLOWED_IPS", "any"}, "", 200},
		{"loopback not in the allow-list", safaricomOnly, "", 403},
		{"spoofed X-Forwarded-For from an untrusted peer", safaricomOnly, "196.201.214.200", 403},
		{"X-Forwarded-For from a trusted proxy", behindProxy, "196.201.214.200", 200},
		{"trusted proxy without X-Forwarded-For", behindProxy, "", 403},
		{"trusted proxy forwarding another address", behindProxy, "203.0.113.50", 403},
		{"allowed address prepended by the client, real client appended by the proxy", behindProxy, "196.201.214.200, 203.0.113.50", 403},
		{"garbled X-Forwarded-For from a trusted proxy", behindProxy, "196.201.214.200, not-an-ip", 403},
		{"through two trusted proxies", behindTwo, "196.201.214.200, 10.1.2.3", 200},
		{"an untrusted hop between the proxies", behindTwo, "196.201.214.200, 203.0.113.50, 10.1.2.3", 403},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// One service per configuration, shared by its cases.
		type started struct {
			svc *testService
			key string
		}
		services := map[string]started{}
		for _, c := range cases {
			if id := strings.Join(c.env, " "); services[id].svc == nil {
				svc := secStart(t, databaseURL, c.env...)
				services[id] = started{svc, svc.createApp(t, fmt.Sprintf("shop%d", len(services)))}
			}
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := services[strings.Join(c.env, " ")]
				var header map[string]string
				if c.xff != "" {
					header = map[string]string{"X-Forwarded-For": c.xff}
				}
				for _, in := range secInbounds[:3] {
					path := in.base + secToken + "/"
					r, took := secFire(t, s.svc, s.key, in, path, nil, header)
					if c.want == http.StatusOK {
						if r.Status != http.StatusOK || !took {
							t.Errorf("%s: got %d %s, applied %v; want 200 and applied", in.name, r.Status, r.Raw, took)
						}
						continue
					}
					if r.Status != c.want || secCode(r) != "forbidden_source" || took {
						t.Errorf("%s: got %d %q, applied %v; want %d forbidden_source and nothing changed", in.name, r.Status, secCode(r), took, c.want)
					}
					checkErrorShape(t, in.name, r)
				}
			})
		}
	})
}

// TestSecurityCallbackCrossChecks posts STK callbacks with the right token
// that must not settle the payment: a tampered amount or phone, a replay, a
// contradiction of a settled payment, an unknown CheckoutRequestID. Each is
// acknowledged (200, so Safaricom stops retrying) and changes nothing.
func TestSecurityCallbackCrossChecks(t *testing.T) {
	const same = "the payment's own"
	// success returns a success callback for the payment with amount and
	// phone: same for the payment's own, nil to leave the item out.
	success := func(amount, phone any) func(p secPending) any {
		return func(p secPending) any {
			a, ph := amount, phone
			if a == same {
				a = p.amount
			}
			if ph == same {
				ph = json.Number(p.phone)
			}
			return secSTKSuccess(p.checkoutID, a, ph, secReceipt())
		}
	}
	// genuine has one receipt per payment, the same on every call.
	genuine := func(p secPending) any {
		return secSTKSuccess(p.checkoutID, p.amount, json.Number(p.phone), "SG"+p.phone[4:])
	}
	unknownID := func(p secPending) any {
		return secSTKSuccess("ws_CO_NOT_ISSUED_BY_US", p.amount, json.Number(p.phone), secReceipt())
	}
	cancelled := func(p secPending) any { return secSTKFailure(p.checkoutID, 1032) }
	cases := []struct {
		name    string
		prior   func(p secPending) any // posted and applied first, when set
		body    func(p secPending) any
		applied bool
		flagged bool // logged as "stk callback flagged"
	}{
		{name: "genuine", body: success(same, same), applied: true},
		{name: "Amount as the string 10.00", body: success("10.00", same), applied: true},
		{name: "Amount 1 for a 10 KES payment", body: success(1, same), flagged: true},
		{name: "Amount 100 for a 10 KES payment", body: success(100, same), flagged: true},
		{name: "Amount 10.50 for a 10 KES payment", body: success(10.5, same), flagged: true},
		{name: "Amount 0", body: success(0, same)},
		{name: "no Amount item", body: success(nil, same)},
		{name: "Amount that is not a number", body: success("ten", same)},
		{name: "another customer's phone", body: success(same, json.Number("254799999999")), flagged: true},
		{name: "a CheckoutRequestID Lipa never issued", body: unknownID},
		{name: "replayed success", prior: genuine, body: genuine},
		{name: "second success with another receipt", prior: genuine, body: success(same, same)},
		{name: "failure after success", prior: genuine, body: cancelled},
		{name: "success after failure", prior: cancelled, body: genuine},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL)
		key := svc.createApp(t, "shop")
		post := func(t *testing.T, what string, body any) {
			t.Helper()
			r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: secSTKPath + secToken + "/", body: body})
			if r.Status != http.StatusOK || jsonAt(r.Body, "ResultCode") != float64(0) {
				t.Fatalf("%s: got %d %s, want 200 with ResultCode 0", what, r.Status, r.Raw)
			}
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := secPush(t, svc, key, 10)
				if c.prior != nil {
					post(t, "prior callback", c.prior(p))
					if got := paymentOK(t, svc.appClient(t, key), p.id).Status; got == client.StatusPending {
						t.Fatalf("prior callback: got status PENDING, want it applied")
					}
				}
				before, list := secPaymentRaw(t, svc, key, p.id), secListRaw(t, svc, key)
				post(t, "callback", c.body(p))
				after := secPaymentRaw(t, svc, key, p.id)
				if c.applied {
					if got := paymentOK(t, svc.appClient(t, key), p.id).Status; got != client.StatusSuccess {
						t.Errorf("got status %s, want SUCCESS", got)
					}
					return
				}
				if after != before {
					t.Errorf("got payment %s, want it unchanged: %s", secBrief(after), secBrief(before))
				}
				if got := secListRaw(t, svc, key); got != list {
					t.Errorf("the payment list changed (%d bytes, was %d), want it unchanged", len(got), len(list))
				}
				if c.flagged {
					svc.waitLog(t, "the callback flagged", func(l map[string]any) bool {
						return l["msg"] == "stk callback flagged" && l["payment_id"] == p.id
					})
				}
			})
		}
	})
}

// secSuccessOnly is the HTTP transport of a test simulator that delivers
// only success STK callbacks (ResultCode 0): the others are lost on the
// way, so a failed push's verdict reaches Lipa only through STK push query.
type secSuccessOnly struct{ next http.RoundTripper }

func (s secSuccessOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	if bytes.Contains(body, []byte(`"stkCallback"`)) && !bytes.Contains(body, []byte(`"ResultCode":0,`)) {
		return nil, errors.New("test: failure callback lost on the way")
	}
	r2 := r.Clone(r.Context())
	r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return s.next.RoundTrip(r2)
}

// TestSecurityCallbackConfirmByQuery: with LIPA_CONFIRM_BY_QUERY=true a
// success callback, even with the right token, amount and phone, is applied
// only once STK push query confirms it.
func TestSecurityCallbackConfirmByQuery(t *testing.T) {
	const settle = 800 * time.Millisecond // the simulator's callback delay
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := darajasim.New(darajasim.Config{CallbackDelay: settle,
			HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: secSuccessOnly{next: openapitest.Transport(t, &http.Transport{})}}})
		simSrv := httptest.NewServer(sim)
		t.Cleanup(func() { sim.Close(); simSrv.Close() })
		svc := secStart(t, databaseURL, "MPESA_BASE_URL", simSrv.URL, "LIPA_CONFIRM_BY_QUERY", "true", "LIPA_RECONCILE_AFTER", "2s")
		ac := svc.appClient(t, svc.createApp(t, "shop"))

		// waitSettled polls the payment until it is no longer PENDING,
		// failing at once if it is ever SUCCESS when want is not.
		waitSettled := func(t *testing.T, id string, want client.Status) *client.Payment {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				p := paymentOK(t, ac, id)
				switch got := p.Status; {
				case got == want:
					return p
				case got != client.StatusPending:
					t.Fatalf("payment %s: got status %s, want %s (payment %+v)", id, got, want, p)
				case time.Now().After(deadline):
					t.Fatalf("payment %s: still PENDING after 30s, want %s", id, want)
				}
				time.Sleep(e2ePollInterval)
			}
		}
		forge := func(t *testing.T, p secPending) {
			t.Helper()
			r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: secSTKPath + secToken + "/",
				body: secSTKSuccess(p.checkoutID, p.amount, json.Number(p.phone), "SECFORGED1")})
			if r.Status != http.StatusOK {
				t.Fatalf("forged callback: got %d %s, want 200", r.Status, r.Raw)
			}
		}
		cases := []struct {
			name      string
			phone     string
			waitFirst bool // forge only once the simulator has settled the push
			want      client.Status
			code      string // result_code wanted
			by        string // resolved_by wanted
		}{
			{"forged success before a cancelled push settles", darajasim.PhoneCancelled, false, "FAILED", "1032", lipa.ResolvedByQuery},
			{"forged success after an unpaid push settled", darajasim.PhoneInsufficientFunds, true, "FAILED", "1", lipa.ResolvedByQuery},
			{"genuine success", "", false, "SUCCESS", "0", lipa.ResolvedByQuery}, // the query decides; the held callback brings the receipt,
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				phone := c.phone
				if phone == "" {
					phone = freshPhone()
				}
				start := time.Now()
				r := pushOK(t, ac, phone, 10, freshRef())
				p := secPending{id: r.PaymentID, checkoutID: r.CheckoutRequestID, phone: phone, amount: 10}
				if c.code != "0" {
					if c.waitFirst {
						time.Sleep(settle + 300*time.Millisecond)
					}
					forge(t, p)
					got := paymentOK(t, ac, p.id)
					if st := got.Status; st == client.StatusSuccess || (!c.waitFirst && time.Since(start) < settle && st != client.StatusPending) {
						t.Fatalf("right after the forged callback: got status %s, want PENDING until the query answers", st)
					}
				}
				got := waitSettled(t, p.id, c.want)
				if got.ResultCode != c.code || got.ResolvedBy != c.by {
					t.Errorf("got result_code %q resolved_by %q, want %q and %q (payment %+v)", got.ResultCode, got.ResolvedBy, c.code, c.by, got)
				}
				if c.want == client.StatusSuccess && got.MpesaReceiptNumber == "" {
					t.Errorf("got no receipt, want the confirmed callback's")
				}
			})
		}
	})
}

// secRotate runs `lipa apps rotate-key NAME --json` with
// LIPA_KEY_ROTATION_GRACE=grace (its default when empty) and returns the
// new key.
func secRotate(t *testing.T, svc *testService, name, grace string) string {
	t.Helper()
	env := maps.Clone(svc.Env)
	if grace != "" {
		env["LIPA_KEY_ROTATION_GRACE"] = grace
	}
	code, stdout, stderr := runCLI(t, env, "apps", "rotate-key", name, "--json")
	if code != 0 {
		t.Fatalf("lipa apps rotate-key %s: got exit code %d (stderr %q), want 0", name, code, stderr)
	}
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || !strings.HasPrefix(out.APIKey, "lipa_") {
		t.Fatalf("lipa apps rotate-key %s --json: got %q, want a new api_key starting lipa_", name, stdout)
	}
	return out.APIKey
}

// secCLI runs a lipa command that must succeed and returns its stdout.
func secCLI(t *testing.T, svc *testService, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, svc.Env, args...)
	if code != 0 {
		t.Fatalf("lipa %s: got exit code %d (stderr %q), want 0", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// secAuthStatus returns the status and code GET /api/payments/ gets with
// key.
func secAuthStatus(t *testing.T, svc *testService, key string) (int, string) {
	t.Helper()
	r := secSend(t, svc, nil, secReq{method: http.MethodGet, path: "/api/payments/", key: key})
	return r.Status, secCode(r)
}

// TestSecurityKeyStorage: API keys are high-entropy with the lipa_ prefix,
// and a copy of the SQLite database (lipa.db and its -wal and -shm files)
// holds neither them nor anything that works as one.
func TestSecurityKeyStorage(t *testing.T) {
	databaseURL := sqlstoretest.URL(t, sqlstore.SQLite)
	dbPath := strings.TrimPrefix(databaseURL, "sqlite:")
	svc := secStart(t, databaseURL)
	keys := map[string]string{"shop": svc.createApp(t, "shop"), "other": svc.createApp(t, "other")}
	keys["shop after rotation"] = secRotate(t, svc, "shop", "")
	keyRE := regexp.MustCompile(`^lipa_[a-z2-7]{52}$`)
	for name, k := range keys {
		if !keyRE.MatchString(k) {
			t.Errorf("key of %s: got %q, want lipa_ and 52 base32 characters (256 bits)", name, k)
		}
		// A few requests, so that the database has seen the keys in use.
		if st, code := secAuthStatus(t, svc, k); st != http.StatusOK {
			t.Fatalf("key of %s: got %d %q, want 200", name, st, code)
		}
	}
	secPush(t, svc, keys["shop"], 10)
	secPush(t, svc, keys["other"], 10)

	found := 0
	for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		found++
		for name, k := range keys {
			secret := strings.TrimPrefix(k, "lipa_")
			if bytes.Contains(data, []byte(secret)) || bytes.Contains(bytes.ToUpper(data), []byte(strings.ToUpper(secret))) {
				t.Errorf("%s: got the API key of %s in it, want only its hash stored", f, name)
			}
		}
	}
	if found == 0 {
		t.Fatalf("got no database file at %s, want lipa.db", dbPath)
	}

	// Everything the apps table holds, tried as a key, is refused.
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT key_hash, key_hint, COALESCE(prev_key_hash, '') FROM apps")
	if err != nil {
		t.Fatalf("read apps: %v", err)
	}
	var stored []string
	for rows.Next() {
		var h, hint, prev string
		if err := rows.Scan(&h, &hint, &prev); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, h, hint, strings.TrimSuffix(hint, "…"), "lipa_"+h)
		if prev != "" {
			stored = append(stored, prev, "lipa_"+prev)
		}
	}
	rows.Close()
	if len(stored) == 0 {
		t.Fatalf("apps table: got no rows, want the apps")
	}
	for _, v := range stored {
		if st, code := secAuthStatus(t, svc, v); st != http.StatusUnauthorized {
			t.Errorf("stored value %q as X-API-KEY: got %d %q, want 401", v, st, code)
		}
	}
}

// TestSecurityKeyRotation: after `lipa apps rotate-key` the new key works
// and the old one works only within LIPA_KEY_ROTATION_GRACE; disable
// refuses every key of the app at once, enable accepts them again; `apps
// list --json` records the last use.
func TestSecurityKeyRotation(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL)
		for i, c := range []struct {
			name     string
			grace    string
			oldWorks bool
		}{
			{"default grace (24h)", "", true},
			{"grace 1h", "1h", true},
			{"LIPA_KEY_ROTATION_GRACE=0s", "0s", false},
		} {
			t.Run(c.name, func(t *testing.T) {
				app := fmt.Sprintf("rot%d", i)
				oldKey := svc.createApp(t, app)
				newKey := secRotate(t, svc, app, c.grace)
				if newKey == oldKey {
					t.Fatalf("rotate-key: got the old key back, want a new one")
				}
				wantOld := http.StatusUnauthorized
				if c.oldWorks {
					wantOld = http.StatusOK
				}
				check := func(stage string, wantNew, wantOld int, codeNew, codeOld string) {
					t.Helper()
					if st, code := secAuthStatus(t, svc, newKey); st != wantNew || (codeNew != "" && code != codeNew) {
						t.Errorf("%s: new key got %d %q, want %d %q", stage, st, code, wantNew, codeNew)
					}
					if st, code := secAuthStatus(t, svc, oldKey); st != wantOld || (codeOld != "" && code != codeOld) {
						t.Errorf("%s: old key got %d %q, want %d %q", stage, st, code, wantOld, codeOld)
					}
				}
				oldCode := ""
				if !c.oldWorks {
					oldCode = "invalid_api_key"
				}
				check("after rotation", http.StatusOK, wantOld, "", oldCode)
				secCLI(t, svc, "apps", "disable", app)
				disabledOld := "app_disabled"
				if !c.oldWorks {
					disabledOld = "invalid_api_key"
				}
				check("after disable", http.StatusUnauthorized, http.StatusUnauthorized, "app_disabled", disabledOld)
				secCLI(t, svc, "apps", "enable", app)
				check("after enable", http.StatusOK, wantOld, "", oldCode)
			})
		}
		t.Run("last_used_at", func(t *testing.T) {
			key := svc.createApp(t, "fresh")
			lastUsed := func() (any, bool) {
				var apps []map[string]any
				out := secCLI(t, svc, "apps", "list", "--json")
				if err := json.Unmarshal([]byte(out), &apps); err != nil {
					t.Fatalf("apps list --json: got %q, want a JSON array: %v", out, err)
				}
				for _, a := range apps {
					if a["name"] == "fresh" {
						v, ok := a["last_used_at"]
						return v, ok
					}
				}
				t.Fatalf("apps list --json: got %s, want the app fresh in it", out)
				return nil, false
			}
			if v, ok := lastUsed(); !ok || v != nil {
				t.Errorf("before any use: got last_used_at %v (present %v), want null", v, ok)
			}
			before := time.Now().Add(-time.Minute)
			if st, code := secAuthStatus(t, svc, key); st != http.StatusOK {
				t.Fatalf("GET /api/payments/: got %d %q, want 200", st, code)
			}
			v, _ := lastUsed()
			s, _ := v.(string)
			at, err := time.Parse(time.RFC3339, s)
			if err != nil || at.Before(before) || at.After(time.Now().Add(time.Minute)) {
				t.Errorf("after use: got last_used_at %v, want the time of the request", v)
			}
		})
	})
}

// secProbe is one way an app can reach a payment: read it, find it in a
// list, verify it or claim it, by ID, reference or receipt.
type secProbe struct {
	name  string
	claim bool
	req   func(id, ref, receipt string) secReq
}

var secProbes = []secProbe{
	{name: "GET /api/payments/{id}/", req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodGet, path: "/api/payments/" + id + "/"}
	}},
	{name: "GET /api/payments/?reference=", req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodGet, path: "/api/payments/?reference=" + url.QueryEscape(ref)}
	}},
	{name: "GET /api/payments/?status=SUCCESS&claimed=false", req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodGet, path: "/api/payments/?limit=200&status=SUCCESS&claimed=false"}
	}},
	{name: "GET /api/payments/verify/?receipt=", req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodGet, path: "/api/payments/verify/?receipt=" + url.QueryEscape(receipt)}
	}},
	{name: "GET /api/payments/verify/?reference=", req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodGet, path: "/api/payments/verify/?reference=" + url.QueryEscape(ref)}
	}},
	{name: "POST /api/payments/claim/ by payment_id", claim: true, req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"payment_id": id}}
	}},
	{name: "POST /api/payments/claim/ by receipt", claim: true, req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"receipt": receipt}}
	}},
	{name: "POST /api/payments/claim/ by reference", claim: true, req: func(id, ref, receipt string) secReq {
		return secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"reference": ref}}
	}},
}

// secReaches sends the probe as the app with key and reports whether it
// reached payment id: 200 naming it, or 404 payment_not_found / a list
// without it. Any other answer fails the test.
func secReaches(t *testing.T, svc *testService, key string, pr secProbe, id, ref, receipt string) bool {
	t.Helper()
	req := pr.req(id, ref, receipt)
	req.key = key
	r := secSend(t, svc, nil, req)
	if r.Status == http.StatusNotFound && secCode(r) == "payment_not_found" {
		return false
	}
	if r.Status != http.StatusOK {
		t.Fatalf("%s: got %d %s, want 200 or 404 payment_not_found", pr.name, r.Status, r.Raw)
	}
	if _, ok := r.Body["payments"]; ok {
		return slices.Contains(paymentIDs(t, r), id)
	}
	if got := jsonStr(r.Body, "payment_id") + jsonStr(r.Body, "id"); got != id {
		t.Fatalf("%s: got payment %q, want %s or 404", pr.name, got, id)
	}
	return true
}

// TestSecurityTenantIsolation: for every app endpoint, app B can neither
// read, list, verify nor claim app A's STK payment, by ID, reference or
// receipt; an unclaimed C2B intake payment is visible to both, and once A
// claims it B can no longer reach it.
func TestSecurityTenantIsolation(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL)
		keyA, keyB := svc.createApp(t, "appa"), svc.createApp(t, "appb")
		secPush(t, svc, keyB, 10) // B has payments of its own

		// A's STK payment, paid.
		p := secPush(t, svc, keyA, 10)
		stkReceipt := secReceipt()
		wantStatus(t, "callback", secSend(t, svc, nil, secReq{method: http.MethodPost, path: secSTKPath + secToken + "/",
			body: secSTKSuccess(p.checkoutID, 10, json.Number(p.phone), stkReceipt)}), http.StatusOK)
		waitPayment(t, svc.appClient(t, keyA), p.id, client.StatusSuccess)

		// An unclaimed C2B payment in the intake pool.
		c2bReceipt, c2bRef := secReceipt(), freshRef()
		wantStatus(t, "C2B confirmation", secSend(t, svc, nil, secReq{method: http.MethodPost, path: secConfirmationPath + secToken + "/",
			body: secC2B(c2bReceipt, c2bRef, "50.00", "2547 ***** 149")}), http.StatusOK)
		ids := listIDs(t, svc.appClient(t, keyA), client.ListQuery{Reference: c2bRef})
		if len(ids) != 1 {
			t.Fatalf("C2B payment: got %v, want one payment with reference %s", ids, c2bRef)
		}
		c2b := ids[0]

		t.Run("app B and app A's STK payment", func(t *testing.T) {
			before := secPaymentRaw(t, svc, keyA, p.id)
			for _, pr := range secProbes {
				if secReaches(t, svc, keyB, pr, p.id, p.ref, stkReceipt) {
					t.Errorf("app B, %s: reached app A's payment, want 404 or an empty list", pr.name)
				}
			}
			if got := secPaymentRaw(t, svc, keyA, p.id); got != before {
				t.Errorf("app A's payment: got %s after app B's attempts, want it unchanged: %s", secBrief(got), secBrief(before))
			}
			for _, pr := range secProbes {
				if !pr.claim && !secReaches(t, svc, keyA, pr, p.id, p.ref, stkReceipt) {
					t.Errorf("app A, %s: did not reach its own payment, want it to", pr.name)
				}
			}
		})
		t.Run("unclaimed C2B payment is shared", func(t *testing.T) {
			for _, key := range []string{keyA, keyB} {
				for _, pr := range secProbes {
					if !pr.claim && !secReaches(t, svc, key, pr, c2b, c2bRef, c2bReceipt) {
						t.Errorf("%s: did not reach the unclaimed C2B payment, want every app to", pr.name)
					}
				}
			}
		})
		t.Run("claimed C2B payment is the claimer's", func(t *testing.T) {
			claimOK(t, svc.appClient(t, keyA), client.ClaimRequest{Receipt: c2bReceipt})
			before := secPaymentRaw(t, svc, keyA, c2b)
			for _, pr := range secProbes {
				if secReaches(t, svc, keyB, pr, c2b, c2bRef, c2bReceipt) {
					t.Errorf("app B, %s: reached the C2B payment app A claimed, want 404 or an empty list", pr.name)
				}
			}
			if got := secPaymentRaw(t, svc, keyA, c2b); got != before {
				t.Errorf("claimed C2B payment: got %s after app B's attempts, want it unchanged: %s", secBrief(got), secBrief(before))
			}
		})
	})
}

// TestSecurityAbuseAppRateLimit: with LIPA_APP_RATE_LIMIT=5 (bursts of
// 10) a burst of 40 requests gets 429 rate_limited with Retry-After, and
// other apps are unaffected.
func TestSecurityAbuseAppRateLimit(t *testing.T) {
	svc := secStart(t, sqlstoretest.URL(t, sqlstore.SQLite), "LIPA_APP_RATE_LIMIT", "5")
	keyA, keyB := svc.createApp(t, "appa"), svc.createApp(t, "appb")
	start := time.Now()
	ok, limited := 0, 0
	for range 40 {
		r := secSend(t, svc, nil, secReq{method: http.MethodGet, path: "/api/payments/", key: keyA})
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			checkErrorShape(t, "429", r)
			if secCode(r) != "rate_limited" {
				t.Errorf("429: got code %q, want rate_limited", secCode(r))
			}
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("429: got Retry-After %q, want a whole number of seconds of at least 1", r.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("burst: got %d %s, want 200 or 429", r.Status, r.Raw)
		}
	}
	if most := 10 + int(5*time.Since(start).Seconds()) + 1; limited == 0 || ok > most {
		t.Errorf("burst of 40: got %d answered and %d refused, want at most %d answered and the rest 429", ok, limited, most)
	}
	for i := range 10 {
		if r := secSend(t, svc, nil, secReq{method: http.MethodGet, path: "/api/payments/", key: keyB}); r.Status != http.StatusOK {
			t.Fatalf("app B's request %d after app A's burst: got %d %s, want 200", i+1, r.Status, r.Raw)
		}
	}
}

// TestSecurityAbuseAuthFailureLimit: with LIPA_AUTH_FAILURES_PER_MINUTE=5,
// after 5 missing or wrong keys from one address its next failures get 429
// too_many_failed_auth while a valid key still works; a spoofed
// X-Forwarded-For does not escape the count, and other addresses are
// unaffected.
func TestSecurityAbuseAuthFailureLimit(t *testing.T) {
	// 127.0.0.1 is a trusted proxy; the test's clients come from other
	// loopback addresses, so their X-Forwarded-For must be ignored.
	svc := secStart(t, sqlstoretest.URL(t, sqlstore.SQLite), "LIPA_AUTH_FAILURES_PER_MINUTE", "5", "LIPA_TRUSTED_PROXIES", "127.0.0.1")
	key := svc.createApp(t, "shop")
	cases := []struct {
		name string
		src  string
		xff  func(i int) string
	}{
		{"one address", "127.0.0.2", nil},
		{"one address rotating a spoofed X-Forwarded-For", "127.0.0.3", func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := secClientFrom(t, c.src)
			send := func(i int, key string) apiResponse {
				req := secReq{method: http.MethodGet, path: "/api/payments/", key: key}
				if c.xff != nil {
					req.header = map[string]string{"X-Forwarded-For": c.xff(i)}
				}
				return secSend(t, svc, client, req)
			}
			for i, bad := range []string{"", "lipa_wrong", "", "lipa_" + strings.Repeat("a", 52), "' OR '1'='1"} {
				if r := send(i, bad); r.Status != http.StatusUnauthorized {
					t.Fatalf("failure %d: got %d %s, want 401", i+1, r.Status, r.Raw)
				}
			}
			// Past the limit, wrong keys get 429; the valid key still works
			// (an app with a stale key behind the same proxy or NAT must not
			// lock the others out).
			for i, k := range []string{"lipa_wrong", ""} {
				r := send(5+i, k)
				if r.Status != http.StatusTooManyRequests || secCode(r) != "too_many_failed_auth" || r.Header.Get("Retry-After") == "" {
					t.Errorf("failure %d after 5 failures: got %d %q (Retry-After %q), want 429 too_many_failed_auth with Retry-After",
						6+i, r.Status, secCode(r), r.Header.Get("Retry-After"))
				}
				checkErrorShape(t, "429", r)
			}
			if r := send(7, key); r.Status != http.StatusOK {
				t.Errorf("valid key after 5 failures from its address: got %d %s, want 200", r.Status, r.Raw)
			}
		})
	}
	if r := secSend(t, svc, secClientFrom(t, "127.0.0.4"), secReq{method: http.MethodGet, path: "/api/payments/", key: "lipa_wrong"}); r.Status != http.StatusUnauthorized {
		t.Errorf("wrong key from another address: got %d %s, want 401 (the limit is per address)", r.Status, r.Raw)
	}
	if r := secSend(t, svc, secClientFrom(t, "127.0.0.4"), secReq{method: http.MethodGet, path: "/api/payments/", key: key}); r.Status != http.StatusOK {
		t.Errorf("valid key from another address: got %d %s, want 200", r.Status, r.Raw)
	}
}

// TestSecurityAbusePhonePushLimit: with LIPA_PHONE_PUSHES_PER_HOUR=2 the
// third STK push to one phone, however it is written, gets 429
// phone_rate_limited and creates no payment, with or without an
// Idempotency-Key; other phones are unaffected.
func TestSecurityAbusePhonePushLimit(t *testing.T) {
	svc := secStart(t, sqlstoretest.URL(t, sqlstore.SQLite), "LIPA_PHONE_PUSHES_PER_HOUR", "2",
		"LIPA_PROMPT_LIFETIME", "1ms", "LIPA_SIMULATOR_CALLBACK_DELAY", "1ms")
	key := svc.createApp(t, "shop")
	ac := svc.appClient(t, key)
	countFor := func(phone string) int {
		n := 0
		page, err := ac.PaymentsPage(context.Background(), client.ListQuery{Limit: 200})
		if err != nil {
			t.Fatalf("GET /api/payments/?limit=200: %v", err)
		}
		for _, p := range page.Payments {
			if p.PhoneNumber == phone {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name string
		idem bool
	}{{"plain pushes", false}, {"each push with its own Idempotency-Key", true}} {
		t.Run(c.name, func(t *testing.T) {
			phone := freshPhone()
			forms := []string{"0" + phone[3:], "+" + phone, phone}
			for i, f := range forms {
				req := secReq{method: http.MethodPost, path: "/api/stk-push/", key: key,
					body: map[string]any{"phone_number": f, "amount": 10, "reference": freshRef()}}
				if c.idem {
					req.header = map[string]string{"Idempotency-Key": fmt.Sprintf("sec-%s-%d", phone, i)}
				}
				before := countFor(phone)
				time.Sleep(10 * time.Millisecond) // well past LIPA_PROMPT_LIFETIME
				r := secSend(t, svc, nil, req)
				if i < 2 {
					wantStatus(t, fmt.Sprintf("push %d to %s", i+1, f), r, http.StatusOK)
					continue
				}
				if r.Status != http.StatusTooManyRequests || secCode(r) != "phone_rate_limited" {
					t.Errorf("push 3 to %s: got %d %s, want 429 phone_rate_limited", f, r.Status, r.Raw)
				}
				if got := countFor(phone); got != before {
					t.Errorf("push 3: got %d payments to %s, want %d (no new payment)", got, phone, before)
				}
			}
			pushOK(t, ac, freshPhone(), 10, freshRef())
		})
	}
}

// secNested returns n nested JSON arrays.
func secNested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// TestSecurityAbuseBodies sends hostile bodies to every app endpoint that
// takes one and to the Safaricom-facing endpoints: each is refused with
// the documented status and code, quickly, nothing is created, and the
// service stays up.
func TestSecurityAbuseBodies(t *testing.T) {
	appCases := []struct {
		name   string
		body   string
		status []int // any of these
		code   string
		field  string // details.field wanted
	}{
		{"body over 64 KiB", `{"reference":"` + strings.Repeat("A", 65<<10) + `"}`, []int{413}, "body_too_large", ""},
		{"unknown field", `{"reference":"X","evil":1}`, []int{400}, "unknown_field", "evil"},
		{"unknown field differing in case", `{"Reference":"X"}`, []int{400}, "unknown_field", "Reference"},
		{"trailing JSON object", `{"reference":"X"}{"reference":"Y"}`, []int{400}, "invalid_json", ""},
		{"trailing garbage", `{"reference":"X"} garbage`, []int{400}, "invalid_json", ""},
		{"invalid UTF-8 in a value", "{\"reference\":\"\xff\xfe\"}", []int{400}, "invalid_json", ""},
		{"invalid UTF-8 in a key", "{\"\xff\":\"X\"}", []int{400}, "invalid_json", ""},
		{"overlong UTF-8 encoding of /", "{\"reference\":\"\xc0\xaf\"}", []int{400}, "invalid_json", ""},
		{"a JSON array", `[]`, []int{400}, "invalid_json", ""},
		{"null", `null`, []int{400}, "invalid_json", ""},
		{"empty", ``, []int{400}, "invalid_json", ""},
		{"a field that is an object", `{"reference":{"$ne":null}}`, []int{400}, "invalid_reference", "reference"},
		{"a field that is an array", `{"reference":["X"]}`, []int{400}, "invalid_reference", "reference"},
		{"30 000 nested arrays as a field value", `{"reference":` + secNested(30000) + `}`, []int{400}, "", ""},
		{"30 000 nested arrays as the body", secNested(30000), []int{400}, "invalid_json", ""},
		// Over 64 KiB: refused by size before any parsing (413) or as
		// invalid JSON (400).
		{"100 000 nested arrays as a field value", `{"reference":` + secNested(100000) + `}`, []int{400, 413}, "", ""},
		{"100 000 nested arrays as the body", secNested(100000), []int{400, 413}, "", ""},
		{"100 000 unclosed arrays", strings.Repeat("[", 100000), []int{400, 413}, "", ""},
		// {{phone}} is a phone_number field on /api/stk-push/, nothing on claim.
		{"a 60 000-digit amount", `{{{phone}}"reference":"X","amount":1` + strings.Repeat("0", 60000) + `}`, []int{400}, "invalid_amount", "amount"},
		{"a 60 000-digit amount string", `{{{phone}}"reference":"X","amount":"1` + strings.Repeat("0", 60000) + `"}`, []int{400}, "invalid_amount", "amount"},
		{"amount 1e400", `{{{phone}}"reference":"X","amount":1e400}`, []int{400}, "invalid_amount", "amount"},
		{"amount -1e-400", `{{{phone}}"reference":"X","amount":-1e-400}`, []int{400}, "invalid_amount", "amount"},
	}
	endpoints := map[string]string{"/api/stk-push/": `"phone_number":"0712345678",`, "/api/payments/claim/": ""}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL)
		key := svc.createApp(t, "shop")
		paid := secPush(t, svc, key, 10)
		list := secListRaw(t, svc, key)
		for _, c := range appCases {
			for ep, phone := range endpoints {
				start := time.Now()
				body := strings.Replace(c.body, "{{phone}}", phone, 1)
				r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: ep, key: key, body: []byte(body)})
				if d := time.Since(start); d > secQuick {
					t.Errorf("%s, %s: answered in %v, want under %v", ep, c.name, d, secQuick)
				}
				if !slices.Contains(c.status, r.Status) || (c.code != "" && secCode(r) != c.code) {
					t.Errorf("%s, %s: got %d %q, want %v %q (body %.300s)", ep, c.name, r.Status, secCode(r), c.status, c.code, r.Raw)
					continue
				}
				checkErrorShape(t, ep+", "+c.name, r)
				if c.field != "" && jsonStr(r.Body, "error", "details", "field") != c.field {
					t.Errorf("%s, %s: got details.field %q, want %q", ep, c.name, jsonStr(r.Body, "error", "details", "field"), c.field)
				}
			}
		}
		if got := secListRaw(t, svc, key); got != list {
			t.Errorf("payments after the hostile bodies: got %s, want them unchanged: %s", got, list)
		}

		inbound := []struct {
			name   string
			path   string
			body   string
			status int
			code   string
		}{
			{"STK callback of 100 000 nested arrays", secSTKPath, secNested(100000), 400, "malformed_callback"},
			{"STK callback with a nested CheckoutRequestID", secSTKPath, `{"Body":{"stkCallback":{"CheckoutRequestID":` + secNested(100000) + `,"ResultCode":0}}}`, 400, "malformed_callback"},
			{"STK callback over 1 MiB", secSTKPath, `{"Body":"` + strings.Repeat("A", 1<<20) + `"}`, 413, "body_too_large"},
			{"STK callback with a 60 000-digit ResultCode", secSTKPath, `{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_SEC_UNKNOWN","ResultCode":1` + strings.Repeat("0", 60000) + `}}}`, 200, ""},
			{"C2B confirmation of 100 000 nested arrays", secConfirmationPath, secNested(100000), 400, "malformed_confirmation"},
			{"C2B validation of 100 000 nested arrays", secValidationPath, secNested(100000), 200, ""},
		}
		for _, c := range inbound {
			start := time.Now()
			r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: c.path + secToken + "/", body: []byte(c.body)})
			if d := time.Since(start); d > secQuick {
				t.Errorf("%s: answered in %v, want under %v", c.name, d, secQuick)
			}
			if r.Status != c.status || (c.code != "" && secCode(r) != c.code) {
				t.Errorf("%s: got %d %q, want %d %q (body %.300s)", c.name, r.Status, secCode(r), c.status, c.code, r.Raw)
			}
		}
		if got := paymentOK(t, svc.appClient(t, key), paid.id).Status; got != client.StatusPending {
			t.Errorf("payment after the hostile callbacks: got status %s, want PENDING", got)
		}
		if err := svc.appClient(t, "").Health(context.Background()); err != nil {
			t.Errorf("GET /healthz after the hostile bodies: got %v, want 200", err)
		}
	})
}

// secHostile are strings an attacker puts in every parameter: SQL
// injection, LIKE wildcards, a NUL byte, invalid UTF-8.
var secHostile = []string{
	`' OR '1'='1`,
	`1; DROP TABLE payments; --`,
	`%' --`,
	`" OR ""="`,
	`') OR ('1'='1' --`,
	`' UNION SELECT key_hash, key_hash FROM apps --`,
	`%`,
	`_`,
	`pay_%`,
	`\`,
	"\x00",
	"ref\x00' OR '1'='1",
	"\xff\xfe",
	"\u202e\ufeffREF",
	strings.Repeat("9", 400),
}

// TestSecurityAbuseSQLInjection puts hostile strings in every string
// parameter of every app endpoint (path segment, query parameters, JSON
// fields, headers) and in a C2B confirmation: each gets a 4xx or an empty
// or exact result, never a 5xx, and the payments stay as they were.
func TestSecurityAbuseSQLInjection(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL)
		keyA, keyB := svc.createApp(t, "appa"), svc.createApp(t, "appb")
		paid := secPush(t, svc, keyA, 10)
		wantStatus(t, "callback", secSend(t, svc, nil, secReq{method: http.MethodPost, path: secSTKPath + secToken + "/",
			body: secSTKSuccess(paid.checkoutID, 10, json.Number(paid.phone), secReceipt())}), http.StatusOK)
		waitPayment(t, svc.appClient(t, keyA), paid.id, client.StatusSuccess)
		pending := secPush(t, svc, keyA, 20)
		other := secPush(t, svc, keyB, 30)
		wantStatus(t, "C2B confirmation", secSend(t, svc, nil, secReq{method: http.MethodPost, path: secConfirmationPath + secToken + "/",
			body: secC2B(secReceipt(), freshRef(), "50.00", "2547 ***** 149")}), http.StatusOK)
		seeded := map[string]string{paid.id: keyA, pending.id: keyA, other.id: keyB}
		snapshot := map[string]string{}
		for id, k := range seeded {
			snapshot[id] = secPaymentRaw(t, svc, k, id)
		}
		listA, listB := secListRaw(t, svc, keyA), secListRaw(t, svc, keyB)

		// exact reports whether every payment in a 200 answer matches s
		// exactly in reference or receipt (a payment really carrying the
		// string may be found; a wildcard must not match others).
		exact := func(r apiResponse, s string) bool {
			s = strings.TrimSpace(s)
			var ps []any
			if list, ok := r.Body["payments"].([]any); ok {
				ps = list
			} else {
				ps = []any{r.Body}
			}
			for _, p := range ps {
				m, _ := p.(map[string]any)
				if jsonStr(m, "reference") != s && jsonStr(m, "receipt") != s && jsonStr(m, "mpesa_receipt_number") != s {
					return false
				}
			}
			return true
		}
		for _, s := range secHostile {
			q := url.QueryEscape(s)
			reqs := []struct {
				name    string
				req     secReq
				exactOK bool // a 200 must hold only payments matching s exactly
			}{
				{"payment_id path segment", secReq{method: http.MethodGet, path: "/api/payments/" + url.PathEscape(s) + "/"}, false},
				{"list reference", secReq{method: http.MethodGet, path: "/api/payments/?reference=" + q}, true},
				{"list status", secReq{method: http.MethodGet, path: "/api/payments/?status=" + q}, false},
				{"list claimed", secReq{method: http.MethodGet, path: "/api/payments/?claimed=" + q}, false},
				{"list limit", secReq{method: http.MethodGet, path: "/api/payments/?limit=" + q}, false},
				{"list cursor", secReq{method: http.MethodGet, path: "/api/payments/?cursor=" + q}, false},
				{"list cursor (base64 of the string)", secReq{method: http.MethodGet, path: "/api/payments/?cursor=" +
					base64.RawURLEncoding.EncodeToString([]byte("1|pay_"+s))}, true},
				{"verify receipt", secReq{method: http.MethodGet, path: "/api/payments/verify/?receipt=" + q}, true},
				{"verify reference", secReq{method: http.MethodGet, path: "/api/payments/verify/?reference=" + q}, true},
				{"verify phone", secReq{method: http.MethodGet, path: "/api/payments/verify/?reference=" + url.QueryEscape(paid.ref) + "&phone=" + q}, false},
				{"claim payment_id", secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"payment_id": s}}, false},
				{"claim receipt", secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"receipt": s}}, false},
				{"claim reference", secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"reference": s}}, false},
				{"claim amount", secReq{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"payment_id": pending.id, "amount": s}}, false},
				{"push phone_number", secReq{method: http.MethodPost, path: "/api/stk-push/", body: map[string]any{"phone_number": s, "amount": 10, "reference": "SQLI"}}, false},
				{"push amount", secReq{method: http.MethodPost, path: "/api/stk-push/", body: map[string]any{"phone_number": freshPhone(), "amount": s, "reference": "SQLI"}}, false},
				{"push account_reference", secReq{method: http.MethodPost, path: "/api/stk-push/", body: map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": "SQLI", "account_reference": s}}, false},
				{"push description", secReq{method: http.MethodPost, path: "/api/stk-push/", body: map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": "SQLI", "description": s}}, false},
			}
			if !strings.ContainsRune(s, 0) { // a NUL cannot be sent in a header
				reqs = append(reqs, struct {
					name    string
					req     secReq
					exactOK bool
				}{"X-API-KEY", secReq{method: http.MethodGet, path: "/api/payments/", header: map[string]string{"X-API-KEY": s}}, false})
			}
			for _, c := range reqs {
				if c.req.header == nil {
					c.req.key = keyA
				}
				r := secSend(t, svc, nil, c.req)
				switch {
				case r.Status >= 500:
					t.Errorf("%s = %q: got %d %s, want a 4xx or an empty result", c.name, s, r.Status, r.Raw)
				case r.Status == http.StatusOK && !c.exactOK && !strings.HasPrefix(c.name, "push"):
					t.Errorf("%s = %q: got 200 %s, want a 4xx", c.name, s, r.Raw)
				case r.Status == http.StatusOK && c.exactOK && !exact(r, s):
					t.Errorf("%s = %q: got 200 %s, want only payments matching it exactly", c.name, s, r.Raw)
				case r.Status >= 400:
					checkErrorShape(t, fmt.Sprintf("%s = %q", c.name, s), r)
				}
			}
			// A push whose reference is the string stores it as data.
			r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: "/api/stk-push/", key: keyA,
				body: map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": s, "account_reference": "SQLI"}})
			switch {
			case r.Status >= 500:
				t.Errorf("push reference = %q: got %d %s, want 200 or a 4xx", s, r.Status, r.Raw)
			case r.Status == http.StatusOK && utf8.ValidString(s):
				if got := paymentOK(t, svc.appClient(t, keyA), jsonStr(r.Body, "payment_id")).Reference; got != strings.TrimSpace(s) {
					t.Errorf("push reference = %q: stored reference %q, want it as sent", s, got)
				}
			}
			// A C2B payment whose account number is the string, likewise.
			if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
				r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: secConfirmationPath + secToken + "/",
					body: secC2B(secReceipt(), s, "50.00", "2547 ***** 149")})
				if r.Status != http.StatusOK {
					t.Errorf("C2B confirmation BillRefNumber = %q: got %d %s, want 200", s, r.Status, r.Raw)
				}
			}
		}
		for id, k := range seeded {
			if got := secPaymentRaw(t, svc, k, id); got != snapshot[id] {
				t.Errorf("payment %s after the attacks: got %s, want it unchanged: %s", id, secBrief(got), secBrief(snapshot[id]))
			}
		}
		// The tables still answer, with the seeded payments in them.
		for _, c := range []struct {
			key, before string
			ids         []string
		}{{keyA, listA, []string{paid.id, pending.id}}, {keyB, listB, []string{other.id}}} {
			page, err := svc.appClient(t, c.key).PaymentsPage(context.Background(), client.ListQuery{Limit: 200})
			if err != nil {
				t.Fatalf("payment list after the attacks: %v", err)
			}
			var got []string
			for _, p := range page.Payments {
				got = append(got, p.ID)
			}
			for _, id := range c.ids {
				if !slices.Contains(got, id) {
					t.Errorf("payment list after the attacks: got %v, want %s still in it", got, id)
				}
			}
		}
		if st, code := secAuthStatus(t, svc, keyB); st != http.StatusOK {
			t.Errorf("app B after the attacks: got %d %q, want its key still working", st, code)
		}
	})
}

// secFlipLast returns s with its last character changed.
func secFlipLast(s string) string {
	if strings.HasSuffix(s, "a") {
		return s[:len(s)-1] + "b"
	}
	return s[:len(s)-1] + "a"
}

// TestSecurityAbuseMissingKey calls every app endpoint without a valid
// X-API-KEY: each answers 401 in Lipa's JSON error shape, and nothing
// happens.
func TestSecurityAbuseMissingKey(t *testing.T) {
	const adminKey = "secAdminKey_Hq3Vn8Lw2Zx5"
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := secStart(t, databaseURL, "LIPA_ADMIN_KEY", adminKey)
		key := svc.createApp(t, "shop")
		disabled := svc.createApp(t, "gone")
		secCLI(t, svc, "apps", "disable", "gone")
		p := secPush(t, svc, key, 10)
		wantStatus(t, "callback", secSend(t, svc, nil, secReq{method: http.MethodPost, path: secSTKPath + secToken + "/",
			body: secSTKSuccess(p.checkoutID, 10, json.Number(p.phone), secReceipt())}), http.StatusOK)
		waitPayment(t, svc.appClient(t, key), p.id, client.StatusSuccess)
		before, list := secPaymentRaw(t, svc, key, p.id), secListRaw(t, svc, key)

		endpoints := []secReq{
			{method: http.MethodPost, path: "/api/stk-push/", body: map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": "NOKEY"}},
			{method: http.MethodGet, path: "/api/payments/"},
			{method: http.MethodGet, path: "/api/payments/?reference=" + p.ref},
			{method: http.MethodGet, path: "/api/payments/" + p.id + "/"},
			{method: http.MethodGet, path: "/api/payments/verify/?reference=" + p.ref},
			{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"payment_id": p.id}},
			{method: http.MethodPost, path: "/api/payments/claim/", body: map[string]any{"reference": p.ref}},
		}
		keys := []struct {
			name   string
			header map[string]string
			code   string
		}{
			{"no key", nil, "missing_api_key"},
			{"empty X-API-KEY", map[string]string{"X-API-KEY": ""}, "missing_api_key"},
			{"the key as a Bearer token instead", map[string]string{"Authorization": "Bearer " + key}, "missing_api_key"},
			{"a wrong key", map[string]string{"X-API-KEY": "lipa_" + strings.Repeat("a", 52)}, "invalid_api_key"},
			{"the key in upper case", map[string]string{"X-API-KEY": strings.ToUpper(key)}, "invalid_api_key"},
			{"the key without its prefix", map[string]string{"X-API-KEY": strings.TrimPrefix(key, "lipa_")}, "invalid_api_key"},
			{"the key with its last character changed", map[string]string{"X-API-KEY": secFlipLast(key)}, "invalid_api_key"},
			{"the admin key", map[string]string{"X-API-KEY": adminKey}, "invalid_api_key"},
			{"the callback token", map[string]string{"X-API-KEY": secToken}, "invalid_api_key"},
			{"a disabled app's key", map[string]string{"X-API-KEY": disabled}, "app_disabled"},
		}
		for _, k := range keys {
			for _, ep := range endpoints {
				req := ep
				req.header = k.header
				r := secSend(t, svc, nil, req)
				what := fmt.Sprintf("%s %s with %s", req.method, req.path, k.name)
				if r.Status != http.StatusUnauthorized || secCode(r) != k.code {
					t.Errorf("%s: got %d %q, want 401 %q", what, r.Status, secCode(r), k.code)
					continue
				}
				checkErrorShape(t, what, r)
			}
		}
		if got := secPaymentRaw(t, svc, key, p.id); got != before {
			t.Errorf("payment after the unauthenticated calls: got %s, want it unchanged: %s", secBrief(got), secBrief(before))
		}
		if got := secListRaw(t, svc, key); got != list {
			t.Errorf("payments after the unauthenticated calls: got %s, want them unchanged: %s", got, list)
		}
	})
}

// TestSecurityOutput runs a service with recognisable secrets (API key,
// Daraja consumer secret and passkey, callback token, admin key) against
// the test's own simulator configured with them, exercises every endpoint
// and error path, then checks that every response carries the security
// headers, that no response and no LOG_FILE line holds a secret, and that
// phone numbers in the log are masked.
func TestSecurityOutput(t *testing.T) {
	const (
		consumerKey    = "secConsumerKey_Ab12"
		consumerSecret = "secConsumerSecret_Pz7Rw4Lk9Qm2"
		passkey        = "secPasskey_Hn5Tq8Vc3Xj6Yd1Bf"
		adminKey       = "secAdminKey_Mv6Gs2Kw9Ne4"
	)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sim := darajasim.New(darajasim.Config{ConsumerKey: consumerKey, ConsumerSecret: consumerSecret,
			ShortCodes: map[string]lipa.Secret{"174379": passkey}, CallbackDelay: 50 * time.Millisecond})
		simSrv := httptest.NewServer(sim)
		t.Cleanup(func() { sim.Close(); simSrv.Close() })
		svc := secStart(t, databaseURL, "MPESA_ENVIRONMENT", "simulator", "MPESA_BASE_URL", simSrv.URL,
			"MPESA_CONSUMER_KEY", consumerKey, "MPESA_CONSUMER_SECRET", consumerSecret, "MPESA_PASSKEY", passkey,
			"MPESA_SHORTCODE", "174379", "LIPA_ADMIN_KEY", adminKey)
		key := svc.createApp(t, "shop")
		secrets := map[string]string{
			"the API key": key, "the consumer secret": consumerSecret, "the passkey": passkey, "the callback token": secToken,
			"the admin key": adminKey, "the Basic credentials": base64.StdEncoding.EncodeToString([]byte(consumerKey + ":" + consumerSecret)),
		}

		// A paid push proves the secrets are the ones Daraja checks.
		phone := freshPhone()
		local := "0" + phone[3:]
		ac := svc.appClient(t, key)
		pid := pushOK(t, ac, local, 10, freshRef()).PaymentID
		pp := waitPayment(t, ac, pid, client.StatusSuccess)
		pending := secPush(t, svc, key, 10)
		sim.Close() // no more callbacks: the pending push stays PENDING

		reqs := []struct {
			name string
			req  secReq
		}{
			{"push", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": freshPhone(), "amount": 10, "reference": freshRef()}}},
			{"push Daraja answers with an HTML 500", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": darajasim.PhoneServerError, "amount": 10, "reference": freshRef()}}},
			{"push Daraja refuses (spike arrest)", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": darajasim.PhoneSpikeArrest, "amount": 10, "reference": freshRef()}}},
			{"push to a busy phone", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": pending.phone, "amount": 10, "reference": freshRef()}}},
			{"push with a bad phone", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": "tel:+" + phone, "amount": 10, "reference": "X"}}},
			{"push with a bad amount", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: map[string]any{"phone_number": phone, "amount": "ten", "reference": "X"}}},
			{"payment", secReq{method: http.MethodGet, path: "/api/payments/" + pid + "/", key: key}},
			{"list", secReq{method: http.MethodGet, path: "/api/payments/", key: key}},
			{"verify with phone", secReq{method: http.MethodGet, path: "/api/payments/verify/?receipt=" + pp.MpesaReceiptNumber + "&phone=" + local, key: key}},
			{"verify with a bad phone", secReq{method: http.MethodGet, path: "/api/payments/verify/?reference=X&phone=%2B" + phone + "x", key: key}},
			{"claim", secReq{method: http.MethodPost, path: "/api/payments/claim/", key: key, body: map[string]any{"payment_id": pid}}},
			{"claim again", secReq{method: http.MethodPost, path: "/api/payments/claim/", key: key, body: map[string]any{"payment_id": pid}}},
			{"claim a pending payment", secReq{method: http.MethodPost, path: "/api/payments/claim/", key: key, body: map[string]any{"payment_id": pending.id}}},
			{"unknown field", secReq{method: http.MethodPost, path: "/api/payments/claim/", key: key, body: `{"payment_id":"x","api_key":"` + key + `"}`}},
			{"body too large", secReq{method: http.MethodPost, path: "/api/stk-push/", key: key, body: strings.Repeat("A", 70<<10)}},
			{"no key", secReq{method: http.MethodGet, path: "/api/payments/"}},
			{"wrong key", secReq{method: http.MethodGet, path: "/api/payments/", key: key + "x"}},
			{"unknown path", secReq{method: http.MethodGet, path: "/api/nope/", key: key}},
			{"wrong method", secReq{method: http.MethodDelete, path: "/api/payments/claim/", key: key}},
			{"health", secReq{method: http.MethodGet, path: "/healthz"}},
			{"ready", secReq{method: http.MethodGet, path: "/readyz"}},
			{"callback on the bare path", secReq{method: http.MethodPost, path: secSTKPath, body: secSTKSuccess(pending.checkoutID, 10, json.Number(pending.phone), secReceipt())}},
			{"callback with a wrong token", secReq{method: http.MethodPost, path: secSTKPath + "wrongtoken/", body: secSTKSuccess(pending.checkoutID, 10, json.Number(pending.phone), secReceipt())}},
			{"callback with a tampered phone", secReq{method: http.MethodPost, path: secSTKPath + secToken + "/", body: secSTKSuccess(pending.checkoutID, 10, json.Number("254799999999"), secReceipt())}},
			{"callback for an unknown CheckoutRequestID", secReq{method: http.MethodPost, path: secSTKPath + secToken + "/", body: secSTKSuccess("ws_CO_UNKNOWN", 10, json.Number(phone), secReceipt())}},
			{"malformed callback", secReq{method: http.MethodPost, path: secSTKPath + secToken + "/", body: `{"Body":{}}`}},
			{"C2B validation", secReq{method: http.MethodPost, path: secValidationPath + secToken + "/", body: secC2B(secReceipt(), "SECOUT", "50.00", phone)}},
			{"C2B confirmation", secReq{method: http.MethodPost, path: secConfirmationPath + secToken + "/", body: secC2B(secReceipt(), "SECOUT", "50.00", phone)}},
			{"admin: unmatched callbacks", secReq{method: http.MethodGet, path: "/api/admin/callbacks/unmatched/", header: map[string]string{"X-ADMIN-KEY": adminKey}}},
			{"admin: wrong admin key", secReq{method: http.MethodGet, path: "/api/admin/callbacks/unmatched/", header: map[string]string{"X-ADMIN-KEY": "nope"}}},
			{"GET on the secret callback URL", secReq{method: http.MethodGet, path: secSTKPath + secToken + "/"}},
			{"POST under the secret callback URL", secReq{method: http.MethodPost, path: secSTKPath + secToken + "/extra/", body: `{}`}},
		}
		for _, c := range reqs {
			r := secSend(t, svc, nil, c.req)
			if r.Status >= 500 && !strings.HasPrefix(c.name, "push Daraja") {
				t.Errorf("%s: got %d %s, want no server error", c.name, r.Status, r.Raw)
			}
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"} {
				if got := r.Header.Get(h); !strings.Contains(got, want) {
					t.Errorf("%s: got %s %q, want %q", c.name, h, got, want)
				}
			}
			if strings.Contains(c.req.path, secToken) {
				continue // the caller sent the token itself
			}
			var resp bytes.Buffer
			r.Header.Write(&resp)
			resp.Write(r.Raw)
			for name, s := range secrets {
				if strings.Contains(resp.String(), s) {
					t.Errorf("%s: got %s in the response, want it never returned", c.name, name)
				}
			}
		}

		// Each request's log lines are written before it is answered.
		data, err := os.ReadFile(svc.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for name, s := range secrets {
			for _, l := range lines {
				if strings.Contains(l, s) {
					t.Errorf("LOG_FILE: got %s in the line %s, want no secret logged", name, strings.ReplaceAll(l, s, "<"+name+">"))
				}
			}
		}
		for _, ph := range []string{phone, pending.phone} {
			full := regexp.MustCompile(`(^|[^0-9])(254|\+254|0)` + ph[3:] + `([^0-9]|$)`)
			for _, l := range lines {
				if full.MatchString(l) {
					t.Errorf("LOG_FILE: got the phone number %s unmasked in the line %s, want it masked", ph, l)
				}
			}
			if masked := lipa.MaskPhone(ph); !strings.Contains(string(data), masked) {
				t.Errorf("LOG_FILE: got no %s, want the phone logged masked", masked)
			}
		}
	})
}

// TestSecurityServerLimits: the running server bounds how long a client
// may take to send its headers and body, how long a response may take, and
// how long an idle connection is kept (against slow-client attacks), and
// refuses oversized headers.
func TestSecurityServerLimits(t *testing.T) {
	svc := secStart(t, sqlstoretest.URL(t, sqlstore.SQLite))
	h := svc.srv.http
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": h.ReadHeaderTimeout, "ReadTimeout": h.ReadTimeout,
		"WriteTimeout": h.WriteTimeout, "IdleTimeout": h.IdleTimeout} {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("http.Server.%s: got %v, want a bound between 0 and 5m", name, d)
		}
	}
	if h.ReadHeaderTimeout > 30*time.Second {
		t.Errorf("http.Server.ReadHeaderTimeout: got %v, want at most 30s", h.ReadHeaderTimeout)
	}
	// Oversized headers are refused, not buffered without end.
	r := secSend(t, svc, nil, secReq{method: http.MethodGet, path: "/api/payments/", header: map[string]string{"X-API-KEY": strings.Repeat("a", 2<<20)}})
	if r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB header: got %d, want 431", r.Status)
	}
}

// TestSecurityC2BValidation: the configured rules (LIPA_C2B_ACCOUNT_PATTERN
// matched in full, LIPA_C2B_MIN_AMOUNT, LIPA_C2B_MAX_AMOUNT) reject C2B
// payments with Daraja's codes C2B00012 (account) and C2B00013 (amount).
func TestSecurityC2BValidation(t *testing.T) {
	rules := []string{"LIPA_C2B_ACCOUNT_PATTERN", "INV[0-9]+", "LIPA_C2B_MIN_AMOUNT", "10", "LIPA_C2B_MAX_AMOUNT", "1000"}
	alternation := []string{"LIPA_C2B_ACCOUNT_PATTERN", "INV[0-9]+|REF[0-9]+"}
	cases := []struct {
		name    string
		env     []string
		account string
		amount  any
		want    string
	}{
		{"no rules: any account", nil, "XYZ", "5.00", "0"},
		{"matching account", rules, "INV12", "100.00", "0"},
		{"other account", rules, "XYZ", "100.00", "C2B00012"},
		{"account with a suffix", rules, "INV12X", "100.00", "C2B00012"},
		{"account with a prefix", rules, "xINV12", "100.00", "C2B00012"},
		{"account in lower case", rules, "inv12", "100.00", "C2B00012"},
		{"two accounts", rules, "INV12 INV13", "100.00", "C2B00012"},
		{"empty account", rules, "", "100.00", "C2B00012"},
		{"alternation: first", alternation, "INV1", "5.00", "0"},
		{"alternation: second", alternation, "REF1", "5.00", "0"},
		{"alternation does not escape the anchors", alternation, "INV1garbage", "5.00", "C2B00012"},
		{"alternation does not escape the anchors (second)", alternation, "garbageREF1", "5.00", "C2B00012"},
		{"below the minimum", rules, "INV12", "5.00", "C2B00013"},
		{"just below the minimum", rules, "INV12", "9.99", "C2B00013"},
		{"the minimum", rules, "INV12", "10.00", "0"},
		{"the maximum", rules, "INV12", "1000.00", "0"},
		{"just above the maximum", rules, "INV12", "1000.01", "C2B00013"},
		{"above the maximum", rules, "INV12", "2000.00", "C2B00013"},
		{"above the maximum, as a JSON number", rules, "INV12", json.Number("2000"), "C2B00013"},
		{"negative", rules, "INV12", "-50.00", "C2B00013"},
		{"not a number", rules, "INV12", "abc", "C2B00013"},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		// One service per configuration, shared by its cases.
		services := map[string]*testService{}
		for _, c := range cases {
			if id := strings.Join(c.env, " "); services[id] == nil {
				services[id] = secStart(t, databaseURL, c.env...)
			}
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				svc := services[strings.Join(c.env, " ")]
				r := secSend(t, svc, nil, secReq{method: http.MethodPost, path: secValidationPath + secToken + "/",
					body: secC2B(secReceipt(), c.account, c.amount, "2547 ***** 149")})
				if r.Status != http.StatusOK || jsonStr(r.Body, "ResultCode") != c.want || jsonStr(r.Body, "ResultDesc") == "" {
					t.Errorf("validation of account %q amount %v: got %d %s, want 200 with ResultCode %q and a ResultDesc", c.account, c.amount, r.Status, r.Raw, c.want)
				}
			})
		}
	})
}
