package daraja_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
	_ "time/tzdata" // America/Los_Angeles for the time.Local test

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

const sandboxPasskey lipa.Secret = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

func TestPasswordOfficialSample(t *testing.T) {
	var sample struct{ Password, Timestamp string }
	if err := json.Unmarshal(fixture(t, "stk-push-request.json"), &sample); err != nil {
		t.Fatal(err)
	}
	if got := daraja.Password("174379", sandboxPasskey, "20210628092408"); got != sample.Password {
		t.Errorf("Password: got %q, want %q", got, sample.Password)
	}
}

func TestTimestamp(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"UTC evening is next day in Nairobi", utc("2024-01-01T22:30:00Z"), "20240102013000"},
		{"same instant in Los Angeles", utc("2024-01-01T22:30:00Z").In(la), "20240102013000"},
		{"single-digit hour minute second", utc("2020-07-13T06:05:03Z"), "20200713090503"},
		{"new year midnight", utc("2023-12-31T21:00:00Z"), "20240101000000"},
		{"last second of the year", utc("2024-12-31T20:59:59Z"), "20241231235959"},
		{"official sample", utc("2021-06-28T06:24:08Z"), "20210628092408"},
		{"offset input", utc("2024-03-10T02:30:00-08:00"), "20240310133000"},
	}
	run := func(t *testing.T) {
		for _, tt := range tests {
			if got := daraja.Timestamp(tt.in); got != tt.want {
				t.Errorf("%s: Timestamp(%v): got %q, want %q", tt.name, tt.in, got, tt.want)
			}
		}
		// Every month, single-digit day (docs/daraja.md "M-Pesa Express").
		for m := time.January; m <= time.December; m++ {
			in := time.Date(2025, m, 5, 1, 2, 3, 0, time.UTC) // 04:02:03 EAT
			want := fmt.Sprintf("2025%02d05040203", int(m))
			if got := daraja.Timestamp(in); got != want {
				t.Errorf("Timestamp(%v): got %q, want %q", in, got, want)
			}
		}
	}
	t.Run("Local=UTC", func(t *testing.T) {
		setLocal(t, time.UTC)
		run(t)
	})
	t.Run("Local=America/Los_Angeles", func(t *testing.T) {
		setLocal(t, la)
		run(t)
	})
}

// setLocal sets time.Local for the test; tests that call it must not run in
// parallel.
func setLocal(t *testing.T, loc *time.Location) {
	t.Helper()
	old := time.Local
	time.Local = loc
	t.Cleanup(func() { time.Local = old })
}

func TestSTKPushWireBody(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Time
		req     func() daraja.STKPushRequest
		fixture string
	}{
		{
			name:    "paybill official sample",
			now:     time.Date(2021, 6, 28, 6, 24, 8, 0, time.UTC),
			req:     pushRequest,
			fixture: "stk-push-request.json",
		},
		{
			name: "till",
			now:  time.Date(2024, 1, 15, 7, 30, 45, 0, time.UTC),
			req: func() daraja.STKPushRequest {
				r := pushRequest()
				r.TransactionType = daraja.BuyGoodsOnline
				r.PartyB = "600000"
				r.Amount = 100
				r.CallBackURL = "https://example.com/payments/stk/result"
				r.AccountReference = "INV-0001"
				r.TransactionDesc = "Order 0001"
				return r
			},
			fixture: "stk-push-request-buygoods.json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan map[string]any, 1)
			f := newFake(t, map[string]http.HandlerFunc{
				pushRoute: func(w http.ResponseWriter, r *http.Request) {
					if h := r.Header.Get("Authorization"); h != "Bearer "+fixtureToken {
						t.Errorf("Authorization: got %q, want %q", h, "Bearer "+fixtureToken)
					}
					if ct := r.Header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type: got %q, want application/json", ct)
					}
					var body map[string]any
					if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
						t.Errorf("decode body: %v", err)
					}
					got <- body
					serve(200, fixture(t, "stk-push-response-ok.json"))(w, r)
				},
			})
			c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Now = func() time.Time { return tt.now } })
			if _, err := c.STKPush(context.Background(), tt.req()); err != nil {
				t.Fatalf("STKPush: %v", err)
			}
			// The fixture mixes numbers and strings; the client sends
			// every value as a string (docs/daraja.md "Conventions").
			var want map[string]any
			if err := json.Unmarshal(fixture(t, tt.fixture), &want); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				want[k] = fmt.Sprint(v)
			}
			if diff := cmp.Diff(want, <-got); diff != "" {
				t.Errorf("wire body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSTKPushResponses(t *testing.T) {
	tests := []struct {
		fixture string
		want    daraja.STKPushResponse
	}{
		{"stk-push-response-ok.json", daraja.STKPushResponse{
			MerchantRequestID:   "2654-4b64-97ff-b827b542881d3130",
			CheckoutRequestID:   "ws_CO_100720240915261708374149",
			ResponseCode:        "0",
			ResponseDescription: "Success. Request accepted for processing",
			CustomerMessage:     "Success. Request accepted for processing",
		}},
		{"stk-push-response-ok-legacy-ids.json", daraja.STKPushResponse{
			MerchantRequestID:   "16658-1455367-1",
			CheckoutRequestID:   "ws_CO_DMZ_435322918_09042019180550656",
			ResponseCode:        "0",
			ResponseDescription: "Success. Request accepted for processing",
			CustomerMessage:     "Success. Request accepted for processing",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			f := newFake(t, map[string]http.HandlerFunc{pushRoute: serve(200, body)})
			got, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
			if err != nil {
				t.Fatalf("STKPush: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got, cmpopts.IgnoreFields(daraja.STKPushResponse{}, "Raw")); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if string(got.Raw) != string(body) {
				t.Errorf("Raw: got %q, want the body as sent", got.Raw)
			}
		})
	}
}

// apiErrorCase is one Daraja error answer and how it must be classified.
type apiErrorCase struct {
	fixture string
	status  int
	reason  daraja.Reason
	class   daraja.Class
	field   string
}

func TestSTKPushAPIErrors(t *testing.T) {
	tests := []apiErrorCase{
		{"stk-push-error-invalid-phone.json", 400, daraja.ReasonInvalidField, daraja.ClassFinal, "PhoneNumber"},
		{"stk-push-error-invalid-shortcode.json", 400, daraja.ReasonInvalidField, daraja.ClassConfiguration, "BusinessShortCode"},
		{"stk-push-error-invalid-callbackurl.json", 400, daraja.ReasonInvalidField, daraja.ClassConfiguration, "CallBackURL"},
		{"stk-push-error-merchant-does-not-exist.json", 500, daraja.ReasonMerchantNotFound, daraja.ClassConfiguration, ""},
		{"stk-push-error-subscriber-locked.json", 500, daraja.ReasonSubscriberBusy, daraja.ClassRetryable, ""},
		{"stk-push-error-spike-arrest.json", 500, daraja.ReasonRateLimited, daraja.ClassRetryable, ""},
		{"stk-push-error-wrong-credentials.json", 500, daraja.ReasonWrongCredentials, daraja.ClassConfiguration, ""},
		{"stk-push-error-invalid-access-token.json", 404, daraja.ReasonInvalidToken, daraja.ClassConfiguration, ""},
		{"error-invalid-access-token-401.json", 401, daraja.ReasonInvalidToken, daraja.ClassConfiguration, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			f := newFake(t, map[string]http.HandlerFunc{pushRoute: serve(tt.status, body)})
			_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
			checkAPIError(t, err, "stk push", tt, body)
		})
	}
}

// checkAPIError checks that err is the *APIError for tt's fixture body.
func checkAPIError(t *testing.T, err error, op string, tt apiErrorCase, body []byte) {
	t.Helper()
	var env struct{ RequestID, ErrorCode, ErrorMessage string }
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	var got *daraja.APIError
	if !errors.As(err, &got) {
		t.Fatalf("error: got %T %v, want *daraja.APIError", err, err)
	}
	want := &daraja.APIError{
		Op: op, HTTPStatus: tt.status,
		RequestID: env.RequestID, ErrorCode: env.ErrorCode, ErrorMessage: env.ErrorMessage,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if r := got.Reason(); r != tt.reason {
		t.Errorf("Reason: got %q, want %q", r, tt.reason)
	}
	if c := got.Class(); c != tt.class {
		t.Errorf("Class: got %q, want %q", c, tt.class)
	}
	if f := got.Field(); f != tt.field {
		t.Errorf("Field: got %q, want %q", f, tt.field)
	}
}

func TestAPIErrorMessage(t *testing.T) {
	body := fixture(t, "stk-push-error-subscriber-locked.json")
	f := newFake(t, map[string]http.HandlerFunc{pushRoute: serve(500, body)})
	_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
	want := "daraja stk push: 500.001.1001 Unable to lock subscriber, a transaction is already in process for the current subscriber (HTTP 500)"
	if err == nil || err.Error() != want {
		t.Errorf("error: got %v, want %q", err, want)
	}
}

func TestSTKPushRejectedWith200(t *testing.T) {
	body := []byte(`{"MerchantRequestID":"1-2-3","CheckoutRequestID":"","ResponseCode":"1","ResponseDescription":"Rejected","CustomerMessage":"Rejected"}`)
	f := newFake(t, map[string]http.HandlerFunc{pushRoute: serve(200, body)})
	_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
	var got *daraja.APIError
	if !errors.As(err, &got) {
		t.Fatalf("error: got %T %v, want *daraja.APIError", err, err)
	}
	want := &daraja.APIError{Op: "stk push", HTTPStatus: 200, ErrorCode: "1", ErrorMessage: "Rejected"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if c := got.Class(); c != daraja.ClassFinal {
		t.Errorf("Class: got %q, want %q", c, daraja.ClassFinal)
	}
}

func TestSTKQueryWireBody(t *testing.T) {
	got := make(chan map[string]any, 1)
	f := newFake(t, map[string]http.HandlerFunc{
		queryRoute: func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Errorf("decode body: %v", err)
			}
			got <- body
			serve(200, fixture(t, "stk-query-response-success.json"))(w, r)
		},
	})
	now := time.Date(2016, 2, 16, 13, 56, 27, 0, time.UTC) // 16:56:27 EAT
	c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Now = func() time.Time { return now } })
	if _, err := c.STKQuery(context.Background(), "174379", sandboxPasskey, "ws_CO_260520211133524545"); err != nil {
		t.Fatalf("STKQuery: %v", err)
	}
	var want map[string]any
	if err := json.Unmarshal(fixture(t, "stk-query-request.json"), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, <-got); diff != "" {
		t.Errorf("wire body (-want +got):\n%s", diff)
	}
}

func TestSTKQueryResponses(t *testing.T) {
	tests := []struct {
		fixture string
		want    daraja.STKQueryResponse
		pending bool
	}{
		{"stk-query-response-success.json", daraja.STKQueryResponse{
			ResponseCode: "0", ResponseDescription: "The service request has been accepted successfully",
			MerchantRequestID: "22205-34066-1", CheckoutRequestID: "ws_CO_13012021093521236557",
			ResultCode: "0", ResultDesc: "The service request is processed successfully.",
		}, false},
		{"stk-query-response-cancelled-legacy-typo.json", daraja.STKQueryResponse{
			ResponseCode: "0", ResponseDescription: "The service request has been accepted successsfully",
			MerchantRequestID: "28415-165347-1", CheckoutRequestID: "ws_CO_DMZ_297481201_09042019174418021",
			ResultCode: "1032", ResultDesc: "[STK_CB - ]Request cancelled by user",
		}, false},
		{"stk-query-response-timeout-1037.json", daraja.STKQueryResponse{
			ResponseCode: "0", ResponseDescription: "The service request has been accepted successfully",
			MerchantRequestID: "ac7b-470b-8df7-23ab3cef38271071873", CheckoutRequestID: "ws_CO_30092026101512384708374149",
			ResultCode: "1037", ResultDesc: "No response from user.",
		}, false},
		{"stk-query-response-still-processing-4999.json", daraja.STKQueryResponse{
			ResultCode: "4999", ResultDesc: "The transaction is still under processing",
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			f := newFake(t, map[string]http.HandlerFunc{queryRoute: serve(200, body)})
			got, err := newClient(t, f.URL).STKQuery(context.Background(), "174379", sandboxPasskey, "ws_CO_1")
			if err != nil {
				t.Fatalf("STKQuery: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got, cmpopts.IgnoreFields(daraja.STKQueryResponse{}, "Raw")); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if got.Pending() != tt.pending {
				t.Errorf("Pending: got %v, want %v", got.Pending(), tt.pending)
			}
			if string(got.Raw) != string(body) {
				t.Errorf("Raw: got %q, want the body as sent", got.Raw)
			}
		})
	}
}

func TestSTKQueryNumericResultCode(t *testing.T) {
	body := []byte(`{"ResponseCode":0,"ResultCode":1032,"ResultDesc":"Request cancelled by user"}`)
	f := newFake(t, map[string]http.HandlerFunc{queryRoute: serve(200, body)})
	got, err := newClient(t, f.URL).STKQuery(context.Background(), "174379", sandboxPasskey, "ws_CO_1")
	if err != nil {
		t.Fatalf("STKQuery: %v", err)
	}
	if got.ResultCode != "1032" || got.ResponseCode != "0" {
		t.Errorf("codes: got ResponseCode %q ResultCode %q, want \"0\" and \"1032\"", got.ResponseCode, got.ResultCode)
	}
}

func TestSTKQueryAPIErrors(t *testing.T) {
	tests := []struct {
		apiErrorCase
		body []byte // inline body instead of the fixture
	}{
		{apiErrorCase: apiErrorCase{"stk-query-error-being-processed.json", 500, daraja.ReasonBeingProcessed, daraja.ClassRetryable, ""}},
		{apiErrorCase: apiErrorCase{"stk-query-error-transaction-not-exist.json", 500, daraja.ReasonTransactionNotFound, daraja.ClassRetryable, ""}},
		{ // docs/daraja.md "STK query", shape 3: HTTP 200, empty message.
			apiErrorCase: apiErrorCase{"empty message, HTTP 200", 200, daraja.ReasonBeingProcessed, daraja.ClassRetryable, ""},
			body:         []byte(`{"requestId":"ws_CO_1","errorCode":"500.001.1001","errorMessage":""}`),
		},
		{ // A wrong Timestamp is our bug (docs/daraja.md "M-Pesa Express").
			apiErrorCase: apiErrorCase{"invalid timestamp", 400, daraja.ReasonInvalidField, daraja.ClassConfiguration, "Timestamp"},
			body:         []byte(`{"requestId":"1","errorCode":"400.002.02","errorMessage":"Bad Request - Invalid Timestamp"}`),
		},
		{ // "Wrong credentials" on query (docs/daraja.md "Errors").
			apiErrorCase: apiErrorCase{"merchant validate", 500, daraja.ReasonWrongCredentials, daraja.ClassConfiguration, ""},
			body:         []byte(`{"requestId":"10000-1000013-2","errorCode":"500.001.1001","errorMessage":"[MerchantValidate] - Wrong credentials"}`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = fixture(t, tt.fixture)
			}
			f := newFake(t, map[string]http.HandlerFunc{queryRoute: serve(tt.status, body)})
			_, err := newClient(t, f.URL).STKQuery(context.Background(), "174379", sandboxPasskey, "ws_CO_1")
			checkAPIError(t, err, "stk query", tt.apiErrorCase, body)
		})
	}
}
