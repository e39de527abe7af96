package darajasim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The magic customer phone numbers that script the outcome of a reversal of
// a transaction they paid (the original payment itself, STK or C2B, pays
// like any unlisted number). See the package comment.
const (
	PhoneReversalAlreadyReversed = "254700000030" // reversal: ResultCode "R000001"
	PhoneReversalInitiatorFails  = "254700000031" // reversal: ResultCode 2001
	PhoneReversalLocked          = "254700000032" // reversal: ResultCode 8006
	PhoneReversalNoResult        = "254700000033" // reversal done, but its Result is never sent
	PhoneReversalQueueTimeout    = "254700000034" // reversal not done; a notice goes to the QueueTimeOutURL
	PhoneReversalInvalid         = "254700000035" // reversal: ResultCode "R000002", as for an unknown receipt
)

// Result codes and descriptions the initiator endpoints send, in Daraja's
// wording (docs/daraja.md "Reversal", "Transaction Status").
const (
	ResultDescProcessed        = "The service request is processed successfully."
	ResultDescAlreadyReversed  = "The transaction has already been reversed."
	ResultDescInvalidOriginal  = "The OriginalTransactionID is invalid."
	ResultDescInitiatorInvalid = "The initiator information is invalid."
	ResultDescCredentialLocked = "The security credential is locked."
	ResultDescReceiptNotFound  = "The transaction receipt number does not exist."
	// ResultCodeQueueTimeout is the ResultCode of the simulator's queue
	// timeout notice. Safaricom does not document that body; this code is
	// the simulator's own, so that nobody mistakes it for Daraja's.
	ResultCodeQueueTimeout = "SimulatorQueueTimeout"
	ResultDescQueueTimeout = "The request expired in the M-Pesa queue before it was processed (simulated queue timeout)."
	// AckDescription is the ResponseDescription of an accepted request.
	AckDescription = "Accept the service request successfully."
)

// referenceURL is the ReferenceItem Daraja puts in reversal results: its own
// internal queue-timeout address, as in the portal's samples.
const referenceURL = "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit"

// initiatorCall is one accepted Reversal or Transaction Status request.
type initiatorCall struct {
	originatorID   string
	conversationID string
	initiator      string
	credential     string
	resultURL      string
	timeoutURL     string
	// reversal
	reversal      bool
	transactionID string
	amount        int64 // whole shillings
	party         string
	// status
	originalConversationID string
	identifierType         string
	occasion               string
}

type reversalRequest struct {
	Initiator              value
	SecurityCredential     value
	CommandID              value
	TransactionID          value
	Amount                 value
	ReceiverParty          value
	RecieverIdentifierType value // sic: Daraja's spelling
	ResultURL              value
	QueueTimeOutURL        value
	Remarks                value
	Occasion               value
}

type statusRequest struct {
	Initiator              value
	SecurityCredential     value
	CommandID              value
	TransactionID          value
	OriginalConversationID value
	PartyA                 value
	IdentifierType         value
	ResultURL              value
	QueueTimeOutURL        value
	Remarks                value
	Occasion               value
}

type asyncAck struct {
	OriginatorConversationID string
	ConversationID           string
	ResponseCode             string
	ResponseDescription      string
}

var (
	receiptRE     = regexp.MustCompile(`^[A-Z0-9]{10}$`)
	decimalRE     = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,2})?$`)
	initiatorName = lengthBetween(1, 100)
)

// validResultURL reports whether s is an absolute http(s) URL without a word
// Daraja refuses.
func validResultURL(s string) bool {
	_, bad := forbiddenWord(s)
	return validURL(s) && !bad
}

// validReversalAmount accepts a positive decimal of shillings with at most
// two decimal places ("200", "1.00").
func validReversalAmount(s string) bool {
	if !decimalRE.MatchString(s) {
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f > 0
}

// handleReversal is the Reversal API (docs/daraja.md "Reversal"): token
// (404.001.03), JSON (400.002.05), then each field in turn, a failure being
// 400.002.02 "Bad Request - Invalid <Field>": Initiator, SecurityCredential
// (base64), CommandID ("TransactionReversal"), TransactionID (ten capitals
// or digits), Amount, ReceiverParty (5–7 digits), RecieverIdentifierType
// (1, 2, 4 or 11), ResultURL and QueueTimeOutURL (absolute, no refused
// word), Remarks (2–100 characters), Occasion (optional, up to 100). It
// acknowledges at once; the Result follows after Config.CallbackDelay.
func (s *Server) handleReversal(w http.ResponseWriter, r *http.Request) *failure {
	var req reversalRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if f := firstInvalid(
		check{"Initiator", req.Initiator, initiatorName},
		check{"SecurityCredential", req.SecurityCredential, validCredential},
		check{"CommandID", req.CommandID, oneOf("TransactionReversal")},
		check{"TransactionID", req.TransactionID, receiptRE.MatchString},
		check{"Amount", req.Amount, validReversalAmount},
		check{"ReceiverParty", req.ReceiverParty, validShortCode},
		check{"RecieverIdentifierType", req.RecieverIdentifierType, oneOf("1", "2", "4", "11")},
		check{"ResultURL", req.ResultURL, validResultURL},
		check{"QueueTimeOutURL", req.QueueTimeOutURL, validResultURL},
		check{"Remarks", req.Remarks, lengthBetween(2, 100)},
	); f != nil {
		return f
	}
	if req.Occasion.bad || len(req.Occasion.str()) > 100 {
		return invalid("Occasion")
	}
	whole, _, _ := strings.Cut(req.Amount.text, ".")
	amount, _ := strconv.ParseInt(whole, 10, 64)
	c := &initiatorCall{
		initiator:     req.Initiator.text,
		credential:    req.SecurityCredential.text,
		resultURL:     req.ResultURL.text,
		timeoutURL:    req.QueueTimeOutURL.text,
		reversal:      true,
		transactionID: req.TransactionID.text,
		amount:        amount,
		party:         req.ReceiverParty.text,
	}
	s.accept(w, c, s.reverse)
	return nil
}

// handleTransactionStatus is the Transaction Status API (docs/daraja.md
// "Transaction Status"): token (400.003.01), JSON (400.002.05), then
// Initiator, SecurityCredential, CommandID ("TransactionStatusQuery"),
// TransactionID (ten capitals or digits) and/or OriginalConversationID (at
// least one; "Invalid TransactionID" when neither), PartyA (a shortcode or
// an MSISDN), IdentifierType (1, 2 or 4), ResultURL, QueueTimeOutURL,
// Remarks (1–100 characters) and Occasion (optional), each 400.002.02
// "Bad Request - Invalid <Field>". It acknowledges at once; the Result
// follows after Config.CallbackDelay.
func (s *Server) handleTransactionStatus(w http.ResponseWriter, r *http.Request) *failure {
	var req statusRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if f := firstInvalid(
		check{"Initiator", req.Initiator, initiatorName},
		check{"SecurityCredential", req.SecurityCredential, validCredential},
		check{"CommandID", req.CommandID, oneOf("TransactionStatusQuery")},
	); f != nil {
		return f
	}
	txID, convID := req.TransactionID.str(), req.OriginalConversationID.str()
	switch {
	case req.TransactionID.bad || (txID != "" && !receiptRE.MatchString(txID)):
		return invalid("TransactionID")
	case req.OriginalConversationID.bad:
		return invalid("OriginalConversationID")
	case txID == "" && convID == "":
		return invalid("TransactionID")
	}
	if f := firstInvalid(
		check{"PartyA", req.PartyA, func(p string) bool { return validShortCode(p) || validMSISDN(p) }},
		check{"IdentifierType", req.IdentifierType, oneOf("1", "2", "4")},
		check{"ResultURL", req.ResultURL, validResultURL},
		check{"QueueTimeOutURL", req.QueueTimeOutURL, validResultURL},
		check{"Remarks", req.Remarks, lengthBetween(1, 100)},
	); f != nil {
		return f
	}
	if req.Occasion.bad || len(req.Occasion.str()) > 100 {
		return invalid("Occasion")
	}
	c := &initiatorCall{
		initiator:              req.Initiator.text,
		credential:             req.SecurityCredential.text,
		resultURL:              req.ResultURL.text,
		timeoutURL:             req.QueueTimeOutURL.text,
		transactionID:          txID,
		originalConversationID: convID,
		party:                  req.PartyA.text,
		identifierType:         req.IdentifierType.text,
		occasion:               req.Occasion.str(),
	}
	s.accept(w, c, s.status)
	return nil
}

// accept gives c its IDs, answers the acknowledgement, and schedules
// resolve, which decides the outcome and returns the body to POST and where
// (nothing when url is "").
func (s *Server) accept(w http.ResponseWriter, c *initiatorCall, resolve func(*initiatorCall, time.Time) (url string, body []byte)) {
	now := s.now()
	c.originatorID = newHexID()
	c.conversationID = newConversationID(now)
	s.mu.Lock()
	if !s.closed {
		s.wg.Add(1)
		s.timers[c.conversationID] = time.AfterFunc(s.delay, func() {
			defer s.wg.Done()
			s.mu.Lock()
			delete(s.timers, c.conversationID)
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			if u, body := resolve(c, s.now()); u != "" {
				s.postResult(u, c.conversationID, body)
			}
		})
	}
	s.mu.Unlock()
	kind := "transaction status"
	if c.reversal {
		kind = "reversal"
	}
	s.log.Info(kind+" accepted", "conversation_id", c.conversationID, "transaction_id", c.transactionID)
	writeJSON(w, http.StatusOK, asyncAck{
		OriginatorConversationID: c.originatorID,
		ConversationID:           c.conversationID,
		ResponseCode:             "0",
		ResponseDescription:      AckDescription,
	})
}

// resultBody is the {"Result": {...}} body POSTed to a ResultURL.
type resultBody struct {
	Result struct {
		ResultType               int
		ResultCode               any // a number, or a string such as "R000002"
		ResultDesc               string
		OriginatorConversationID string
		ConversationID           string
		TransactionID            string
		ResultParameters         *resultParameters `json:",omitempty"`
		ReferenceData            *referenceData    `json:",omitempty"`
	}
}

type resultParameters struct {
	ResultParameter []param
}

type referenceData struct {
	ReferenceItem param
}

// param is a Key/Value item; a nil Value is left out, as Daraja does.
type param struct {
	Key   string
	Value any `json:",omitempty"`
}

// newResult starts a result body for c with code (an int, or a string for
// codes such as "R000002").
func newResult(c *initiatorCall, code any, desc, transactionID string) *resultBody {
	var b resultBody
	b.Result.ResultCode = code
	b.Result.ResultDesc = desc
	b.Result.OriginatorConversationID = c.originatorID
	b.Result.ConversationID = c.conversationID
	b.Result.TransactionID = transactionID
	return &b
}

// credentialFailure returns the 2001 or 8006 result when c's initiator
// credentials do not pass, else nil.
func (s *Server) credentialFailure(c *initiatorCall, now time.Time, ref *referenceData) *resultBody {
	var b *resultBody
	switch s.checkCredential(c.initiator, c.credential) {
	case credentialRejected:
		b = newResult(c, 2001, ResultDescInitiatorInvalid, placeholderReceipt(now))
	case credentialLocked:
		b = newResult(c, 8006, ResultDescCredentialLocked, "XXXXXXXXXX")
	default:
		return nil
	}
	b.Result.ReferenceData = ref
	return b
}

// reverse decides a reversal: credentials, the original transaction (by
// receipt, for the ReceiverParty), the original payer's magic phone, and
// whether it was reversed before; a success logs the reversal.
func (s *Server) reverse(c *initiatorCall, now time.Time) (string, []byte) {
	ref := &referenceData{ReferenceItem: param{Key: "QueueTimeoutURL", Value: referenceURL}}
	if b := s.credentialFailure(c, now, ref); b != nil {
		return c.resultURL, marshal(b)
	}
	s.mu.Lock()
	orig, known := s.byReceipt[c.transactionID]
	if known && (orig.Kind == KindReversal || !orig.belongsTo(c.party)) {
		known = false
	}
	phone := ""
	if known {
		phone = orig.MSISDN
	}
	var b *resultBody
	reversed := false
	switch {
	case !known || phone == PhoneReversalInvalid:
		b = newResult(c, "R000002", ResultDescInvalidOriginal, placeholderReceipt(now))
	case phone == PhoneReversalQueueTimeout:
		s.mu.Unlock()
		s.log.Info("reversal fault injected", "fault", "queue-timeout", "conversation_id", c.conversationID)
		t := newResult(c, ResultCodeQueueTimeout, ResultDescQueueTimeout, "")
		return c.timeoutURL, marshal(t)
	case phone == PhoneReversalInitiatorFails:
		b = newResult(c, 2001, ResultDescInitiatorInvalid, placeholderReceipt(now))
	case phone == PhoneReversalLocked:
		b = newResult(c, 8006, ResultDescCredentialLocked, "XXXXXXXXXX")
	case phone == PhoneReversalAlreadyReversed || orig.ReversedBy != "":
		b = newResult(c, "R000001", ResultDescAlreadyReversed, placeholderReceipt(now))
	default:
		reversed = true
		receipt := NewReceipt(now)
		orig.ReversedBy = receipt
		s.recordLocked(Transaction{
			Receipt: receipt, Kind: KindReversal, ShortCode: orig.ShortCode, PartyB: orig.PartyB,
			MSISDN: orig.MSISDN, Amount: orig.Amount, CommandID: "TransactionReversal", CompletedAt: now,
			OriginatorConversationID: c.originatorID, ConversationID: c.conversationID, Original: orig.Receipt,
		})
		s.utility[orig.ShortCode] -= orig.Amount
		balance := formatShillings(s.utility[orig.ShortCode])
		b = newResult(c, 0, ResultDescProcessed, receipt)
		b.Result.ResultParameters = &resultParameters{ResultParameter: []param{
			{Key: "DebitAccountBalance", Value: "Utility Account|KES|" + balance + "|" + balance + "|0.00|0.00"},
			{Key: "Amount", Value: json.Number(formatShillings(orig.Amount))},
			{Key: "TransCompletedTime", Value: json.Number(now.In(eat).Format(timestampLayout))},
			{Key: "OriginalTransactionID", Value: orig.Receipt},
			{Key: "Charge", Value: json.Number("0.00")},
			{Key: "CreditPartyPublicName", Value: orig.MSISDN + " - John Doe"},
			{Key: "DebitPartyPublicName", Value: orig.ShortCode + " - Lipa Daraja Simulator"},
		}}
	}
	s.mu.Unlock()
	b.Result.ReferenceData = ref
	if reversed && phone == PhoneReversalNoResult {
		s.log.Info("reversal fault injected", "fault", "no-result", "conversation_id", c.conversationID)
		return "", nil
	}
	return c.resultURL, marshal(b)
}

// status answers a Transaction Status request from the transaction log: the
// transaction with the receipt (paid to or from PartyA), or made by the
// request whose OriginatorConversationID is OriginalConversationID; 2032
// when there is none.
func (s *Server) status(c *initiatorCall, now time.Time) (string, []byte) {
	ref := &referenceData{ReferenceItem: param{Key: "Occasion"}}
	if c.occasion != "" {
		ref.ReferenceItem.Value = c.occasion
	}
	if b := s.credentialFailure(c, now, ref); b != nil {
		return c.resultURL, marshal(b)
	}
	s.mu.Lock()
	var t *Transaction
	if c.transactionID != "" {
		if x, ok := s.byReceipt[c.transactionID]; ok && (x.belongsTo(c.party) || x.MSISDN == c.party) {
			t = x
		}
	} else {
		for _, x := range s.ledger {
			if x.OriginatorConversationID == c.originalConversationID {
				t = x
				break
			}
		}
	}
	var tx Transaction
	if t != nil {
		tx = *t
	}
	s.mu.Unlock()
	if t == nil {
		b := newResult(c, 2032, ResultDescReceiptNotFound, placeholderReceipt(now))
		b.Result.ReferenceData = ref
		return c.resultURL, marshal(b)
	}
	b := newResult(c, 0, ResultDescProcessed, placeholderReceipt(now))
	b.Result.ReferenceData = ref
	b.Result.ResultParameters = &resultParameters{ResultParameter: s.statusParams(tx)}
	return c.resultURL, marshal(b)
}

// statusParams are the ResultParameters describing t, in the current
// portal's shape or, with Config.LegacyStatusResults, the 2017 one.
func (s *Server) statusParams(t Transaction) []param {
	org := t.ShortCode + " - Lipa Daraja Simulator"
	customer := t.MSISDN + " - John Doe"
	debit, credit := customer, org
	reason := "Pay Bill Online"
	switch {
	case t.Kind == KindReversal:
		debit, credit, reason = org, customer, "Reversal"
	case t.Kind == KindC2B && t.CommandID == CommandBuyGoods:
		reason = "Buy Goods"
	case t.Kind == KindC2B:
		reason = "Pay Bill"
	case t.CommandID == CommandBuyGoods:
		reason = "Buy Goods Online"
	}
	when := t.CompletedAt.In(eat).Format(timestampLayout)
	if s.legacyStatus {
		return []param{
			{Key: "ReceiptNo", Value: t.Receipt},
			{Key: "Conversation ID", Value: t.ConversationID},
			{Key: "FinalisedTime", Value: json.Number(when)},
			{Key: "Amount", Value: json.Number(strconv.FormatInt(t.Amount, 10))},
			{Key: "TransactionStatus", Value: "Completed"},
			{Key: "ReasonType", Value: reason},
			{Key: "TransactionReason"},
			{Key: "DebitPartyCharges", Value: ""},
			{Key: "DebitAccountType", Value: "Utility Account"},
			{Key: "InitiatedTime", Value: json.Number(when)},
			{Key: "Originator Conversation ID", Value: t.OriginatorConversationID},
			{Key: "CreditPartyName", Value: credit},
			{Key: "DebitPartyName", Value: debit},
		}
	}
	return []param{
		{Key: "DebitPartyName", Value: debit},
		{Key: "CreditPartyName", Value: credit},
		{Key: "OriginatorConversationID", Value: t.OriginatorConversationID},
		{Key: "InitiatedTime", Value: when},
		{Key: "DebitAccountType", Value: "Utility Account"},
		{Key: "DebitPartyCharges", Value: ""},
		{Key: "TransactionReason"},
		{Key: "ReasonType", Value: reason},
		{Key: "TransactionStatus", Value: "Completed"},
		{Key: "FinalisedTime", Value: when},
		{Key: "Amount", Value: strconv.FormatInt(t.Amount, 10)},
		{Key: "ConversationID", Value: t.ConversationID},
		{Key: "ReceiptNo", Value: t.Receipt},
	}
}

// postResult delivers one Result (or queue timeout notice) as Daraja does: a
// POST with Content-Type application/json, no retries. The reply's status
// is logged; its body is ignored.
func (s *Server) postResult(u, conversationID string, body []byte) {
	host := u
	if p, err := url.Parse(u); err == nil {
		host = p.Host // the path may hold a secret token; keep it out of logs
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("result not sent", "conversation_id", conversationID, "host", host, "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("result delivery failed", "conversation_id", conversationID, "host", host, "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.log.Info("result delivered", "conversation_id", conversationID, "host", host, "status", resp.StatusCode)
}
