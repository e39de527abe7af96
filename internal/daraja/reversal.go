package daraja

import (
	"context"
	"fmt"

	"github.com/lipa-gateway/lipa"
)

const pathReversal = "/mpesa/reversal/v1/request"

// CommandReversal is the only CommandID of the Reversal API.
const CommandReversal = "TransactionReversal"

// ReversalRequest asks M-Pesa to reverse one transaction received by the
// shortcode, in full (docs/daraja.md "Reversal"). The client sends the
// values as given, after its initiator's name and SecurityCredential; the
// caller validates them (Remarks of 2 to 100 characters, URLs that are
// public and free of the words Daraja refuses).
type ReversalRequest struct {
	// TransactionID is the M-Pesa receipt of the transaction to reverse.
	TransactionID string
	// Amount is the transaction's amount. Daraja reverses whole
	// transactions; sent as shillings ("200", "100.5").
	Amount lipa.Amount
	// ReceiverParty is the shortcode that received the transaction.
	ReceiverParty string
	// ReceiverIdentifierType goes out as Daraja's misspelt
	// "RecieverIdentifierType". Default IdentifierReversal ("11").
	ReceiverIdentifierType string
	// ResultURL receives the Result; QueueTimeOutURL the notice sent when
	// the request expires in M-Pesa's queue.
	ResultURL       string
	QueueTimeOutURL string
	// Remarks (2 to 100 characters) is required; Occasion is optional and
	// omitted when empty.
	Remarks  string
	Occasion string
}

// reversalBody is the wire body of a reversal; the field names are
// Daraja's, misspelling included.
type reversalBody struct {
	Initiator              string `json:"Initiator"`
	SecurityCredential     string `json:"SecurityCredential"`
	CommandID              string `json:"CommandID"`
	TransactionID          string `json:"TransactionID"`
	Amount                 string `json:"Amount"`
	ReceiverParty          string `json:"ReceiverParty"`
	RecieverIdentifierType string `json:"RecieverIdentifierType"` // sic
	ResultURL              string `json:"ResultURL"`
	QueueTimeOutURL        string `json:"QueueTimeOutURL"`
	Remarks                string `json:"Remarks"`
	Occasion               string `json:"Occasion,omitempty"`
}

// Reverse asks Daraja to reverse r.TransactionID: POST
// /mpesa/reversal/v1/request (docs/daraja.md "Reversal"). It returns the
// acknowledgement; the outcome arrives later as a Result (ParseResult) at
// r.ResultURL: ResultCode 0, "R000001" already reversed, "R000002" unknown
// receipt, 2001 wrong initiator credentials, 8006 locked credentials, ...
//
// Errors: ErrNoInitiator (nothing sent); *APIError for Daraja's error
// envelope ("400.002.02 Bad Request - Invalid TransactionID", an invalid
// SecurityCredential, ...) or a non-zero ResponseCode: the reversal was not
// queued; *BadResponseError; ErrUnreachable (not sent, safe to resend);
// ErrTimeout or another transport error: unknown whether it was queued; ask
// with TransactionStatus before sending it again; OAuth errors from Token.
func (c *Client) Reverse(ctx context.Context, r ReversalRequest) (*Ack, error) {
	if !c.HasInitiator() {
		return nil, fmt.Errorf("daraja %s: %w", opReversal, ErrNoInitiator)
	}
	idType := r.ReceiverIdentifierType
	if idType == "" {
		idType = IdentifierReversal
	}
	body := reversalBody{
		Initiator:              c.initiator,
		SecurityCredential:     c.credential.Reveal(),
		CommandID:              CommandReversal,
		TransactionID:          r.TransactionID,
		Amount:                 r.Amount.String(),
		ReceiverParty:          r.ReceiverParty,
		RecieverIdentifierType: idType,
		ResultURL:              r.ResultURL,
		QueueTimeOutURL:        r.QueueTimeOutURL,
		Remarks:                r.Remarks,
		Occasion:               r.Occasion,
	}
	ans, err := c.call(ctx, opReversal, pathReversal, body)
	if err != nil {
		return nil, err
	}
	return decodeAck(ans, opReversal)
}
