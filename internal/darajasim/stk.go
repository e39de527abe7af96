package darajasim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The magic customer phone numbers (STK push PhoneNumber) that script an
// outcome; see the package comment and Outcomes. Any other valid number pays.
const (
	PhoneSuccess           = "254708374149" // Safaricom's public test MSISDN; like any unlisted number, pays
	PhoneCancelled         = "254700000001" // callback 1032
	PhoneInsufficientFunds = "254700000002" // callback 1
	PhoneWrongPIN          = "254700000003" // callback 2001
	PhoneUnreachable       = "254700000004" // callback 1037
	PhoneNoCallback        = "254700000005" // no callback; query says "0"
	PhoneDuplicateCallback = "254700000006" // success callback delivered twice
	PhoneSubscriberLocked  = "254700000007" // push refused with HTTP 500 500.001.1001
	PhonePending4999       = "254700000008" // prompt never answered: query says 4999 until PromptTimeout, then 1037
	PhonePendingEmpty      = "254700000009" // prompt never answered: query says 500.001.1001 with an empty message (HTTP 200) until PromptTimeout, then 1037

	// Faults on the push request itself (see Fault).
	PhoneNoAnswer        = "254700000010" // FaultNoAnswer: held open, then dropped unanswered
	PhoneUnavailable     = "254700000011" // FaultUnavailable: HTTP 503, HTML page
	PhoneServerError     = "254700000012" // FaultServerError: HTTP 500, HTML page
	PhoneTooManyRequests = "254700000013" // FaultTooManyRequests: HTTP 429, text/plain
	PhoneMalformedAnswer = "254700000014" // FaultMalformedAnswer: accepted and paid, answer body truncated
	PhoneSpikeArrest     = "254700000015" // FaultSpikeArrest: HTTP 500 500.003.02
	PhoneTokenExpired    = "254700000016" // FaultTokenExpired: first push 404.001.03 and token revoked
	PhoneGatewayLimited  = "254700000017" // FaultGatewaySpikeArrest: HTTP 429, Apigee spike-arrest fault JSON
)

// Result descriptions the simulator sends, in Daraja's wording
// (docs/daraja.md "STK callback").
const (
	ResultDescSuccess           = "The service request is processed successfully."
	ResultDescCancelled         = "Request cancelled by user"
	ResultDescInsufficientFunds = "The balance is insufficient for the transaction."
	ResultDescWrongPIN          = "The initiator information is invalid."
	ResultDescUnreachable       = "DS timeout user cannot be reached."
	// ResultDescStillProcessing is STK query's ResultDesc, with
	// ResultCode "4999", for an unsettled push under QueryPending4999
	// (docs/daraja.md "STK query").
	ResultDescStillProcessing = "The transaction is still under processing"
	// MessageSubscriberLocked is the errorMessage of the synchronous refusal
	// (errorCode "500.001.1001", HTTP 500) of a push to a phone whose
	// prompt is open, and of every push to PhoneSubscriberLocked.
	MessageSubscriberLocked = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
)

// Outcome is what the simulator does with an STK push to Phone that passed
// validation and the credential checks (docs/daraja.md "STK callback",
// "M-Pesa Express").
type Outcome struct {
	Phone string // 12-digit MSISDN, 2547XXXXXXXX

	// Refused means the push is refused synchronously with HTTP 500
	// "500.001.1001" MessageSubscriberLocked; nothing else happens and the
	// remaining fields are zero.
	Refused bool

	// Fault, unless FaultNone, is the failure injected into the push request
	// itself (see Fault). For the faults that record no push, the fields
	// below are zero; for FaultMalformedAnswer and FaultTokenExpired they
	// describe the push that is accepted (a success delivered once).
	Fault Fault

	// ResultCode and ResultDesc are sent as the callback's ResultCode (a
	// JSON number) and ResultDesc, and as the query's ResultCode (a string)
	// and ResultDesc. 0 is success, with CallbackMetadata in the callback.
	ResultCode int
	ResultDesc string

	// Deliveries is how many times the callback is POSTed: 0, 1 or 2.
	Deliveries int

	// PendingStyle, unless "", is the Config.QueryPendingStyle this push's
	// STK query answers in while it is unsettled, whatever the Server's.
	PendingStyle string

	// Unanswered means nobody answers the prompt: the push settles after
	// Config.PromptTimeout instead of Config.CallbackDelay.
	Unanswered bool
}

var outcomes = []Outcome{
	{Phone: PhoneCancelled, ResultCode: 1032, ResultDesc: ResultDescCancelled, Deliveries: 1},
	{Phone: PhoneInsufficientFunds, ResultCode: 1, ResultDesc: ResultDescInsufficientFunds, Deliveries: 1},
	{Phone: PhoneWrongPIN, ResultCode: 2001, ResultDesc: ResultDescWrongPIN, Deliveries: 1},
	{Phone: PhoneUnreachable, ResultCode: 1037, ResultDesc: ResultDescUnreachable, Deliveries: 1},
	{Phone: PhoneNoCallback, ResultCode: 0, ResultDesc: ResultDescSuccess, Deliveries: 0},
	{Phone: PhoneDuplicateCallback, ResultCode: 0, ResultDesc: ResultDescSuccess, Deliveries: 2},
	{Phone: PhoneSubscriberLocked, Refused: true},
	{Phone: PhonePending4999, ResultCode: 1037, ResultDesc: ResultDescUnreachable, Deliveries: 1, PendingStyle: QueryPending4999, Unanswered: true},
	{Phone: PhonePendingEmpty, ResultCode: 1037, ResultDesc: ResultDescUnreachable, Deliveries: 1, PendingStyle: QueryPendingEmpty, Unanswered: true},
	{Phone: PhoneNoAnswer, Fault: FaultNoAnswer},
	{Phone: PhoneUnavailable, Fault: FaultUnavailable},
	{Phone: PhoneServerError, Fault: FaultServerError},
	{Phone: PhoneTooManyRequests, Fault: FaultTooManyRequests},
	{Phone: PhoneMalformedAnswer, Fault: FaultMalformedAnswer, ResultCode: 0, ResultDesc: ResultDescSuccess, Deliveries: 1},
	{Phone: PhoneSpikeArrest, Fault: FaultSpikeArrest},
	{Phone: PhoneTokenExpired, Fault: FaultTokenExpired, ResultCode: 0, ResultDesc: ResultDescSuccess, Deliveries: 1},
	{Phone: PhoneGatewayLimited, Fault: FaultGatewaySpikeArrest},
}

// Outcomes returns the scripted outcomes, one per magic phone number, in
// phone order. Numbers not listed pay (see OutcomeFor). The slice is a copy.
func Outcomes() []Outcome {
	return append([]Outcome(nil), outcomes...)
}

// OutcomeFor returns the outcome of an STK push to phone: the scripted one for
// a magic number, otherwise success delivered once.
func OutcomeFor(phone string) Outcome {
	for _, o := range outcomes {
		if o.Phone == phone {
			return o
		}
	}
	return Outcome{Phone: phone, ResultCode: 0, ResultDesc: ResultDescSuccess, Deliveries: 1}
}

// stkTxn is one accepted STK push.
type stkTxn struct {
	merchantRequestID string
	checkoutRequestID string
	shortCode         string
	partyB            string
	transactionType   string
	accountRef        string
	amount            int64 // whole shillings
	phone             string
	callbackURL       string
	outcome           Outcome
	final             bool   // settled: the query reports the result
	receipt           string // set when settled with ResultCode 0
}

type stkPushRequest struct {
	BusinessShortCode value
	Password          value
	Timestamp         value
	TransactionType   value
	Amount            value
	PartyA            value
	PartyB            value
	PhoneNumber       value
	CallBackURL       value
	AccountReference  value
	TransactionDesc   value
}

type stkPushResponse struct {
	MerchantRequestID   string
	CheckoutRequestID   string
	ResponseCode        string
	ResponseDescription string
	CustomerMessage     string
}

// handleSTKPush is M-Pesa Express (docs/daraja.md "M-Pesa Express"),
// validated in Daraja's order: token (in ServeHTTP), a JSON Content-Type
// (400.002.02 Invalid BusinessShortCode), the JSON body (400.002.05), fields
// in request order (400.002.02 Invalid <Field>), Password (500.001.1001
// Wrong credentials), shortcode (500.001.1001 Merchant does not exist), the
// phone's scripted refusal or Fault, the subscriber lock (500.001.1001
// Unable to lock subscriber), then 200 with new IDs; the push settles after
// the callback delay (or Config.PromptTimeout for an unanswered prompt).
// Every request whose body is a JSON object is counted for PushCount first.
func (s *Server) handleSTKPush(w http.ResponseWriter, r *http.Request) *failure {
	if !jsonContentType(r) {
		return invalid("BusinessShortCode")
	}
	var req stkPushRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	s.countPush(req.PhoneNumber.str())
	if f := firstInvalid(
		check{"BusinessShortCode", req.BusinessShortCode, validShortCode},
		check{"Password", req.Password, nonEmpty},
		check{"Timestamp", req.Timestamp, validTimestamp},
		check{"TransactionType", req.TransactionType, oneOf("CustomerPayBillOnline", "CustomerBuyGoodsOnline")},
		check{"Amount", req.Amount, validAmount},
		check{"PartyA", req.PartyA, validMSISDN},
		check{"PartyB", req.PartyB, validDigits},
		check{"PhoneNumber", req.PhoneNumber, validMSISDN},
		check{"CallBackURL", req.CallBackURL, validURL},
		check{"AccountReference", req.AccountReference, lengthBetween(1, 12)},
		check{"TransactionDesc", req.TransactionDesc, lengthBetween(1, 13)},
	); f != nil {
		return f
	}
	shortCode := req.BusinessShortCode.text
	if f := s.checkPassword(shortCode, req.Password.text, req.Timestamp.text); f != nil {
		return f
	}
	phone := req.PhoneNumber.text
	outcome := OutcomeFor(phone)
	if outcome.Refused {
		return &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: MessageSubscriberLocked}
	}
	if f, answered := s.pushFault(w, r, outcome); answered {
		return f
	}
	amount, _ := parseAmount(req.Amount.text)

	now := s.now()
	s.mu.Lock()
	if open, locked := s.locks[phone]; locked && !s.noLock {
		s.mu.Unlock()
		s.log.Info("stk push refused: subscriber locked", "open_checkout_request_id", open)
		return &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: MessageSubscriberLocked}
	}
	t := &stkTxn{
		merchantRequestID: newHexID(),
		checkoutRequestID: checkoutRequestID(now, phone, func(id string) bool { _, ok := s.stk[id]; return ok }),
		shortCode:         shortCode,
		partyB:            req.PartyB.text,
		transactionType:   req.TransactionType.text,
		accountRef:        req.AccountReference.text,
		amount:            amount,
		phone:             phone,
		callbackURL:       req.CallBackURL.text,
		outcome:           outcome,
	}
	s.stk[t.checkoutRequestID] = t
	if !s.noLock {
		s.locks[phone] = t.checkoutRequestID
	}
	delay := s.delay
	if outcome.Unanswered {
		delay = s.promptTimeout
	}
	if !s.closed {
		s.wg.Add(1)
		s.timers[t.checkoutRequestID] = time.AfterFunc(delay, func() {
			defer s.wg.Done()
			s.settle(t.checkoutRequestID)
		})
	}
	s.mu.Unlock()

	s.log.Info("stk push accepted", "checkout_request_id", t.checkoutRequestID,
		"short_code", shortCode, "amount", amount, "result_code", outcome.ResultCode,
		"deliveries", outcome.Deliveries)
	const accepted = "Success. Request accepted for processing"
	body := append(marshal(stkPushResponse{
		MerchantRequestID:   t.merchantRequestID,
		CheckoutRequestID:   t.checkoutRequestID,
		ResponseCode:        "0",
		ResponseDescription: accepted,
		CustomerMessage:     accepted,
	}), '\n')
	if outcome.Fault == FaultMalformedAnswer {
		s.log.Info("stk push fault injected", "fault", string(outcome.Fault), "checkout_request_id", t.checkoutRequestID)
		body = truncateAnswer(body)
	}
	writeRaw(w, http.StatusOK, "application/json", body)
	return nil
}

// checkPassword checks Password == base64(shortCode + passkey + timestamp)
// (docs/daraja.md "M-Pesa Express"). For a shortcode the Server does not
// know, a Password of the right shape (shortcode + something + timestamp) is
// "Merchant does not exist"; anything else is "Wrong credentials".
func (s *Server) checkPassword(shortCode, password, timestamp string) *failure {
	wrong := &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: "Wrong credentials"}
	decoded, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		return wrong
	}
	passkey, known := s.shortCodes[shortCode] // never written after New
	if !known {
		d := string(decoded)
		if len(d) > len(shortCode)+len(timestamp) && strings.HasPrefix(d, shortCode) && strings.HasSuffix(d, timestamp) {
			return &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: "Merchant does not exist"}
		}
		return wrong
	}
	want := shortCode + passkey.Reveal() + timestamp
	if subtle.ConstantTimeCompare(decoded, []byte(want)) != 1 {
		return wrong
	}
	return nil
}

// settle runs when a push's delay has passed: it marks the push final,
// releases the subscriber lock, logs a paid push as a Transaction, and POSTs
// its callback Outcome.Deliveries times, one after another, unless the
// Server has been closed.
func (s *Server) settle(checkoutRequestID string) {
	now := s.now()
	s.mu.Lock()
	delete(s.timers, checkoutRequestID)
	t := s.stk[checkoutRequestID]
	t.final = true
	if s.locks[t.phone] == checkoutRequestID {
		delete(s.locks, t.phone)
	}
	if t.outcome.ResultCode == 0 {
		t.receipt = NewReceipt(now)
		s.recordLocked(Transaction{
			Receipt: t.receipt, Kind: KindSTK, ShortCode: t.shortCode, PartyB: t.partyB,
			MSISDN: t.phone, Amount: t.amount, BillRef: t.accountRef, CommandID: t.transactionType,
			CompletedAt: now,
		})
		s.utility[t.shortCode] += t.amount
	}
	closed := s.closed
	body := t.callbackBody(now)
	callbackURL, shortCode, n := t.callbackURL, t.shortCode, t.outcome.Deliveries
	s.mu.Unlock()
	if closed {
		return
	}
	for range n {
		s.postCallback(callbackURL, shortCode, checkoutRequestID, body)
	}
}

type stkCallback struct {
	Body struct {
		STKCallback struct {
			MerchantRequestID string
			CheckoutRequestID string
			ResultCode        int
			ResultDesc        string
			CallbackMetadata  *callbackMetadata `json:",omitempty"`
		} `json:"stkCallback"`
	}
}

type callbackMetadata struct {
	Item []metadataItem
}

type metadataItem struct {
	Name  string
	Value any `json:",omitempty"`
}

// callbackBody returns the callback JSON (docs/daraja.md "STK callback") for
// t settled at now: the success body carries Amount (integer),
// MpesaReceiptNumber (t.receipt), Balance (no Value, as Daraja sends it),
// TransactionDate (EAT yyyyMMddHHmmss as a number) and PhoneNumber (a
// number); failures carry no metadata.
func (t *stkTxn) callbackBody(now time.Time) []byte {
	var cb stkCallback
	c := &cb.Body.STKCallback
	c.MerchantRequestID = t.merchantRequestID
	c.CheckoutRequestID = t.checkoutRequestID
	c.ResultCode = t.outcome.ResultCode
	c.ResultDesc = t.outcome.ResultDesc
	if t.outcome.ResultCode == 0 {
		date, _ := strconv.ParseInt(now.In(eat).Format(timestampLayout), 10, 64)
		phone, _ := strconv.ParseInt(t.phone, 10, 64)
		c.CallbackMetadata = &callbackMetadata{Item: []metadataItem{
			{Name: "Amount", Value: t.amount},
			{Name: "MpesaReceiptNumber", Value: t.receipt},
			{Name: "Balance"},
			{Name: "TransactionDate", Value: date},
			{Name: "PhoneNumber", Value: phone},
		}}
	}
	b, err := json.Marshal(cb)
	if err != nil {
		panic("darajasim: marshal callback: " + err.Error())
	}
	return b
}

// postCallback delivers one STK callback as Daraja does (docs/daraja.md "STK
// callback"): a POST with Content-Type application/json;charset=UTF-8 and a
// BusinessShortCode header, no retries. The reply's status is logged; its
// body is ignored.
func (s *Server) postCallback(callbackURL, shortCode, checkoutRequestID string, body []byte) {
	host := callbackURL
	if u, err := url.Parse(callbackURL); err == nil {
		host = u.Host // the path may hold a secret token; keep it out of logs
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, callbackURL, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("stk callback not sent", "checkout_request_id", checkoutRequestID, "host", host, "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("BusinessShortCode", shortCode)
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("stk callback failed", "checkout_request_id", checkoutRequestID, "host", host, "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.log.Info("stk callback delivered", "checkout_request_id", checkoutRequestID, "host", host, "status", resp.StatusCode)
}

type stkQueryRequest struct {
	BusinessShortCode value
	Password          value
	Timestamp         value
	CheckoutRequestID value
}

type stkQueryResponse struct {
	ResponseCode        string
	ResponseDescription string
	MerchantRequestID   string
	CheckoutRequestID   string
	ResultCode          string
	ResultDesc          string
}

// handleSTKQuery is M-Pesa Express Query (docs/daraja.md "STK query"): token,
// JSON, fields (400.002.02), Password and shortcode as for the push; then an
// unknown CheckoutRequestID (or one pushed under another shortcode) is HTTP
// 500 "500.001.1001 The transaction does not Exist", an unsettled one is
// answered in Config.QueryPendingStyle, or the style its phone picks (by
// default HTTP 500 "500.001.1001 The transaction is being processed" with
// the CheckoutRequestID as requestId), and a settled one HTTP 200 with
// ResultCode as a string.
func (s *Server) handleSTKQuery(w http.ResponseWriter, r *http.Request) *failure {
	var req stkQueryRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if f := firstInvalid(
		check{"BusinessShortCode", req.BusinessShortCode, validShortCode},
		check{"Password", req.Password, nonEmpty},
		check{"Timestamp", req.Timestamp, validTimestamp},
		check{"CheckoutRequestID", req.CheckoutRequestID, nonEmpty},
	); f != nil {
		return f
	}
	shortCode, id := req.BusinessShortCode.text, req.CheckoutRequestID.text
	if f := s.checkPassword(shortCode, req.Password.text, req.Timestamp.text); f != nil {
		return f
	}
	s.mu.Lock()
	t, ok := s.stk[id]
	var resp stkQueryResponse
	final := ok && t.final
	pending := s.pending
	if ok && t.outcome.PendingStyle != "" {
		pending = t.outcome.PendingStyle
	}
	if ok {
		ok = t.shortCode == shortCode
		resp = stkQueryResponse{
			ResponseCode:        "0",
			ResponseDescription: "The service request has been accepted successfully",
			MerchantRequestID:   t.merchantRequestID,
			CheckoutRequestID:   t.checkoutRequestID,
			ResultCode:          strconv.Itoa(t.outcome.ResultCode),
			ResultDesc:          t.outcome.ResultDesc,
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: "The transaction does not Exist"}
	case !final && pending == QueryPending4999:
		resp.ResultCode, resp.ResultDesc = "4999", ResultDescStillProcessing
	case !final && pending == QueryPendingEmpty:
		return &failure{status: http.StatusOK, code: "500.001.1001", message: "", requestID: id}
	case !final:
		return &failure{status: http.StatusInternalServerError, code: "500.001.1001", message: "The transaction is being processed", requestID: id}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
