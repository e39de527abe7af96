package daraja_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

func registerRequest() daraja.RegisterURLRequest {
	return daraja.RegisterURLRequest{
		ShortCode:       "600984",
		ResponseType:    daraja.ResponseCompleted,
		ConfirmationURL: "https://example.com/payments/c2b/confirmation",
		ValidationURL:   "https://example.com/payments/c2b/validation",
	}
}

func TestRegisterC2BURLsSuccess(t *testing.T) {
	tests := []struct {
		version string
		fixture string
		want    daraja.RegisterURLResponse
	}{
		{"v2", "c2b-register-url-response.json", daraja.RegisterURLResponse{
			OriginatorConversationID: "6e86-45dd-91ac-fd5d4178ab523408729", ResponseCode: "0", ResponseDescription: "Success",
		}},
		{"v1", "c2b-register-url-response-zeros.json", daraja.RegisterURLResponse{
			OriginatorConversationID: "6e86-45dd-91ac-fd5d4178ab523408730", ResponseCode: "00000000", ResponseDescription: "Success",
		}},
		{"v1", "c2b-register-url-response-legacy-empty-ids.json", daraja.RegisterURLResponse{
			ResponseDescription: "success",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got := make(chan map[string]any, 1)
			f := newFake(t, map[string]http.HandlerFunc{
				"POST /mpesa/c2b/" + tt.version + "/registerurl": func(w http.ResponseWriter, r *http.Request) {
					var body map[string]any
					if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
						t.Errorf("decode body: %v", err)
					}
					got <- body
					serve(200, fixture(t, tt.fixture))(w, r)
				},
			})
			resp, err := newClient(t, f.URL).RegisterC2BURLs(context.Background(), tt.version, registerRequest())
			if err != nil {
				t.Fatalf("RegisterC2BURLs: %v", err)
			}
			if diff := cmp.Diff(&tt.want, resp, cmpopts.IgnoreFields(daraja.RegisterURLResponse{}, "Raw")); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			var want map[string]any
			if err := json.Unmarshal(fixture(t, "c2b-register-url-request.json"), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, <-got); diff != "" {
				t.Errorf("wire body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegisterC2BURLsErrors(t *testing.T) {
	legacy := []byte(`{"ConversationID":"","OriginatorCoversationID":"","ResponseDescription":"Validation and Confirmation URLs are already registered"}`)
	tests := []struct {
		name   string
		status int
		body   []byte
		check  func(*testing.T, error)
	}{
		{"500.003.1001 already registered", 500, nil,
			wantAPIError("c2b register", 500, "500.003.1001", daraja.ReasonAlreadyRegistered, daraja.ClassConfiguration)},
		{"legacy success-shaped body", 200, legacy,
			wantAPIError("c2b register", 200, "", daraja.ReasonAlreadyRegistered, daraja.ClassConfiguration)},
		{"forbidden word", 400, []byte(`{"requestId":"10000-1000036-1","errorCode":"400.003.02","errorMessage":"Bad Request - Invalid ValidationURL - URL has the word MPESA"}`),
			func(t *testing.T, err error) {
				wantAPIError("c2b register", 400, "400.003.02", daraja.ReasonInvalidField, daraja.ClassConfiguration)(t, err)
				var e *daraja.APIError
				if errors.As(err, &e) && e.Field() != "ValidationURL" {
					t.Errorf("Field: got %q, want %q", e.Field(), "ValidationURL")
				}
			}},
		{"non-zero ResponseCode", 200, []byte(`{"OriginatorCoversationID":"x","ResponseCode":"1","ResponseDescription":"Failed"}`),
			wantAPIError("c2b register", 200, "1", daraja.ReasonUnknown, daraja.ClassFinal)},
		{"no code, no success", 200, []byte(`{"OriginatorCoversationID":"","ResponseDescription":""}`),
			wantBadResponse("c2b register", 200, "application/json", daraja.ClassFinal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = fixture(t, "c2b-register-url-error-already-registered.json")
			}
			f := newFake(t, map[string]http.HandlerFunc{"POST /mpesa/c2b/v2/registerurl": serve(tt.status, body)})
			resp, err := newClient(t, f.URL).RegisterC2BURLs(context.Background(), "v2", registerRequest())
			if resp != nil {
				t.Errorf("response: got %+v, want nil", resp)
			}
			tt.check(t, err)
		})
	}
}

func TestC2BUnknownVersionSendsNothing(t *testing.T) {
	f := newFake(t, nil)
	c := newClient(t, f.URL)
	if _, err := c.RegisterC2BURLs(context.Background(), "v3", registerRequest()); err == nil {
		t.Error("RegisterC2BURLs v3: got nil error, want one")
	}
	if _, err := c.SimulateC2B(context.Background(), "", daraja.C2BSimulateRequest{}); err == nil {
		t.Error("SimulateC2B \"\": got nil error, want one")
	}
	if n := f.tokenCalls.Load() + f.calls.Load(); n != 0 {
		t.Errorf("requests: got %d, want 0", n)
	}
}

func TestSimulateC2B(t *testing.T) {
	tests := []struct {
		fixture string
		want    daraja.C2BSimulateResponse
	}{
		{"c2b-simulate-response.json", daraja.C2BSimulateResponse{
			OriginatorConversationID: "53e3-4aa8-9fe0-8fb5e4092cdd3405976", ResponseCode: "0",
			ResponseDescription: "Accept the service request successfully.",
		}},
		{"c2b-simulate-response-legacy.json", daraja.C2BSimulateResponse{
			OriginatorConversationID: "6896-31171-1", ConversationID: "AG_20190409_000079ec780236c1f54f",
			ResponseDescription: "Accept the service request successfully.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got := make(chan map[string]any, 1)
			f := newFake(t, map[string]http.HandlerFunc{
				"POST /mpesa/c2b/v2/simulate": func(w http.ResponseWriter, r *http.Request) {
					var body map[string]any
					if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
						t.Errorf("decode body: %v", err)
					}
					got <- body
					serve(200, fixture(t, tt.fixture))(w, r)
				},
			})
			resp, err := newClient(t, f.URL).SimulateC2B(context.Background(), "v2", daraja.C2BSimulateRequest{
				ShortCode: "600984", CommandID: daraja.PayBillOnline, Amount: 1, Msisdn: "254708374149", BillRefNumber: "Test Ref",
			})
			if err != nil {
				t.Fatalf("SimulateC2B: %v", err)
			}
			if diff := cmp.Diff(&tt.want, resp, cmpopts.IgnoreFields(daraja.C2BSimulateResponse{}, "Raw")); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			// Same fields as the official sample, every value a string.
			var want map[string]any
			if err := json.Unmarshal(fixture(t, "c2b-simulate-request.json"), &want); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if n, ok := v.(float64); ok {
					want[k] = fmt.Sprintf("%.0f", n)
				}
			}
			if diff := cmp.Diff(want, <-got); diff != "" {
				t.Errorf("wire body (-want +got):\n%s", diff)
			}
		})
	}
}
