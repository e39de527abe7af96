package daraja_test

import (
	"testing"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestAPIErrorClassification covers the table's rows that the HTTP tests do
// not reach, messages as Daraja has sent them (docs/daraja.md "Errors", "STK query", "C2B").
func TestAPIErrorClassification(t *testing.T) {
	tests := []struct {
		op, code, msg string
		status        int
		reason        daraja.Reason
		class         daraja.Class
		field         string
	}{
		{"stk push", "500.001.1001", "Wrong credentials", 500, daraja.ReasonWrongCredentials, daraja.ClassConfiguration, ""},
		{"stk push", "500.001.1001", "[MerchantValidate] - Wrong credentials", 500, daraja.ReasonWrongCredentials, daraja.ClassConfiguration, ""},
		{"stk push", "500.001.1001", "Merchant does not exist.", 500, daraja.ReasonMerchantNotFound, daraja.ClassConfiguration, ""},
		{"stk query", "500.001.1001", "The transaction does not Exist", 500, daraja.ReasonTransactionNotFound, daraja.ClassRetryable, ""},
		{"stk query", "500.001.1001", "", 500, daraja.ReasonBeingProcessed, daraja.ClassRetryable, ""},
		{"stk query", "500.001.1001", "Something new", 500, daraja.ReasonBeingProcessed, daraja.ClassRetryable, ""},
		{"stk push", "500.001.1001", "", 500, daraja.ReasonUnknown, daraja.ClassRetryable, ""},
		{"stk push", "500.001.1001", "Unable to lock subscriber, a transaction is already in process for the current subscriber", 500, daraja.ReasonSubscriberBusy, daraja.ClassRetryable, ""},
		{"c2b register", "400.003.01", "Invalid Access Token", 400, daraja.ReasonInvalidToken, daraja.ClassConfiguration, ""},
		{"c2b register", "401.003.01", "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found", 401, daraja.ReasonNoAPIProduct, daraja.ClassConfiguration, ""},
		{"stk push", "400.002.02", "Bad Request - Invalid Amount", 400, daraja.ReasonInvalidField, daraja.ClassFinal, "Amount"},
		{"stk push", "400.002.02", "Bad Request - Invalid Remarks", 400, daraja.ReasonInvalidField, daraja.ClassFinal, "Remarks"},
		{"stk push", "400.002.02", "Bad Request - Invalid Password", 400, daraja.ReasonInvalidField, daraja.ClassConfiguration, "Password"},
		{"stk push", "400.002.02", "", 400, daraja.ReasonInvalidField, daraja.ClassFinal, ""},
		{"c2b register", "400.003.02", "Bad Request", 400, daraja.ReasonBadRequest, daraja.ClassFinal, ""},
		{"stk push", "400.002.05", "Invalid Request Payload", 400, daraja.ReasonBadRequest, daraja.ClassFinal, ""},
		{"stk push", "404.001.01", "Resource not found", 404, daraja.ReasonWrongEndpoint, daraja.ClassConfiguration, ""},
		{"stk push", "500.003.02", "System is busy. Please try again in few minutes.", 500, daraja.ReasonRateLimited, daraja.ClassRetryable, ""},
		{"stk push", "500.003.03", "Error Occurred: Quota Violation", 500, daraja.ReasonRateLimited, daraja.ClassRetryable, ""},
		{"c2b register", "500.003.1001", "Duplicate notification info, SP ID is 107031", 500, daraja.ReasonAlreadyRegistered, daraja.ClassConfiguration, ""},
		{"c2b register", "500.003.1001", "Internal Server Error", 500, daraja.ReasonUnknown, daraja.ClassRetryable, ""},
		{"stk push", "00.002.1001", "Service is currently under maintenance. Please try again later", 500, daraja.ReasonMaintenance, daraja.ClassRetryable, ""},
		{"stk push", "999.999.99", "Something new", 400, daraja.ReasonUnknown, daraja.ClassFinal, ""},
		{"stk push", "999.999.99", "Something new", 429, daraja.ReasonUnknown, daraja.ClassRetryable, ""},
	}
	for _, tt := range tests {
		e := &daraja.APIError{Op: tt.op, HTTPStatus: tt.status, ErrorCode: tt.code, ErrorMessage: tt.msg}
		if got := e.Reason(); got != tt.reason {
			t.Errorf("%s %s %q: Reason got %q, want %q", tt.op, tt.code, tt.msg, got, tt.reason)
		}
		if got := e.Class(); got != tt.class {
			t.Errorf("%s %s %q: Class got %q, want %q", tt.op, tt.code, tt.msg, got, tt.class)
		}
		if got := e.Field(); got != tt.field {
			t.Errorf("%s %s %q: Field got %q, want %q", tt.op, tt.code, tt.msg, got, tt.field)
		}
	}
}

func TestAPIErrorString(t *testing.T) {
	tests := []struct {
		e    daraja.APIError
		want string
	}{
		{daraja.APIError{Op: "stk query", HTTPStatus: 200, ErrorCode: "500.001.1001"}, "daraja stk query: 500.001.1001 (HTTP 200)"},
		{daraja.APIError{Op: "c2b register", HTTPStatus: 200, ErrorMessage: "Validation and Confirmation URLs are already registered"},
			"daraja c2b register: Validation and Confirmation URLs are already registered (HTTP 200)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error: got %q, want %q", got, tt.want)
		}
	}
}
