package daraja

import (
	"context"
	"errors"
	"fmt"
)

const pathTransactionStatus = "/mpesa/transactionstatus/v1/query"

// CommandTransactionStatus is the only CommandID of the Transaction Status
// API.
const CommandTransactionStatus = "TransactionStatusQuery"

// TransactionStatusRequest asks M-Pesa what became of one transaction, named
// by its receipt, by the OriginatorConversationID of the request that made
// it (a reversal's, for instance), or both (docs/daraja.md "Transaction
// Status"). Values are sent as given, after the initiator's name and
// SecurityCredential.
type TransactionStatusRequest struct {
	// TransactionID is the M-Pesa receipt; omitted when empty.
	TransactionID string
	// OriginalConversationID is the OriginatorConversationID of the request
	// whose transaction is asked about; omitted when empty.
	OriginalConversationID string
	// PartyA is the shortcode (or MSISDN) that took part; IdentifierType
	// says which (default IdentifierShortCode, "4").
	PartyA         string
	IdentifierType string
	// ResultURL receives the Result; QueueTimeOutURL the notice sent when
	// the query expires in M-Pesa's queue.
	ResultURL       string
	QueueTimeOutURL string
	// Remarks (up to 100 characters) is required; Occasion is optional and
	// omitted when empty.
	Remarks  string
	Occasion string
}

// transactionStatusBody is the wire body: the spaceless key names that work,
// not the portal sample's "Command ID" and "Transaction ID".
type transactionStatusBody struct {
	Initiator              string `json:"Initiator"`
	SecurityCredential     string `json:"SecurityCredential"`
	CommandID              string `json:"CommandID"`
	TransactionID          string `json:"TransactionID,omitempty"`
	OriginalConversationID string `json:"OriginalConversationID,omitempty"`
	PartyA                 string `json:"PartyA"`
	IdentifierType         string `json:"IdentifierType"`
	ResultURL              string `json:"ResultURL"`
	QueueTimeOutURL        string `json:"QueueTimeOutURL"`
	Remarks                string `json:"Remarks"`
	Occasion               string `json:"Occasion,omitempty"`
}

// TransactionStatus asks Daraja for the status of a transaction: POST
// /mpesa/transactionstatus/v1/query (docs/daraja.md "Transaction Status").
// It returns the acknowledgement; the answer arrives later as a Result
// (ParseResult, then Result.Status) at r.ResultURL, ResultCode 2032 when
// M-Pesa has no such receipt. It is safe to repeat.
//
// Errors: ErrNoInitiator, or neither TransactionID nor
// OriginalConversationID given (nothing sent); *APIError for Daraja's error
// envelope or a non-zero ResponseCode; *BadResponseError; ErrUnreachable;
// ErrTimeout; OAuth errors from Token.
func (c *Client) TransactionStatus(ctx context.Context, r TransactionStatusRequest) (*Ack, error) {
	if !c.HasInitiator() {
		return nil, fmt.Errorf("daraja %s: %w", opTransactionStatus, ErrNoInitiator)
	}
	if r.TransactionID == "" && r.OriginalConversationID == "" {
		return nil, errors.New("daraja transaction status: neither TransactionID nor OriginalConversationID is given")
	}
	idType := r.IdentifierType
	if idType == "" {
		idType = IdentifierShortCode
	}
	body := transactionStatusBody{
		Initiator:              c.initiator,
		SecurityCredential:     c.credential.Reveal(),
		CommandID:              CommandTransactionStatus,
		TransactionID:          r.TransactionID,
		OriginalConversationID: r.OriginalConversationID,
		PartyA:                 r.PartyA,
		IdentifierType:         idType,
		ResultURL:              r.ResultURL,
		QueueTimeOutURL:        r.QueueTimeOutURL,
		Remarks:                r.Remarks,
		Occasion:               r.Occasion,
	}
	ans, err := c.call(ctx, opTransactionStatus, pathTransactionStatus, body)
	if err != nil {
		return nil, err
	}
	return decodeAck(ans, opTransactionStatus)
}
