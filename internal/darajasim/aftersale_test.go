package darajasim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
)

const (
	reversalPath = "/mpesa/reversal/v1/request"
	statusPath   = "/mpesa/transactionstatus/v1/query"
	pullRegPath  = "/pulltransactions/v1/register"
	pullQryPath  = "/pulltransactions/v1/query"
)

// redirected returns a Config whose deliveries all land on rc, whatever
// host their URL names, so that Daraja's sample bodies can be sent
// verbatim.
func redirected(t *testing.T, rc *receiver, cfg darajasim.Config) darajasim.Config {
	t.Helper()
	u, _ := url.Parse(rc.URL)
	cfg.HTTPClient = &http.Client{Transport: redirect{u}, Timeout: 5 * time.Second}
	return cfg
}

// fixtureMap decodes a fixture into a map to be changed and sent.
func fixtureMap(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// paid makes a paid STK push from phone and returns its receipt.
func paid(t *testing.T, base, tok string, rc *receiver, phone string, amount int) string {
	t.Helper()
	push(t, base, tok, pushRequest(phone, rc.URL+"/stk", amount))
	d := rc.next(t)
	var cb struct {
		Body struct {
			STKCallback struct {
				ResultCode       int
				CallbackMetadata struct {
					Item []struct {
						Name  string
						Value any
					}
				}
			} `json:"stkCallback"`
		}
	}
	if err := json.Unmarshal(d.Body, &cb); err != nil {
		t.Fatal(err)
	}
	for _, it := range cb.Body.STKCallback.CallbackMetadata.Item {
		if it.Name == "MpesaReceiptNumber" {
			return it.Value.(string)
		}
	}
	t.Fatalf("callback without a receipt: %s", d.Body)
	return ""
}

// TestInitiatorSamplesVerbatim: the portal's Reversal and Transaction Status
// request samples, as a Daraja SDK sends them (credential encrypted for
// Safaricom, not the simulator), are acknowledged and answered in the
// shapes of Daraja's samples.
func TestInitiatorSamplesVerbatim(t *testing.T) {
	rc := newReceiver(t, nil)
	_, base := newSim(t, redirected(t, rc, darajasim.Config{}))
	tok := token(t, base)

	tests := []struct {
		name, path, request, result string
	}{
		{"reversal of an unknown receipt", reversalPath, "reversal-request.json", "reversal-result-invalid-R000002.json"},
		{"status of an unknown receipt", statusPath, "transaction-status-request.json", "transaction-status-result-not-found-2032.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := fixtureMap(t, tt.request)
			if tt.path == statusPath {
				delete(req, "Occasion") // the not-found sample echoes none
			}
			status, body := call(t, http.MethodPost, base+tt.path, tok, req)
			if status != http.StatusOK {
				t.Fatalf("got HTTP %d %s, want 200", status, body)
			}
			wantShape(t, body, "async-request-ack.json")
			var ack map[string]string
			json.Unmarshal(body, &ack)
			if ack["ResponseCode"] != "0" || ack["ResponseDescription"] != darajasim.AckDescription || !strings.HasPrefix(ack["ConversationID"], "AG_") {
				t.Errorf("ack: got %s", body)
			}
			d := rc.next(t)
			want, _ := url.Parse(req["ResultURL"].(string))
			if d.Path != want.Path || !strings.HasPrefix(d.Header.Get("Content-Type"), "application/json") {
				t.Errorf("result: got POST to %s (%s), want %s as JSON", d.Path, d.Header.Get("Content-Type"), want.Path)
			}
			wantShape(t, d.Body, tt.result)
		})
	}
}

func TestReversalOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		payer       string
		wantCode    any // float64 for numbers, string for R0000xx
		wantDesc    string
		wantShapeOf string
		wantPath    string // "" for no Result at all
	}{
		{"success", "254711000001", float64(0), darajasim.ResultDescProcessed, "reversal-result-success.json", "/result"},
		{"already reversed", darajasim.PhoneReversalAlreadyReversed, "R000001", darajasim.ResultDescAlreadyReversed, "reversal-result-invalid-R000002.json", "/result"},
		{"invalid", darajasim.PhoneReversalInvalid, "R000002", darajasim.ResultDescInvalidOriginal, "reversal-result-invalid-R000002.json", "/result"},
		{"initiator fails", darajasim.PhoneReversalInitiatorFails, float64(2001), darajasim.ResultDescInitiatorInvalid, "b2c-result-failure-2001.json", "/result"},
		{"locked", darajasim.PhoneReversalLocked, float64(8006), darajasim.ResultDescCredentialLocked, "b2c-result-locked-8006.json", "/result"},
		{"queue timeout", darajasim.PhoneReversalQueueTimeout, darajasim.ResultCodeQueueTimeout, darajasim.ResultDescQueueTimeout, "", "/timeout"},
		{"no result", darajasim.PhoneReversalNoResult, nil, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			sim, base := newSim(t, darajasim.Config{})
			tok := token(t, base)
			receipt := paid(t, base, tok, rc, tt.payer, 120)
			req := with(fixtureMap(t, "reversal-request.json"), "TransactionID", receipt)
			req = with(with(with(req, "ResultURL", rc.URL+"/result"), "QueueTimeOutURL", rc.URL+"/timeout"), "ReceiverParty", "174379")
			if status, body := call(t, http.MethodPost, base+reversalPath, tok, req); status != http.StatusOK {
				t.Fatalf("got HTTP %d %s, want 200", status, body)
			}
			if tt.wantPath == "" {
				deadline := time.Now().Add(5 * time.Second)
				for tx, _ := sim.TransactionByReceipt(receipt); tx.ReversedBy == ""; tx, _ = sim.TransactionByReceipt(receipt) {
					if time.Now().After(deadline) {
						t.Fatal("not reversed in time")
					}
					time.Sleep(5 * time.Millisecond)
				}
				sim.Close() // waits for a delivery in flight
				rc.none(t)
				return
			}
			d := rc.next(t)
			if d.Path != tt.wantPath {
				t.Fatalf("got a POST to %s, want %s: %s", d.Path, tt.wantPath, d.Body)
			}
			if tt.wantShapeOf != "" {
				wantShape(t, d.Body, tt.wantShapeOf)
			}
			var res struct{ Result map[string]any }
			json.Unmarshal(d.Body, &res)
			if res.Result["ResultCode"] != tt.wantCode || res.Result["ResultDesc"] != tt.wantDesc {
				t.Errorf("got ResultCode %v %q, want %v %q", res.Result["ResultCode"], res.Result["ResultDesc"], tt.wantCode, tt.wantDesc)
			}
			tx, _ := sim.TransactionByReceipt(receipt)
			if reversed := tx.ReversedBy != ""; reversed != (tt.name == "success") {
				t.Errorf("original reversed: got %v, want %v", reversed, tt.name == "success")
			}
		})
	}
}

func TestTransactionStatusShapes(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     darajasim.Config
		occasn  string
		fixture string
	}{
		{"current", darajasim.Config{}, "", "transaction-status-result.json"},
		{"legacy", darajasim.Config{LegacyStatusResults: true}, "aaaa", "transaction-status-result-legacy-spaced-keys.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			_, base := newSim(t, tt.cfg)
			tok := token(t, base)
			receipt := paid(t, base, tok, rc, "254711000001", 300)
			req := with(with(fixtureMap(t, "transaction-status-request.json"), "TransactionID", receipt), "PartyA", "174379")
			req = with(with(req, "ResultURL", rc.URL+"/status"), "OriginalConversationID", deleteKey)
			req = with(req, "Occasion", tt.occasn)
			if tt.occasn == "" {
				req = with(req, "Occasion", deleteKey)
			}
			if status, body := call(t, http.MethodPost, base+statusPath, tok, req); status != http.StatusOK {
				t.Fatalf("got HTTP %d %s, want 200", status, body)
			}
			d := rc.next(t)
			wantShape(t, d.Body, tt.fixture)
			if !strings.Contains(string(d.Body), receipt) {
				t.Errorf("status result %s does not name %s", d.Body, receipt)
			}
		})
	}
}

// TestInitiatorValidation: each field refused at once with Daraja's
// 400.002.02 "Bad Request - Invalid <Field>", and the per-API token
// refusal.
func TestInitiatorValidation(t *testing.T) {
	rc := newReceiver(t, nil)
	_, base := newSim(t, darajasim.Config{})
	tok := token(t, base)
	rev := with(with(fixtureMap(t, "reversal-request.json"), "ResultURL", rc.URL+"/r"), "QueueTimeOutURL", rc.URL+"/q")
	sts := with(with(fixtureMap(t, "transaction-status-request.json"), "ResultURL", rc.URL+"/r"), "QueueTimeOutURL", rc.URL+"/q")
	tests := []struct {
		path  string
		body  map[string]any
		field string
		value any
	}{
		{reversalPath, rev, "Initiator", ""},
		{reversalPath, rev, "SecurityCredential", "not base64!"},
		{reversalPath, rev, "SecurityCredential", deleteKey},
		{reversalPath, rev, "CommandID", "TransactionStatusQuery"},
		{reversalPath, rev, "TransactionID", "PDU91"},
		{reversalPath, rev, "TransactionID", "pdu91hivit"},
		{reversalPath, rev, "Amount", "0"},
		{reversalPath, rev, "Amount", "1.005"},
		{reversalPath, rev, "ReceiverParty", "60"},
		{reversalPath, rev, "RecieverIdentifierType", "3"},
		{reversalPath, rev, "RecieverIdentifierType", deleteKey}, // only Daraja's spelling counts
		{reversalPath, rev, "ResultURL", "https://example.com/mpesa/result"},
		{reversalPath, rev, "ResultURL", "https://example.com/Safaricom/result"},
		{reversalPath, rev, "QueueTimeOutURL", "https://example.com/exe/timeout"},
		{reversalPath, rev, "QueueTimeOutURL", "not a url"},
		{reversalPath, rev, "Remarks", "x"},
		{reversalPath, rev, "Remarks", strings.Repeat("x", 101)},
		{reversalPath, rev, "Occasion", strings.Repeat("x", 101)},
		{statusPath, sts, "CommandID", "TransactionReversal"},
		{statusPath, sts, "TransactionID", "short"},
		{statusPath, sts, "PartyA", "12"},
		{statusPath, sts, "IdentifierType", "11"},
		{statusPath, sts, "ResultURL", "https://example.com/api/query/result"},
		{statusPath, sts, "Remarks", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.field, func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+tt.path, tok, with(tt.body, tt.field, tt.value))
			wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid "+tt.field)
		})
	}
	t.Run("status without either ID", func(t *testing.T) {
		status, body := call(t, http.MethodPost, base+statusPath, tok, with(with(sts, "TransactionID", deleteKey), "OriginalConversationID", ""))
		wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid TransactionID")
	})
	t.Run("status by OriginalConversationID alone", func(t *testing.T) {
		status, body := call(t, http.MethodPost, base+statusPath, tok, with(sts, "TransactionID", deleteKey))
		if status != http.StatusOK {
			t.Errorf("got HTTP %d %s, want 200", status, body)
		}
	})
	for _, tt := range []struct {
		path         string
		status       int
		code         string
		body         map[string]any
		wantMalform  bool
		wantTokenMsg string
	}{
		{reversalPath, http.StatusNotFound, "404.001.03", rev, true, "Invalid Access Token"},
		{statusPath, http.StatusBadRequest, "400.003.01", sts, true, "Invalid Access Token"},
		{pullRegPath, http.StatusUnauthorized, "401.001", fixtureMap(t, "pull-register-request.json"), true, "Invalid Access Token"},
		{pullQryPath, http.StatusUnauthorized, "401.001", fixtureMap(t, "pull-query-request.json"), true, "Invalid Access Token"},
	} {
		t.Run(tt.path+" token", func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+tt.path, "", tt.body)
			wantError(t, status, body, tt.status, tt.code, tt.wantTokenMsg)
			status, body = call(t, http.MethodPost, base+tt.path, tok, "{")
			wantError(t, status, body, http.StatusBadRequest, "400.002.05", "Invalid Request Payload")
		})
	}
}

func TestPullEndpoints(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 5, 6, 41, 27, 0, time.UTC)} // 09:41:27 in Nairobi
	rc := newReceiver(t, nil)
	sim, base := newSim(t, darajasim.Config{Now: clk.Now})
	tok := token(t, base)
	reg := fixtureMap(t, "pull-register-request.json")
	reg["CallBackURL"] = rc.URL + "/pull"
	query := func(start, end string, offset any) (int, []byte) {
		t.Helper()
		q := map[string]any{"ShortCode": "600000", "StartDate": start, "EndDate": end, "OffSetValue": offset}
		return call(t, http.MethodPost, base+pullQryPath, tok, q)
	}

	// Not registered: "1001", as for an empty window.
	c2b, err := sim.PayC2B(context.Background(), darajasim.C2BPayment{ShortCode: "600000", CommandID: darajasim.CommandBuyGoods,
		Amount: 250, MSISDN: "254708374149", NoConfirmation: true})
	if err != nil {
		t.Fatal(err)
	}
	status, body := query("2026-10-05 09:00:00", "2026-10-05 10:00:00", "0")
	if status != http.StatusOK {
		t.Fatalf("query: got HTTP %d %s", status, body)
	}
	wantShape(t, body, "pull-query-response-no-records.json")

	status, body = call(t, http.MethodPost, base+pullRegPath, tok, reg)
	if status != http.StatusOK || !strings.Contains(string(body), `"ResponseStatus":"1000"`) {
		t.Fatalf("register: got HTTP %d %s, want 1000", status, body)
	}
	wantShape(t, body, "pull-register-response.json")
	status, body = call(t, http.MethodPost, base+pullRegPath, tok, reg)
	if status != http.StatusOK || !strings.Contains(string(body), `"ResponseStatus":"1001"`) {
		t.Fatalf("register again: got HTTP %d %s, want 1001", status, body)
	}
	wantShape(t, body, "pull-register-response-already-registered.json")

	status, body = query("2026-10-05 9:41", "2026-10-05 09:41:27", 0) // to the second, the hour in one digit
	wantShape(t, body, "pull-query-response.json")
	var resp struct {
		ResponseCode string
		Response     [][]map[string]any
	}
	json.Unmarshal(body, &resp)
	if status != http.StatusOK || resp.ResponseCode != "1000" || len(resp.Response) != 1 || len(resp.Response[0]) != 1 {
		t.Fatalf("query: got HTTP %d %s, want the one payment", status, body)
	}
	item := resp.Response[0][0]
	want := map[string]any{"transactionId": c2b, "trxDate": "2026-10-05T06:41:27Z", "msisdn": float64(708374149),
		"transactiontype": "c2b-buy-goods-debit", "billreference": "", "amount": "250.00"}
	for k, v := range want {
		if item[k] != v {
			t.Errorf("%s: got %v, want %v", k, item[k], v)
		}
	}
	for _, tt := range []struct{ name, start, end string }{
		{"window before", "2026-10-05 08:00:00", "2026-10-05 09:41:26"},
		{"window after", "2026-10-05 09:41:28", "2026-10-05 11:00:00"},
	} {
		if _, body := query(tt.start, tt.end, "0"); !strings.Contains(string(body), `"ResponseCode":"1001"`) {
			t.Errorf("%s: got %s, want 1001", tt.name, body)
		}
	}
	if _, body := query("2026-10-05 09:00:00", "2026-10-05 10:00:00", "1"); !strings.Contains(string(body), `"ResponseCode":"1001"`) {
		t.Errorf("offset past the end: got %s, want 1001", body)
	}
	// 48 hours on, Pull no longer has it.
	clk.Advance(48*time.Hour + time.Minute)
	tok = token(t, base) // the first one has expired
	if _, body := query("2026-10-05 09:00:00", "2026-10-07 10:00:00", "0"); !strings.Contains(string(body), `"ResponseCode":"1001"`) {
		t.Errorf("after 48 hours: got %s, want 1001", body)
	}

	for _, tt := range []struct {
		path, field string
		body        map[string]any
		code, msg   string
	}{
		{pullRegPath, "ShortCode", with(reg, "ShortCode", "12"), "400.001", "Invalid ShortCode"},
		{pullRegPath, "RequestType", with(reg, "RequestType", "Incremental"), "400.002.02", "Bad Request - Invalid RequestType"},
		{pullRegPath, "NominatedNumber", with(reg, "NominatedNumber", "12345"), "400.002.02", "Bad Request - Invalid NominatedNumber"},
		{pullRegPath, "CallBackURL", with(reg, "CallBackURL", "https://example.com/mpesa"), "400.002.02", "Bad Request - Invalid CallBackURL"},
		{pullQryPath, "ShortCode", map[string]any{"ShortCode": "x", "StartDate": "2026-10-05 09:00:00", "EndDate": "2026-10-05 10:00:00"}, "400.001", "Invalid ShortCode"},
		{pullQryPath, "StartDate", map[string]any{"ShortCode": "600000", "StartDate": "yesterday", "EndDate": "2026-10-05 10:00:00"}, "400.002.02", "Bad Request - Invalid StartDate"},
		{pullQryPath, "EndDate", map[string]any{"ShortCode": "600000", "StartDate": "2026-10-05 11:00:00", "EndDate": "2026-10-05 10:00:00"}, "400.002.02", "Bad Request - Invalid EndDate"},
		{pullQryPath, "OffSetValue", map[string]any{"ShortCode": "600000", "StartDate": "2026-10-05 09:00:00", "EndDate": "2026-10-05 10:00:00", "OffSetValue": "-1"}, "400.002.02", "Bad Request - Invalid OffSetValue"},
	} {
		t.Run(tt.path+" "+tt.field, func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+tt.path, tok, tt.body)
			wantError(t, status, body, http.StatusBadRequest, tt.code, tt.msg)
		})
	}
	rc.none(t)
}

// TestTransactionLog: the log holds what M-Pesa completed, with the
// receipts the callbacks and confirmations carried, and nothing else.
func TestTransactionLog(t *testing.T) {
	rc := newReceiver(t, func(path string) (int, string) {
		if path == "/validation" {
			return 200, `{"ResultCode":"C2B00012","ResultDesc":"Rejected"}`
		}
		return 200, `{"ResultCode":0,"ResultDesc":"Success"}`
	})
	sim, base := newSim(t, darajasim.Config{})
	tok := token(t, base)
	receipt := paid(t, base, tok, rc, "254711000009", 15)
	push(t, base, tok, pushRequest(darajasim.PhoneCancelled, rc.URL+"/stk", 5))
	rc.next(t) // the 1032 callback: nothing completed

	register(t, base, tok, "v2", registerRequest("600984", "Completed", rc.URL+"/confirmation", rc.URL+"/validation"))
	_, err := sim.PayC2B(context.Background(), darajasim.C2BPayment{ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: 9, MSISDN: "254708374149", BillRefNumber: "X"})
	if !errors.Is(err, darajasim.ErrRejected) {
		t.Fatalf("PayC2B: got %v, want ErrRejected", err)
	}
	rc.next(t) // the validation

	txs := sim.Transactions()
	if len(txs) != 1 || txs[0].Receipt != receipt || txs[0].Kind != darajasim.KindSTK || txs[0].Amount != 15 ||
		txs[0].MSISDN != "254711000009" || txs[0].BillRef != "INV-42" || txs[0].ShortCode != "174379" {
		t.Errorf("log: got %+v, want only the paid push %s", txs, receipt)
	}
}

// TestWithheldConfirmation: a C2B payment made with NoConfirmation (the
// simulate endpoint's extension, or the magic payer) completes and is
// logged, and neither validation nor confirmation is sent.
func TestWithheldConfirmation(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  map[string]any
	}{
		{"NoConfirmation true", with(simulateRequest("600984", 55), "NoConfirmation", true)},
		{"NoConfirmation \"true\"", with(simulateRequest("600984", 55), "NoConfirmation", "true")},
		{"magic payer", with(simulateRequest("600984", 55), "Msisdn", darajasim.PhoneNoConfirmation)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			sim, base := newSim(t, darajasim.Config{})
			tok := token(t, base)
			register(t, base, tok, "v2", registerRequest("600984", "Completed", rc.URL+"/confirmation", rc.URL+"/validation"))
			status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v2/simulate", tok, with(tt.req, "BillRefNumber", "PULL1"))
			if status != http.StatusOK {
				t.Fatalf("simulate: got HTTP %d %s", status, body)
			}
			wantShape(t, body, "c2b-simulate-response.json")
			sim.Close() // waits for the payment to complete
			rc.none(t)
			txs := sim.Transactions()
			if len(txs) != 1 || txs[0].Kind != darajasim.KindC2B || !txs[0].ConfirmationWithheld || txs[0].Amount != 55 || txs[0].BillRef != "PULL1" {
				t.Errorf("log: got %+v, want the withheld payment", txs)
			}
		})
	}
	t.Run("NoConfirmation not a flag", func(t *testing.T) {
		_, base := newSim(t, darajasim.Config{})
		tok := token(t, base)
		status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v2/simulate", tok, with(simulateRequest("600984", 55), "NoConfirmation", "maybe"))
		wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid NoConfirmation")
	})
	t.Run("SendC2B cannot withhold", func(t *testing.T) {
		_, err := darajasim.SendC2B(context.Background(), nil, "", "http://127.0.0.1:9/c", darajasim.C2BPayment{
			ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: 1, MSISDN: "254708374149", NoConfirmation: true}, time.Now())
		if err == nil {
			t.Error("got no error")
		}
	})
}

// TestSubscriberLock: a push to a phone whose prompt is open is refused as
// Daraja refuses it; the lock ends when the push settles.
func TestSubscriberLock(t *testing.T) {
	t.Run("refused while open", func(t *testing.T) {
		sim, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour})
		tok := token(t, base)
		push(t, base, tok, pushRequest("254711000001", "https://example.com/cb", 10))
		status, body := call(t, http.MethodPost, base+pushPath, tok, pushRequest("254711000001", "https://example.com/cb", 20))
		wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", darajasim.MessageSubscriberLocked)
		push(t, base, tok, pushRequest("254711000002", "https://example.com/cb", 10)) // another phone
		if got := darajasim.RecordedPushes(sim); got != 2 {
			t.Errorf("recorded pushes: got %d, want 2", got)
		}
	})
	t.Run("free once settled", func(t *testing.T) {
		for _, phone := range []string{"254711000003", darajasim.PhoneNoCallback, darajasim.PhoneCancelled} {
			rc := newReceiver(t, nil)
			_, base := newSim(t, darajasim.Config{CallbackDelay: 10 * time.Millisecond})
			tok := token(t, base)
			first := push(t, base, tok, pushRequest(phone, rc.URL+"/cb", 10))
			waitFinal(t, base, tok, first.CheckoutRequestID)
			push(t, base, tok, pushRequest(phone, rc.URL+"/cb", 10))
		}
	})
	t.Run("off", func(t *testing.T) {
		_, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
		tok := token(t, base)
		push(t, base, tok, pushRequest("254711000001", "https://example.com/cb", 10))
		push(t, base, tok, pushRequest("254711000001", "https://example.com/cb", 20))
	})
}

// TestSTKPushContentType: without a JSON Content-Type Daraja reads no
// BusinessShortCode.
func TestSTKPushContentType(t *testing.T) {
	_, base := newSim(t, darajasim.Config{CallbackDelay: time.Hour, NoSubscriberLock: true})
	tok := token(t, base)
	for _, tt := range []struct {
		contentType string
		ok          bool
	}{
		{"", false},
		{"text/plain", false},
		{"application/x-www-form-urlencoded", false},
		{"application/json", true},
		{"application/json; charset=UTF-8", true},
		{"Application/JSON", true},
	} {
		t.Run(tt.contentType, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+pushPath, strings.NewReader(string(mustJSON(t, pushRequest("254711000001", "https://example.com/cb", 10)))))
			req.Header.Set("Authorization", "Bearer "+tok)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env map[string]string
			json.NewDecoder(resp.Body).Decode(&env)
			if tt.ok && resp.StatusCode != http.StatusOK {
				t.Errorf("got HTTP %d %v, want 200", resp.StatusCode, env)
			}
			if !tt.ok && (resp.StatusCode != http.StatusBadRequest || env["errorCode"] != "400.002.02" || env["errorMessage"] != "Bad Request - Invalid BusinessShortCode") {
				t.Errorf("got HTTP %d %v, want 400 400.002.02 Bad Request - Invalid BusinessShortCode", resp.StatusCode, env)
			}
		})
	}
}

// TestPendingAnswerPhones: the magic phones reach the 4999 and the empty
// message pending answers, whatever Config.QueryPendingStyle says, until
// the prompt times out with 1037.
func TestPendingAnswerPhones(t *testing.T) {
	rc := newReceiver(t, nil)
	_, base := newSim(t, darajasim.Config{PromptTimeout: time.Hour})
	tok := token(t, base)
	a := push(t, base, tok, pushRequest(darajasim.PhonePending4999, rc.URL+"/cb", 10))
	status, body := call(t, http.MethodPost, base+queryPath, tok, queryRequest(a.CheckoutRequestID))
	var q queryResponse
	json.Unmarshal(body, &q)
	if status != http.StatusOK || q.ResultCode != "4999" || q.ResultDesc != darajasim.ResultDescStillProcessing || q.CheckoutRequestID != a.CheckoutRequestID {
		t.Errorf("4999 phone: got HTTP %d %s, want 200 with ResultCode 4999", status, body)
	}
	wantShape(t, body, "stk-query-response-success.json")

	b := push(t, base, tok, pushRequest(darajasim.PhonePendingEmpty, rc.URL+"/cb", 10))
	status, body = call(t, http.MethodPost, base+queryPath, tok, queryRequest(b.CheckoutRequestID))
	env := wantError(t, status, body, http.StatusOK, "500.001.1001", "")
	if env.RequestID != b.CheckoutRequestID {
		t.Errorf("empty-message phone: got requestId %q, want the CheckoutRequestID", env.RequestID)
	}
	// The prompt is open: the phone is locked.
	status, body = call(t, http.MethodPost, base+pushPath, tok, pushRequest(darajasim.PhonePending4999, rc.URL+"/cb", 10))
	wantError(t, status, body, http.StatusInternalServerError, "500.001.1001", darajasim.MessageSubscriberLocked)
	rc.none(t)

	if darajasim.ResultDescUnreachable != "DS timeout user cannot be reached." {
		t.Errorf("1037 description: got %q, want it with its final period", darajasim.ResultDescUnreachable)
	}
}
