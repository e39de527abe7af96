package daraja

import (
	"encoding/json"
	"errors"
	"strings"
)

// Operation names of the initiator and Pull Transactions calls, carried by
// APIError.Op and friends and by logs.
const (
	opReversal          = "reversal"
	opTransactionStatus = "transaction status"
	opPullRegister      = "pull register"
	opPullQuery         = "pull query"
)

// IdentifierType values of the initiator APIs: what kind of party a
// shortcode or number is (docs/daraja.md "Transaction Status", "Reversal").
const (
	IdentifierMSISDN    = "1"  // a customer's phone number
	IdentifierTill      = "2"  // a till number
	IdentifierShortCode = "4"  // an organisation shortcode (paybill)
	IdentifierReversal  = "11" // RecieverIdentifierType of a reversal, per the current portal
)

// ErrNoInitiator reports that an initiator call (Reverse,
// TransactionStatus) was asked of a Client built without InitiatorName and
// InitiatorPassword. Nothing was sent. Test with errors.Is.
var ErrNoInitiator = errors.New("daraja: no initiator configured (InitiatorName and InitiatorPassword)")

// initInitiator checks the initiator settings and computes the
// SecurityCredential once.
func (c *Client) initInitiator(cfg Config) error {
	name := strings.TrimSpace(cfg.InitiatorName)
	switch {
	case name == "" && cfg.InitiatorPassword == "":
		return nil
	case name == "":
		return errors.New("daraja: InitiatorPassword is set but InitiatorName is empty")
	case cfg.InitiatorPassword == "":
		return errors.New("daraja: InitiatorName is set but InitiatorPassword is empty")
	}
	cert := cfg.Certificate
	if cert == nil {
		cert = CertificateFor(c.base)
	}
	cred, err := SecurityCredential(cfg.InitiatorPassword, cert)
	if err != nil {
		return err
	}
	c.initiator, c.credential = name, cred
	return nil
}

// HasInitiator reports whether the Client was built with an initiator, so
// that Reverse and TransactionStatus can be called.
func (c *Client) HasInitiator() bool { return c.initiator != "" }

// Ack is Daraja's synchronous acknowledgement of an asynchronous request
// (Reversal, Transaction Status): the request was queued, nothing more. The
// outcome arrives later as a Result at the ResultURL, or a notice at the
// QueueTimeOutURL (docs/daraja.md "Reversal"). ConversationID and
// OriginatorConversationID identify the request in that Result.
type Ack struct {
	// OriginatorConversationID is M-Pesa's ID of the request; Transaction
	// Status accepts it as OriginalConversationID. May be empty when
	// ConversationID is not.
	OriginatorConversationID string
	// ConversationID ("AG_yyyyMMdd_…") is the ID the Result carries. May be
	// empty when OriginatorConversationID is not.
	ConversationID string
	// ResponseCode is "0" (or another all-zero code).
	ResponseCode        string
	ResponseDescription string
	// Raw is the body as received.
	Raw json.RawMessage
}

// decodeAck reads an acknowledgement: a ResponseCode of only zeros with at
// least one conversation ID. A non-zero ResponseCode is an *APIError; any
// other body a *BadResponseError.
func decodeAck(ans *answer, op string) (*Ack, error) {
	var w struct {
		OriginatorConversationID flexString `json:"OriginatorConversationID"`
		OriginatorCoversationID  flexString `json:"OriginatorCoversationID"` // sic, as C2B spells it
		ConversationID           flexString `json:"ConversationID"`
		ResponseCode             flexString `json:"ResponseCode"`
		ResponseDescription      flexString `json:"ResponseDescription"`
	}
	if err := json.Unmarshal(ans.body, &w); err != nil {
		return nil, ans.badResponse(op, "body is not the expected JSON object")
	}
	a := &Ack{
		OriginatorConversationID: strings.TrimSpace(string(w.OriginatorConversationID)),
		ConversationID:           strings.TrimSpace(string(w.ConversationID)),
		ResponseCode:             strings.TrimSpace(string(w.ResponseCode)),
		ResponseDescription:      string(w.ResponseDescription),
		Raw:                      json.RawMessage(ans.body),
	}
	if a.OriginatorConversationID == "" {
		a.OriginatorConversationID = strings.TrimSpace(string(w.OriginatorCoversationID))
	}
	switch {
	case a.ResponseCode == "":
		return nil, ans.badResponse(op, "no ResponseCode")
	case !zeroCode(a.ResponseCode):
		return nil, ans.rejected(op, a.ResponseCode, a.ResponseDescription)
	case a.ConversationID == "" && a.OriginatorConversationID == "":
		return nil, ans.badResponse(op, "no ConversationID or OriginatorConversationID")
	}
	return a, nil
}
