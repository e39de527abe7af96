package darajasim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa/internal/darajasim"
)

func registerRequest(shortCode, responseType, confirmationURL, validationURL string) map[string]any {
	return map[string]any{
		"ShortCode":       shortCode,
		"ResponseType":    responseType,
		"ConfirmationURL": confirmationURL,
		"ValidationURL":   validationURL,
	}
}

func simulateRequest(shortCode string, amount any) map[string]any {
	return map[string]any{
		"ShortCode":     shortCode,
		"CommandID":     "CustomerPayBillOnline",
		"Amount":        amount,
		"Msisdn":        254708374149,
		"BillRefNumber": "INV-42",
	}
}

// register registers URLs for a shortcode and fails unless Daraja's success
// answer comes back.
func register(t *testing.T, base, tok string, version string, req map[string]any) {
	t.Helper()
	status, body := call(t, http.MethodPost, base+"/mpesa/c2b/"+version+"/registerurl", tok, req)
	if status != http.StatusOK {
		t.Fatalf("register: got HTTP %d %s, want 200", status, body)
	}
	wantShape(t, body, "c2b-register-url-response.json")
	var ack map[string]string
	json.Unmarshal(body, &ack)
	if ack["ResponseCode"] != "0" || ack["ResponseDescription"] != "Success" || ack["OriginatorCoversationID"] == "" {
		t.Errorf("got %s, want ResponseCode 0, Success and an OriginatorCoversationID", body)
	}
}

type c2bNotification struct {
	TransactionType   string
	TransID           string
	TransTime         string
	TransAmount       string
	BusinessShortCode string
	BillRefNumber     string
	InvoiceNumber     string
	OrgAccountBalance string
	ThirdPartyTransID string
	MSISDN            string
	FirstName         string
	MiddleName        string
	LastName          string
}

// wantNotification decodes a C2B notification, checks its TransID and
// TransTime formats, and compares the rest with want (whose TransID and
// TransTime are taken from the body when empty).
func wantNotification(t *testing.T, d delivery, path string, want c2bNotification) c2bNotification {
	t.Helper()
	if d.Path != path {
		t.Fatalf("got a request to %s, want %s", d.Path, path)
	}
	fixtureName := "c2b-confirmation-v2-masked.json"
	if path == "/validation" {
		fixtureName = "c2b-validation-request.json"
	}
	wantShape(t, d.Body, fixtureName)
	var got c2bNotification
	if err := json.Unmarshal(d.Body, &got); err != nil {
		t.Fatal(err)
	}
	if !receiptRE.MatchString(got.TransID) {
		t.Errorf("got TransID %q, want the receipt format of docs/daraja.md, M-Pesa Express", got.TransID)
	}
	if _, err := time.ParseInLocation("20060102150405", got.TransTime, eat); err != nil {
		t.Errorf("got TransTime %q, want yyyyMMddHHmmss", got.TransTime)
	}
	if want.TransID == "" {
		want.TransID = got.TransID
	}
	if want.TransTime == "" {
		want.TransTime = got.TransTime
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s body mismatch (-want +got):\n%s", path, diff)
	}
	return got
}

func TestC2BRegister(t *testing.T) {
	_, base := newSim(t, darajasim.Config{})
	tok := token(t, base)
	const c, v = "https://example.com/c2b/confirm", "https://example.com/c2b/validate"

	for _, tt := range []struct {
		name, version string
		req           map[string]any
	}{
		{"v1 Completed", "v1", registerRequest("600984", "Completed", c, v)},
		{"v2 Cancelled", "v2", registerRequest("600984", "Cancelled", c, v)},
		{"again", "v2", registerRequest("600984", "Completed", c, v)},
		{"numeric shortcode", "v2", with(registerRequest("", "Completed", c, v), "ShortCode", 600985)},
		{"no ValidationURL", "v2", with(registerRequest("600986", "Completed", c, ""), "ValidationURL", deleteKey)},
		{"fixture", "v2", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if req == nil {
				json.Unmarshal(fixture(t, "c2b-register-url-request.json"), &req)
			}
			register(t, base, tok, tt.version, req)
		})
	}

	words := []struct{ in, word string }{
		{"mpesa", "MPESA"}, {"M-Pesa", "M-PESA"}, {"SAFARICOM", "SAFARICOM"}, {"exec", "EXEC"},
		{"run.Exe", "EXE"}, {"Cmd", "CMD"}, {"sql", "SQL"}, {"query", "QUERY"},
	}
	for _, w := range words {
		for _, field := range []string{"ConfirmationURL", "ValidationURL"} {
			t.Run(field+" "+w.in, func(t *testing.T) {
				req := with(registerRequest("600984", "Completed", c, v), field, "https://example.com/"+w.in+"/hook")
				status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v2/registerurl", tok, req)
				wantError(t, status, body, http.StatusBadRequest, "400.003.02", "Bad Request - Invalid "+field+" - URL has the word "+w.word)
			})
		}
	}

	for _, tt := range []struct {
		field string
		value any
	}{
		{"ShortCode", "60"},
		{"ShortCode", deleteKey},
		{"ResponseType", "completed"},
		{"ResponseType", "Complete"},
		{"ResponseType", "Canceled"}, // only Daraja's spelling, "Cancelled"
		{"ResponseType", deleteKey},
		{"ConfirmationURL", "example.com/c"},
		{"ConfirmationURL", deleteKey},
		{"ValidationURL", "ftp://example.com/v"},
		{"ValidationURL", 12},
	} {
		t.Run("invalid "+tt.field, func(t *testing.T) {
			req := with(registerRequest("600984", "Completed", c, v), tt.field, tt.value)
			status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v1/registerurl", tok, req)
			wantError(t, status, body, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid "+tt.field)
		})
	}
	t.Run("malformed", func(t *testing.T) {
		status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v1/registerurl", tok, "nope")
		wantError(t, status, body, http.StatusBadRequest, "400.002.05", "Invalid Request Payload")
	})
}

func TestC2BSimulate(t *testing.T) {
	tests := []struct {
		name, version, command string
		wantType, wantMSISDN   string
	}{
		{"v2 paybill", "v2", "CustomerPayBillOnline", "Pay Bill", "2547 ***** 149"},
		{"v1 paybill", "v1", "CustomerPayBillOnline", "Pay Bill", "254708374149"},
		{"v2 buy goods", "v2", "CustomerBuyGoodsOnline", "Buy Goods", "2547 ***** 149"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(path string) (int, string) {
				if path == "/validation" {
					return 200, `{"ResultCode":"0","ResultDesc":"Accepted","ThirdPartyTransID":"tp-1"}`
				}
				return 200, `{"ResultCode":0,"ResultDesc":"Success"}`
			})
			_, base := newSim(t, darajasim.Config{})
			tok := token(t, base)
			register(t, base, tok, tt.version, registerRequest("600984", "Completed", rc.URL+"/confirmation", rc.URL+"/validation"))

			for _, wantBalance := range []string{"100.00", "200.00"} {
				req := with(simulateRequest("600984", 100), "CommandID", tt.command)
				status, body := call(t, http.MethodPost, base+"/mpesa/c2b/"+tt.version+"/simulate", tok, req)
				if status != http.StatusOK {
					t.Fatalf("simulate: got HTTP %d %s, want 200", status, body)
				}
				wantShape(t, body, "c2b-simulate-response.json")
				var ack map[string]string
				json.Unmarshal(body, &ack)
				if ack["ResponseCode"] != "0" || ack["ResponseDescription"] != "Accept the service request successfully." {
					t.Errorf("got %s, want ResponseCode 0 and the acceptance text", body)
				}
				want := c2bNotification{
					TransactionType:   tt.wantType,
					TransAmount:       "100.00",
					BusinessShortCode: "600984",
					BillRefNumber:     "INV-42",
					MSISDN:            tt.wantMSISDN,
					FirstName:         "John",
				}
				v := wantNotification(t, rc.next(t), "/validation", want)
				want.TransID, want.TransTime = v.TransID, v.TransTime
				want.OrgAccountBalance, want.ThirdPartyTransID = wantBalance, "tp-1"
				wantNotification(t, rc.next(t), "/confirmation", want)
			}
		})
	}
}

func TestC2BSimulateRefused(t *testing.T) {
	_, base := newSim(t, darajasim.Config{})
	tok := token(t, base)
	register(t, base, tok, "v2", registerRequest("600984", "Completed", "https://example.com/c", ""))
	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"not registered", simulateRequest("600111", 1), 500, "500.003.1001", "No URLs are registered for ShortCode 600111"},
		{"bad shortcode", simulateRequest("6", 1), 400, "400.002.02", "Bad Request - Invalid ShortCode"},
		{"bad command", with(simulateRequest("600984", 1), "CommandID", "BusinessPayment"), 400, "400.002.02", "Bad Request - Invalid CommandID"},
		{"zero amount", simulateRequest("600984", 0), 400, "400.002.02", "Bad Request - Invalid Amount"},
		{"fractional amount", simulateRequest("600984", "1.5"), 400, "400.002.02", "Bad Request - Invalid Amount"},
		{"bad msisdn", with(simulateRequest("600984", 1), "Msisdn", "0708374149"), 400, "400.002.02", "Bad Request - Invalid Msisdn"},
		{"bad bill ref", with(simulateRequest("600984", 1), "BillRefNumber", []int{1}), 400, "400.002.02", "Bad Request - Invalid BillRefNumber"},
		{"malformed", "{]", 400, "400.002.05", "Invalid Request Payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v2/simulate", tok, tt.body)
			wantError(t, status, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
		})
	}
	t.Run("fixture before registration", func(t *testing.T) {
		_, fresh := newSim(t, darajasim.Config{})
		status, body := call(t, http.MethodPost, fresh+"/mpesa/c2b/v1/simulate", token(t, fresh), fixture(t, "c2b-simulate-request.json"))
		wantError(t, status, body, http.StatusInternalServerError, "500.003.1001", "No URLs are registered for ShortCode 600984")
	})
}

// rejecting answers validation with C2B00012 and confirmations with success.
func rejecting(path string) (int, string) {
	if path == "/validation" {
		return 200, `{"ResultCode": "C2B00012", "ResultDesc": "Rejected"}` // c2b-validation-response-reject.json
	}
	return 200, `{"ResultCode":0,"ResultDesc":"Success"}`
}

func TestC2BValidationRejected(t *testing.T) {
	t.Run("simulate endpoint", func(t *testing.T) {
		rc := newReceiver(t, rejecting)
		sim, base := newSim(t, darajasim.Config{})
		tok := token(t, base)
		register(t, base, tok, "v2", registerRequest("600984", "Completed", rc.URL+"/confirmation", rc.URL+"/validation"))
		status, body := call(t, http.MethodPost, base+"/mpesa/c2b/v2/simulate", tok, simulateRequest("600984", 5))
		if status != http.StatusOK {
			t.Fatalf("got HTTP %d %s, want 200", status, body)
		}
		if d := rc.next(t); d.Path != "/validation" {
			t.Fatalf("got a request to %s, want /validation", d.Path)
		}
		sim.Close() // waits for the background delivery to finish
		rc.none(t)
	})
	t.Run("PayC2B", func(t *testing.T) {
		rc := newReceiver(t, rejecting)
		sim, base := newSim(t, darajasim.Config{})
		register(t, base, token(t, base), "v2", registerRequest("600984", "Completed", rc.URL+"/confirmation", rc.URL+"/validation"))
		id, err := sim.PayC2B(context.Background(), payment())
		if !errors.Is(err, darajasim.ErrRejected) || !strings.Contains(err.Error(), "C2B00012") {
			t.Errorf("got error %v, want ErrRejected naming C2B00012", err)
		}
		if d := rc.next(t); d.Path != "/validation" || !strings.Contains(string(d.Body), id) || id == "" {
			t.Errorf("got %s %s for TransID %q, want the validation carrying it", d.Path, d.Body, id)
		}
		rc.none(t)
	})
}

func payment() darajasim.C2BPayment {
	return darajasim.C2BPayment{ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: 100, MSISDN: "254708374149", BillRefNumber: "INV-42"}
}

func TestPayC2B(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connections to deadURL are refused: validation never answers

	failValidation := func(path string) (int, string) {
		if path == "/validation" {
			return 500, "oops"
		}
		return 200, `{"ResultCode":0,"ResultDesc":"Success"}`
	}
	tests := []struct {
		name         string
		responseType string
		validation   func(rc *receiver) string
		validReply   func(path string) (int, string)
		wantErr      error
		wantPaths    []string
	}{
		{"accepted", "Completed", func(rc *receiver) string { return rc.URL + "/validation" }, nil, nil, []string{"/validation", "/confirmation"}},
		{"no validation url", "Cancelled", func(*receiver) string { return "" }, nil, nil, []string{"/confirmation"}},
		{"unreachable, Completed", "Completed", func(*receiver) string { return deadURL + "/validation" }, nil, nil, []string{"/confirmation"}},
		{"unreachable, Cancelled", "Cancelled", func(*receiver) string { return deadURL + "/validation" }, nil, darajasim.ErrCancelled, nil},
		{"validation 500, Cancelled", "Cancelled", func(rc *receiver) string { return rc.URL + "/validation" },
			failValidation, darajasim.ErrCancelled, []string{"/validation"}},
		{"validation 500, Completed", "Completed", func(rc *receiver) string { return rc.URL + "/validation" },
			failValidation, nil, []string{"/validation", "/confirmation"}},
		{"rejected", "Completed", func(rc *receiver) string { return rc.URL + "/validation" }, rejecting, darajasim.ErrRejected, []string{"/validation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.validReply)
			sim, base := newSim(t, darajasim.Config{})
			req := registerRequest("600984", tt.responseType, rc.URL+"/confirmation", tt.validation(rc))
			register(t, base, token(t, base), "v2", req)
			id, err := sim.PayC2B(context.Background(), payment())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
			if !receiptRE.MatchString(id) {
				t.Errorf("got TransID %q, want a receipt", id)
			}
			for _, p := range tt.wantPaths {
				if d := rc.next(t); d.Path != p {
					t.Errorf("got a request to %s, want %s", d.Path, p)
				}
			}
			rc.none(t)
		})
	}

	t.Run("invalid payments", func(t *testing.T) {
		sim, _ := newSim(t, darajasim.Config{})
		if _, err := sim.PayC2B(context.Background(), payment()); !errors.Is(err, darajasim.ErrNotRegistered) {
			t.Errorf("got error %v, want ErrNotRegistered", err)
		}
		for _, p := range []darajasim.C2BPayment{
			{ShortCode: "60", CommandID: darajasim.CommandPayBill, Amount: 1, MSISDN: "254708374149"},
			{ShortCode: "600984", CommandID: "x", Amount: 1, MSISDN: "254708374149"},
			{ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: 0, MSISDN: "254708374149"},
			{ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: darajasim.MaxAmount + 1, MSISDN: "254708374149"},
			{ShortCode: "600984", CommandID: darajasim.CommandPayBill, Amount: 1, MSISDN: "0708374149"},
		} {
			if id, err := sim.PayC2B(context.Background(), p); err == nil || id != "" {
				t.Errorf("PayC2B(%+v): got %q, %v; want an error and no TransID", p, id, err)
			}
		}
	})
}

func TestSendC2B(t *testing.T) {
	now := time.Date(2023, 11, 21, 9, 13, 25, 0, time.UTC) // 12:13:25 EAT
	want := c2bNotification{
		TransactionType:   "Pay Bill",
		TransTime:         "20231121121325",
		TransAmount:       "100.00",
		BusinessShortCode: "600984",
		BillRefNumber:     "INV-42",
		MSISDN:            "2547 ***** 149",
		FirstName:         "John",
	}

	t.Run("validation then confirmation", func(t *testing.T) {
		rc := newReceiver(t, nil)
		id, err := darajasim.SendC2B(context.Background(), nil, rc.URL+"/validation", rc.URL+"/confirmation", payment(), now)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, "RKL") {
			t.Errorf("got TransID %q, want one starting RKL (2023-11-21)", id)
		}
		w := want
		w.TransID = id
		wantNotification(t, rc.next(t), "/validation", w)
		wantNotification(t, rc.next(t), "/confirmation", w)
		rc.none(t)
	})
	t.Run("confirmation only", func(t *testing.T) {
		rc := newReceiver(t, nil)
		id, err := darajasim.SendC2B(context.Background(), http.DefaultClient, "", rc.URL+"/confirmation", payment(), now)
		if err != nil {
			t.Fatal(err)
		}
		w := want
		w.TransID = id
		wantNotification(t, rc.next(t), "/confirmation", w)
		rc.none(t)
	})
	t.Run("rejected", func(t *testing.T) {
		rc := newReceiver(t, rejecting)
		_, err := darajasim.SendC2B(context.Background(), nil, rc.URL+"/validation", rc.URL+"/confirmation", payment(), now)
		if !errors.Is(err, darajasim.ErrRejected) {
			t.Errorf("got error %v, want ErrRejected", err)
		}
		rc.next(t)
		rc.none(t)
	})
	t.Run("confirmation refused", func(t *testing.T) {
		rc := newReceiver(t, func(string) (int, string) { return 503, "" })
		if _, err := darajasim.SendC2B(context.Background(), nil, "", rc.URL+"/confirmation", payment(), now); err == nil {
			t.Error("got no error for a confirmation answered 503, want one")
		}
	})
	t.Run("invalid payment", func(t *testing.T) {
		p := payment()
		p.Amount = -5
		if id, err := darajasim.SendC2B(context.Background(), nil, "", "http://127.0.0.1:9/c", p, now); err == nil || id != "" {
			t.Errorf("got %q, %v; want an error and no TransID", id, err)
		}
	})
}
