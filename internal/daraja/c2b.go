package daraja

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ResponseType values for RegisterURLRequest (docs/daraja.md "C2B"): what
// M-Pesa does with a payment when the ValidationURL does not answer in time.
const (
	ResponseCompleted = "Completed"
	ResponseCancelled = "Cancelled"
)

// RegisterURLRequest is the body of a C2B URL registration (docs/daraja.md
// "C2B"), sent as given. The URLs must be public, HTTPS in production, and
// free of words such as "mpesa" (docs/daraja.md "C2B"); the caller checks that.
type RegisterURLRequest struct {
	ShortCode       string
	ResponseType    string // ResponseCompleted or ResponseCancelled, exact case
	ConfirmationURL string
	ValidationURL   string
}

// RegisterURLResponse is Daraja's acceptance of a C2B URL registration
// (docs/daraja.md "C2B"). Legacy answers may have empty fields.
type RegisterURLResponse struct {
	// OriginatorConversationID is read from Daraja's misspelt key
	// "OriginatorCoversationID" (or the correct spelling).
	OriginatorConversationID string
	// ResponseCode is "0", "00000000", or "" in legacy bodies.
	ResponseCode        string
	ResponseDescription string
	// Raw is the body as received.
	Raw json.RawMessage
}

// RegisterC2BURLs registers the shortcode's C2B confirmation and validation
// URLs: POST /mpesa/c2b/{version}/registerurl, version "v1" or "v2" (Daraja
// "C2B"; the version an app may use depends on its API products).
//
// Success is a ResponseCode of only zeros ("0", "00000000"), or the legacy
// body with no ResponseCode whose ResponseDescription is "success". Errors:
//   - *APIError with ReasonAlreadyRegistered for "Urls are already
//     registered", "Duplicate notification info" or the legacy HTTP 200
//     "... URLs are already registered" (docs/daraja.md "C2B"): the old
//     URLs may still be active; in production they must be deleted on the
//     portal first.
//   - *APIError with ReasonNoAPIProduct (401.003.01): wrong version for the
//     app; no token refresh is attempted.
//   - other *APIError (including a non-zero ResponseCode), *BadResponseError,
//     ErrUnreachable, ErrTimeout, OAuth errors from Token.
//
// An unknown version is an error and nothing is sent.
func (c *Client) RegisterC2BURLs(ctx context.Context, version string, r RegisterURLRequest) (*RegisterURLResponse, error) {
	if version != "v1" && version != "v2" {
		return nil, fmt.Errorf("daraja %s: API version %q is not v1 or v2", opC2BRegister, version)
	}
	body := struct {
		ShortCode       string `json:"ShortCode"`
		ResponseType    string `json:"ResponseType"`
		ConfirmationURL string `json:"ConfirmationURL"`
		ValidationURL   string `json:"ValidationURL"`
	}{r.ShortCode, r.ResponseType, r.ConfirmationURL, r.ValidationURL}
	ans, err := c.call(ctx, opC2BRegister, "/mpesa/c2b/"+version+"/registerurl", body)
	if err != nil {
		return nil, err
	}
	w, err := decodeC2BAck(ans, opC2BRegister)
	if err != nil {
		return nil, err
	}
	resp := &RegisterURLResponse{
		OriginatorConversationID: w.originatorID(),
		ResponseCode:             string(w.ResponseCode),
		ResponseDescription:      string(w.ResponseDescription),
		Raw:                      json.RawMessage(ans.body),
	}
	desc := normalise(resp.ResponseDescription)
	switch {
	case strings.Contains(desc, "already registered"):
		// A success-shaped body that is not a success (docs/daraja.md
		// "C2B").
		return nil, ans.rejected(opC2BRegister, resp.ResponseCode, resp.ResponseDescription)
	case zeroCode(resp.ResponseCode):
		return resp, nil
	case resp.ResponseCode != "":
		return nil, ans.rejected(opC2BRegister, resp.ResponseCode, resp.ResponseDescription)
	case desc == "success":
		return resp, nil
	default:
		return nil, ans.badResponse(opC2BRegister, "no ResponseCode and no success description")
	}
}

// C2BSimulateRequest is the body of a sandbox C2B payment simulation (Daraja
// "C2B"). Numbers are sent as JSON strings.
type C2BSimulateRequest struct {
	ShortCode string
	// CommandID is PayBillOnline or BuyGoodsOnline.
	CommandID string
	// Amount is in whole Kenyan shillings (KES).
	Amount int64
	// Msisdn is the paying number, e.g. the sandbox 254708374149.
	Msisdn string
	// BillRefNumber is the account number typed by the payer; empty for
	// tills.
	BillRefNumber string
}

// C2BSimulateResponse is Daraja's acknowledgement of a simulated C2B payment
// (docs/daraja.md "C2B"). The payment itself arrives later at the
// registered URLs.
type C2BSimulateResponse struct {
	OriginatorConversationID string // from the misspelt "OriginatorCoversationID"
	ConversationID           string // legacy bodies only
	ResponseCode             string // "0", or "" in legacy bodies
	ResponseDescription      string
	// Raw is the body as received.
	Raw json.RawMessage
}

// SimulateC2B asks the sandbox to simulate a customer paying the shortcode:
// POST /mpesa/c2b/{version}/simulate, version "v1" or "v2" (docs/daraja.md
// "C2B"). Production has no such endpoint. The URLs must be registered first.
//
// Success is a ResponseCode of only zeros, or a legacy body without
// ResponseCode that carries a conversation ID. Errors: *APIError (including
// a non-zero ResponseCode), *BadResponseError, ErrUnreachable, ErrTimeout,
// OAuth errors from Token. An unknown version is an error and nothing is
// sent.
func (c *Client) SimulateC2B(ctx context.Context, version string, r C2BSimulateRequest) (*C2BSimulateResponse, error) {
	if version != "v1" && version != "v2" {
		return nil, fmt.Errorf("daraja %s: API version %q is not v1 or v2", opC2BSimulate, version)
	}
	body := struct {
		ShortCode     string `json:"ShortCode"`
		CommandID     string `json:"CommandID"`
		Amount        string `json:"Amount"`
		Msisdn        string `json:"Msisdn"`
		BillRefNumber string `json:"BillRefNumber"`
	}{r.ShortCode, r.CommandID, strconv.FormatInt(r.Amount, 10), r.Msisdn, r.BillRefNumber}
	ans, err := c.call(ctx, opC2BSimulate, "/mpesa/c2b/"+version+"/simulate", body)
	if err != nil {
		return nil, err
	}
	w, err := decodeC2BAck(ans, opC2BSimulate)
	if err != nil {
		return nil, err
	}
	resp := &C2BSimulateResponse{
		OriginatorConversationID: w.originatorID(),
		ConversationID:           string(w.ConversationID),
		ResponseCode:             string(w.ResponseCode),
		ResponseDescription:      string(w.ResponseDescription),
		Raw:                      json.RawMessage(ans.body),
	}
	switch {
	case zeroCode(resp.ResponseCode):
		return resp, nil
	case resp.ResponseCode != "":
		return nil, ans.rejected(opC2BSimulate, resp.ResponseCode, resp.ResponseDescription)
	case resp.OriginatorConversationID != "" || resp.ConversationID != "":
		return resp, nil
	default:
		return nil, ans.badResponse(opC2BSimulate, "no ResponseCode and no conversation ID")
	}
}

// c2bAck is the acknowledgement shape shared by C2B register and simulate.
type c2bAck struct {
	OriginatorCoversationID  flexString `json:"OriginatorCoversationID"` // sic (docs/daraja.md "Conventions")
	OriginatorConversationID flexString `json:"OriginatorConversationID"`
	ConversationID           flexString `json:"ConversationID"`
	ResponseCode             flexString `json:"ResponseCode"`
	ResponseDescription      flexString `json:"ResponseDescription"`
}

func (w *c2bAck) originatorID() string {
	if w.OriginatorCoversationID != "" {
		return string(w.OriginatorCoversationID)
	}
	return string(w.OriginatorConversationID)
}

func decodeC2BAck(ans *answer, op string) (*c2bAck, error) {
	var w c2bAck
	if err := json.Unmarshal(ans.body, &w); err != nil {
		return nil, ans.badResponse(op, "body is not the expected JSON object")
	}
	return &w, nil
}
