package darajasim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
)

const (
	pushPath  = "/mpesa/stkpush/v1/processrequest"
	queryPath = "/mpesa/stkpushquery/v1/query"
)

func nowTimestamp() string { return time.Now().In(eat).Format("20060102150405") }

// pushRequest is a valid STK push for the sandbox shortcode, with strings
// throughout except where a test overrides a field.
func pushRequest(phone, callbackURL string, amount any) map[string]any {
	ts := nowTimestamp()
	return map[string]any{
		"BusinessShortCode": "174379",
		"Password":          password("174379", darajasim.SandboxPasskey.Reveal(), ts),
		"Timestamp":         ts,
		"TransactionType":   "CustomerPayBillOnline",
		"Amount":            amount,
		"PartyA":            phone,
		"PartyB":            "174379",
		"PhoneNumber":       phone,
		"CallBackURL":       callbackURL,
		"AccountReference":  "INV-42",
		"TransactionDesc":   "Payment",
	}
}

func queryRequest(checkoutRequestID string) map[string]any {
	ts := nowTimestamp()
	return map[string]any{
		"BusinessShortCode": 174379,
		"Password":          password("174379", darajasim.SandboxPasskey.Reveal(), ts),
		"Timestamp":         ts,
		"CheckoutRequestID": checkoutRequestID,
	}
}

type pushResponse struct {
	MerchantRequestID   string
	CheckoutRequestID   string
	ResponseCode        string
	ResponseDescription string
	CustomerMessage     string
}

// push sends an STK push that must be accepted and returns the answer.
func push(t *testing.T, base, tok string, req any) pushResponse {
	t.Helper()
	status, body := call(t, http.MethodPost, base+pushPath, tok, req)
	if status != http.StatusOK {
		t.Fatalf("push: got HTTP %d %s, want 200", status, body)
	}
	var r pushResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

type metadataItem struct {
	Name  string
	Value json.RawMessage `json:",omitempty"`
}

type stkCallback struct {
	Body struct {
		StkCallback struct {
			MerchantRequestID string
			CheckoutRequestID string
			ResultCode        int
			ResultDesc        string
			CallbackMetadata  *struct{ Item []metadataItem } `json:",omitempty"`
		} `json:"stkCallback"`
	}
}

var (
	receiptRE  = regexp.MustCompile(`^[A-Z][A-L][1-9A-V][0-9A-Z]{7}$`)
	merchantRE = regexp.MustCompile(`^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[0-9]+$`)
	checkoutRE = regexp.MustCompile(`^ws_CO_[0-9]{14}[0-9]{3}[0-9]{9}$`)
)

// wantCallback decodes an STK callback delivery and checks it against the
// push answer and outcome: headers, IDs, result, and for success the five
// metadata items with a well-formed receipt and date.
func wantCallback(t *testing.T, d delivery, accepted pushResponse, o darajasim.Outcome, amount int64) stkCallback {
	t.Helper()
	if got, want := d.Header.Get("Content-Type"), "application/json;charset=UTF-8"; got != want {
		t.Errorf("got Content-Type %q, want %q", got, want)
	}
	if got, want := d.Header.Get("BusinessShortCode"), "174379"; got != want {
		t.Errorf("got BusinessShortCode header %q, want %q", got, want)
	}
	var cb stkCallback
	if err := json.Unmarshal(d.Body, &cb); err != nil {
		t.Fatalf("callback %s: %v", d.Body, err)
	}
	got := cb.Body.StkCallback
	want := got
	want.MerchantRequestID = accepted.MerchantRequestID
	want.CheckoutRequestID = accepted.CheckoutRequestID
	want.ResultCode = o.ResultCode
	want.ResultDesc = o.ResultDesc
	want.CallbackMetadata = nil
	if o.ResultCode == 0 {
		wantShape(t, d.Body, "stk-callback-success-integer-amount.json")
		if got.CallbackMetadata == nil || len(got.CallbackMetadata.Item) != 5 {
			t.Fatalf("got metadata %s, want five items", d.Body)
		}
		var receipt, date string
		json.Unmarshal(got.CallbackMetadata.Item[1].Value, &receipt)
		date = string(got.CallbackMetadata.Item[3].Value)
		if !receiptRE.MatchString(receipt) {
			t.Errorf("got receipt %q, want the format of docs/daraja.md, M-Pesa Express", receipt)
		}
		if _, err := time.ParseInLocation("20060102150405", date, eat); err != nil {
			t.Errorf("got TransactionDate %s, want yyyyMMddHHmmss: %v", date, err)
		}
		want.CallbackMetadata = &struct{ Item []metadataItem }{Item: []metadataItem{
			{Name: "Amount", Value: json.RawMessage(strconv.FormatInt(amount, 10))},
			{Name: "MpesaReceiptNumber", Value: json.RawMessage(strconv.Quote(receipt))},
			{Name: "Balance"},
			{Name: "TransactionDate", Value: json.RawMessage(date)},
			{Name: "PhoneNumber", Value: json.RawMessage(o.Phone)},
		}}
	} else {
		wantShape(t, d.Body, "stk-callback-cancelled-1032.json")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("callback mismatch (-want +got):\n%s", diff)
	}
	return cb
}

func TestSTKPushOfficialFixture(t *testing.T) {
	rc := newReceiver(t, nil)
	target, _ := url.Parse(rc.URL)
	_, base := newSim(t, darajasim.Config{HTTPClient: &http.Client{Transport: redirect{target}, Timeout: 5 * time.Second}})
	tok := token(t, base)

	accepted := push(t, base, tok, fixture(t, "stk-push-request.json"))
	if diff := cmp.Diff(shape(decode(t, fixture(t, "stk-push-response-ok.json"))), shape(decode(t, mustJSON(t, accepted)))); diff != "" {
		t.Errorf("push answer shape (-fixture +got):\n%s", diff)
	}
	if accepted.ResponseCode != "0" || accepted.ResponseDescription != "Success. Request accepted for processing" ||
		accepted.CustomerMessage != "Success. Request accepted for processing" {
		t.Errorf("got %+v, want ResponseCode 0 and the acceptance texts", accepted)
	}
	d := rc.next(t)
	if d.Path != "/path" {
		t.Errorf("got callback to %s, want /path (the fixture's CallBackURL)", d.Path)
	}
	wantCallback(t, d, accepted, darajasim.OutcomeFor("254708374149"), 1)
}

func TestSTKPushCredentials(t *testing.T) {
	official := fixture(t, "stk-push-request.json")
	ts := nowTimestamp()
	tests := []struct {
		name     string
		cfg      darajasim.Config
		body     any
		wantCode string
		wantMsg  string
	}{
		{"wrong passkey", darajasim.Config{ShortCodes: map[string]lipa.Secret{"174379": "not-the-passkey"}},
			official, "500.001.1001", "Wrong credentials"},
		{"password for another timestamp", darajasim.Config{},
			with(pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", "1"), "Timestamp", "20210628092409"),
			"500.001.1001", "Wrong credentials"},
		{"password not base64", darajasim.Config{},
			with(pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", "1"), "Password", "%%%"),
			"500.001.1001", "Wrong credentials"},
		{"unknown shortcode", darajasim.Config{},
			with(with(with(pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", "1"),
				"BusinessShortCode", "600000"), "Timestamp", ts), "Password", password("600000", "whatever", ts)),
			"500.001.1001", "Merchant does not exist"},
		{"subscriber locked", darajasim.Config{},
			pushRequest(darajasim.PhoneSubscriberLocked, "https://example.com/cb", "1"),
			"500.001.1001", darajasim.MessageSubscriberLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := newSim(t, tt.cfg)
			status, body := call(t, http.MethodPost, base+pushPath, token(t, base), tt.body)
			wantError(t, status, body, http.StatusInternalServerError, tt.wantCode, tt.wantMsg)
		})
	}
}

// with returns a copy of m with key set to v; v == deleteKey removes it.
func with(m map[string]any, key string, v any) map[string]any {
	c := make(map[string]any, len(m))
	for k, e := range m {
		c[k] = e
	}
	if v == deleteKey {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

type deleteMarker struct{}

var deleteKey = deleteMarker{}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSTKPushValidation(t *testing.T) {
	// Many accepted pushes to one phone, prompts all open: no lock.
	_, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
	tok := token(t, base)
	valid := pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", "10")

	invalid := []struct {
		field string
		value any
	}{
		{"BusinessShortCode", "1234"},
		{"BusinessShortCode", 12345678},
		{"BusinessShortCode", "17437a"},
		{"BusinessShortCode", true},
		{"BusinessShortCode", nil},
		{"BusinessShortCode", deleteKey},
		{"Password", ""},
		{"Password", deleteKey},
		{"Timestamp", "2021062809240"},
		{"Timestamp", "20211328092408"},
		{"Timestamp", 20210628092408.5},
		{"Timestamp", deleteKey},
		{"TransactionType", "CustomerPayBill"},
		{"TransactionType", nil},
		{"Amount", "0"},
		{"Amount", 0},
		{"Amount", "250001"},
		{"Amount", "1.5"},
		{"Amount", 1.5},
		{"Amount", "-1"},
		{"Amount", "1e2"},
		{"Amount", "ten"},
		{"Amount", ""},
		{"Amount", nil},
		{"Amount", deleteKey},
		{"PartyA", "0708374149"},
		{"PartyA", "254808374149"},
		{"PartyA", "25470837414"},
		{"PartyA", deleteKey},
		{"PartyB", "17x379"},
		{"PartyB", deleteKey},
		{"PhoneNumber", "+254708374149"},
		{"PhoneNumber", 708374149},
		{"PhoneNumber", deleteKey},
		{"CallBackURL", "example.com/cb"},
		{"CallBackURL", "ftp://example.com/cb"},
		{"CallBackURL", "https://"},
		{"CallBackURL", "https://example.com/a b"},
		{"CallBackURL", deleteKey},
		{"AccountReference", ""},
		{"AccountReference", "ABCDEFGHIJKLM"},
		{"AccountReference", deleteKey},
		{"TransactionDesc", ""},
		{"TransactionDesc", "ABCDEFGHIJKLMN"},
		{"TransactionDesc", deleteKey},
	}
	for _, tt := range invalid {
		t.Run(fmt.Sprintf("%s=%v", tt.field, tt.value), func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+pushPath, tok, with(valid, tt.field, tt.value))
			wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid "+tt.field)
		})
	}

	t.Run("first invalid field wins", func(t *testing.T) {
		req := with(with(valid, "PhoneNumber", "1"), "PartyA", "2")
		status, body := call(t, http.MethodPost, base+pushPath, tok, req)
		wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid PartyA")
	})

	for _, payload := range []string{"", "{", "[]", `"x"`, `{"Amount": 1} {}`, `{"Amount": 1,}`} {
		t.Run("payload "+payload, func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+pushPath, tok, payload)
			wantError(t, status, body, http.StatusBadRequest, "400.002.05", "Invalid Request Payload")
		})
	}

	accepted := []struct {
		field string
		value any
	}{
		{"BusinessShortCode", 174379},
		{"Amount", 1},
		{"Amount", 250000},
		{"Amount", "250000"},
		{"Amount", json.RawMessage("1.0")},
		{"Amount", "7.00"},
		{"PartyA", 254708374149},
		{"PartyB", 174379},
		{"PhoneNumber", 254712345678},
		{"PhoneNumber", "254112345678"},
		{"CallBackURL", "http://127.0.0.1:9/callbacks/abc?x=1"},
		{"AccountReference", "ABCDEFGHIJKL"},
		{"TransactionDesc", "ABCDEFGHIJKLM"},
		{"TransactionType", "CustomerBuyGoodsOnline"},
		{"Extra", "ignored"},
	}
	for _, tt := range accepted {
		t.Run(fmt.Sprintf("accept %s=%v", tt.field, tt.value), func(t *testing.T) {
			push(t, base, tok, with(valid, tt.field, tt.value))
		})
	}
}

func TestSTKOutcomes(t *testing.T) {
	rows := append(darajasim.Outcomes(), darajasim.OutcomeFor(darajasim.PhoneSuccess), darajasim.OutcomeFor("254712345678"))
	for _, o := range rows {
		if o.Fault != darajasim.FaultNone {
			continue // TestSTKPushFaults
		}
		t.Run(o.Phone, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			sim, base := newSim(t, darajasim.Config{PromptTimeout: 50 * time.Millisecond})
			tok := token(t, base)
			req := pushRequest(o.Phone, rc.URL+"/callbacks/token-123", "250")
			if o.Refused {
				status, body := call(t, http.MethodPost, base+pushPath, tok, req)
				wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", darajasim.MessageSubscriberLocked)
				sim.Close()
				rc.none(t)
				return
			}
			accepted := push(t, base, tok, req)
			var bodies [][]byte
			for range o.Deliveries {
				d := rc.next(t)
				if d.Path != "/callbacks/token-123" {
					t.Errorf("got callback to %s, want /callbacks/token-123", d.Path)
				}
				wantCallback(t, d, accepted, o, 250)
				bodies = append(bodies, d.Body)
			}
			if len(bodies) == 2 && string(bodies[0]) != string(bodies[1]) {
				t.Errorf("got different duplicate deliveries:\n%s\n%s", bodies[0], bodies[1])
			}
			q := waitFinal(t, base, tok, accepted.CheckoutRequestID)
			want := queryResponse{
				ResponseCode:        "0",
				ResponseDescription: "The service request has been accepted successfully",
				MerchantRequestID:   accepted.MerchantRequestID,
				CheckoutRequestID:   accepted.CheckoutRequestID,
				ResultCode:          strconv.Itoa(o.ResultCode),
				ResultDesc:          o.ResultDesc,
			}
			if diff := cmp.Diff(want, q); diff != "" {
				t.Errorf("query mismatch (-want +got):\n%s", diff)
			}
			sim.Close() // waits for any delivery still in flight
			rc.none(t)
		})
	}
}

type queryResponse struct {
	ResponseCode        string
	ResponseDescription string
	MerchantRequestID   string
	CheckoutRequestID   string
	ResultCode          string
	ResultDesc          string
}

// waitFinal polls STK query until it answers a final result and returns that
// answer. Pending answers may take any of the three shapes (docs/daraja.md
// "STK query").
func waitFinal(t *testing.T, base, tok, id string) queryResponse {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := call(t, http.MethodPost, base+queryPath, tok, queryRequest(id))
		switch {
		case status == http.StatusOK && bytes.Contains(body, []byte(`"errorCode"`)):
			wantError(t, status, body, http.StatusOK, "500.001.1001", "")
		case status == http.StatusOK:
			wantShape(t, body, "stk-query-response-success.json")
			var q queryResponse
			if err := json.Unmarshal(body, &q); err != nil {
				t.Fatal(err)
			}
			if q.ResultCode != "4999" {
				return q
			}
		default:
			wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", "The transaction is being processed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("query for %s still pending after 5s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSTKQuery(t *testing.T) {
	t.Run("pending then final", func(t *testing.T) {
		rc := newReceiver(t, nil)
		_, base := newSim(t, darajasim.Config{CallbackDelay: 500 * time.Millisecond})
		tok := token(t, base)
		accepted := push(t, base, tok, pushRequest(darajasim.PhoneCancelled, rc.URL+"/cb", 5))
		status, body := call(t, http.MethodPost, base+queryPath, tok, queryRequest(accepted.CheckoutRequestID))
		env := wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", "The transaction is being processed")
		if env.RequestID != accepted.CheckoutRequestID {
			t.Errorf("got requestId %q, want the CheckoutRequestID %q", env.RequestID, accepted.CheckoutRequestID)
		}
		rc.next(t)
		status, body = call(t, http.MethodPost, base+queryPath, tok, queryRequest(accepted.CheckoutRequestID))
		var q queryResponse
		json.Unmarshal(body, &q)
		if status != http.StatusOK || q.ResultCode != "1032" || q.ResultDesc != darajasim.ResultDescCancelled {
			t.Errorf("got HTTP %d %s, want 200 with ResultCode \"1032\"", status, body)
		}
	})

	_, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour})
	tok := token(t, base)
	accepted := push(t, base, tok, pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", 5))
	ts := nowTimestamp()
	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"pending", queryRequest(accepted.CheckoutRequestID), 500, "500.001.1001", "The transaction is being processed"},
		{"unknown id", queryRequest("ws_CO_01012026000000000708374149"), 500, "500.001.1001", "The transaction does not Exist"},
		{"fixture", fixture(t, "stk-query-request.json"), 500, "500.001.1001", "The transaction does not Exist"},
		{"missing id", with(queryRequest("x"), "CheckoutRequestID", deleteKey), 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID"},
		{"bad shortcode", with(queryRequest("x"), "BusinessShortCode", "12"), 400, "400.002.02", "Bad Request - Invalid BusinessShortCode"},
		{"bad timestamp", with(queryRequest("x"), "Timestamp", "yesterday"), 400, "400.002.02", "Bad Request - Invalid Timestamp"},
		{"wrong password", with(queryRequest(accepted.CheckoutRequestID), "Password", password("174379", "nope", ts)), 500, "500.001.1001", "Wrong credentials"},
		{"other merchant", map[string]any{"BusinessShortCode": "600000", "Password": password("600000", "k", ts), "Timestamp": ts, "CheckoutRequestID": accepted.CheckoutRequestID},
			500, "500.001.1001", "Merchant does not exist"},
		{"malformed", "{", 400, "400.002.05", "Invalid Request Payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+queryPath, tok, tt.body)
			wantError(t, status, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
		})
	}
}

func TestSTKIDs(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 6, 6, 52, 21, 415_000_000, time.UTC)} // 09:52:21.415 EAT
	_, base := newSim(t, darajasim.Config{Now: clk.Now, CallbackDelay: time.Hour, NoSubscriberLock: true})
	tok := token(t, base)
	seen := make(map[string]bool)
	for i := range 50 {
		a := push(t, base, tok, pushRequest(darajasim.PhoneSuccess, "https://example.com/cb", 1))
		if i == 0 && a.CheckoutRequestID != "ws_CO_06102026095221415708374149" {
			t.Errorf("got CheckoutRequestID %q, want ws_CO_06102026095221415708374149", a.CheckoutRequestID)
		}
		if !checkoutRE.MatchString(a.CheckoutRequestID) || !merchantRE.MatchString(a.MerchantRequestID) {
			t.Errorf("got IDs %q, %q, want the current formats", a.CheckoutRequestID, a.MerchantRequestID)
		}
		if seen[a.CheckoutRequestID] || seen[a.MerchantRequestID] {
			t.Fatalf("got a repeated ID in %+v", a)
		}
		seen[a.CheckoutRequestID], seen[a.MerchantRequestID] = true, true
	}
}

func TestSTKConcurrent(t *testing.T) {
	rc := newReceiver(t, nil)
	sim, base := newSim(t, darajasim.Config{PromptTimeout: 50 * time.Millisecond})
	tok := token(t, base)
	const n = 40
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			phone := fmt.Sprintf("2547%08d", i)
			if darajasim.OutcomeFor(phone).Fault != darajasim.FaultNone {
				return // faults hang, throttle or revoke the shared token
			}
			status, body := call(t, http.MethodPost, base+pushPath, tok, pushRequest(phone, rc.URL+"/cb", i+1))
			if darajasim.OutcomeFor(phone).Refused {
				if status != http.StatusInternalServerError {
					t.Errorf("push %d: got HTTP %d %s, want 500", i, status, body)
				}
				return
			}
			if status != http.StatusOK {
				t.Errorf("push %d: got HTTP %d %s, want 200", i, status, body)
				return
			}
			var a pushResponse
			json.Unmarshal(body, &a)
			ids <- a.CheckoutRequestID
			call(t, http.MethodPost, base+queryPath, tok, queryRequest(a.CheckoutRequestID))
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if q := waitFinal(t, base, tok, id); q.CheckoutRequestID != id {
			t.Errorf("got %+v, want CheckoutRequestID %s", q, id)
		}
	}
	sim.Close()
	// 254700000001..7 are among the numbers; count what each should deliver.
	want := 0
	for i := range n {
		if o := darajasim.OutcomeFor(fmt.Sprintf("2547%08d", i)); o.Fault == darajasim.FaultNone {
			want += o.Deliveries
		}
	}
	if got := len(rc.got); got != want {
		t.Errorf("got %d callbacks, want %d", got, want)
	}
}
