package darajasim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ValidationTimeout is how long the simulator waits for a C2B validation
// answer before applying the registered ResponseType, as M-Pesa does
// (docs/daraja.md "C2B").
const ValidationTimeout = 8 * time.Second

// C2B command IDs (docs/daraja.md "C2B").
const (
	CommandPayBill  = "CustomerPayBillOnline"
	CommandBuyGoods = "CustomerBuyGoodsOnline"
)

// Errors returned by PayC2B and SendC2B; test with errors.Is.
var (
	// ErrNotRegistered: no C2B URLs are registered for the payment's shortcode.
	ErrNotRegistered = errors.New("darajasim: no C2B URLs registered for the shortcode")
	// ErrRejected: the validation answer's ResultCode was not "0"; the
	// returned error also names the code. No confirmation was sent.
	ErrRejected = errors.New("darajasim: C2B validation rejected the payment")
	// ErrCancelled: validation gave no usable answer (transport error, non-2xx,
	// undecodable body, or nothing within ValidationTimeout) and the
	// registered ResponseType is Cancelled. No confirmation was sent.
	ErrCancelled = errors.New("darajasim: C2B validation did not answer and ResponseType is Cancelled")
)

// PhoneNoConfirmation is the magic payer MSISDN of a C2B payment whose
// validation and confirmation are never sent, as C2BPayment.NoConfirmation.
const PhoneNoConfirmation = "254700000020"

// C2BPayment is one customer payment to a paybill or till (docs/daraja.md
// "C2B").
type C2BPayment struct {
	ShortCode     string // paybill or till, 5–7 digits
	CommandID     string // CommandPayBill or CommandBuyGoods
	Amount        int64  // whole shillings, 1 to MaxAmount
	MSISDN        string // payer, 2547XXXXXXXX or 2541XXXXXXXX
	BillRefNumber string // account number the payer typed; empty for tills
	// NoConfirmation makes the payment complete at M-Pesa, and enter the
	// transaction log that Pull Transactions answers from, without any
	// validation or confirmation request being sent: the notification lost
	// to an outage. The simulate endpoint takes it as a JSON field
	// "NoConfirmation" (true or "true"), a simulator extension that Daraja
	// does not have; payer PhoneNoConfirmation does the same. Server only:
	// SendC2B, which has no log, refuses it.
	NoConfirmation bool
}

func (p C2BPayment) validate() error {
	switch {
	case !validShortCode(p.ShortCode):
		return fmt.Errorf("darajasim: invalid C2B ShortCode %q", p.ShortCode)
	case p.CommandID != CommandPayBill && p.CommandID != CommandBuyGoods:
		return fmt.Errorf("darajasim: invalid C2B CommandID %q", p.CommandID)
	case p.Amount < 1 || p.Amount > MaxAmount:
		return fmt.Errorf("darajasim: invalid C2B Amount %d", p.Amount)
	case !validMSISDN(p.MSISDN):
		return fmt.Errorf("darajasim: invalid C2B MSISDN %q", p.MSISDN)
	}
	return nil
}

// c2bRegistration is the URLs registered for one shortcode.
type c2bRegistration struct {
	responseType    string // "Completed" or "Cancelled"
	confirmationURL string
	validationURL   string // "" when none was registered
	version         int    // register path used: 2 masks the MSISDN, 1 sends it plain
}

type registerRequest struct {
	ShortCode       value
	ResponseType    value
	ConfirmationURL value
	ValidationURL   value
}

type c2bAck struct {
	OriginatorCoversationID string // sic: Safaricom's spelling
	ResponseCode            string
	ResponseDescription     string
}

func (s *Server) handleRegisterV1(w http.ResponseWriter, r *http.Request) *failure {
	return s.handleRegister(w, r, 1)
}

func (s *Server) handleRegisterV2(w http.ResponseWriter, r *http.Request) *failure {
	return s.handleRegister(w, r, 2)
}

// forbiddenWords are refused anywhere in a registered URL, case-insensitively
// (docs/daraja.md "C2B"); the first that matches is named.
var forbiddenWords = []string{"m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query"}

// forbiddenWord returns the first of forbiddenWords in u, case-insensitively.
func forbiddenWord(u string) (string, bool) {
	lower := strings.ToLower(u)
	for _, word := range forbiddenWords {
		if strings.Contains(lower, word) {
			return word, true
		}
	}
	return "", false
}

// handleRegister is C2B Register URL (docs/daraja.md "C2B"), v1 and v2
// alike: token, JSON, then ShortCode (5–7 digits), ResponseType
// ("Completed" or "Cancelled", exactly), ConfirmationURL (absolute http(s))
// and ValidationURL (optional; absolute http(s) when given), each 400.002.02
// Invalid <Field>; then a URL containing a forbidden word is 400
// "400.003.02 Bad Request - Invalid <Field> - URL has the word <WORD>".
// Registering again replaces the URLs (sandbox behaviour). The version
// decides the MSISDN format of later notifications.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request, version int) *failure {
	var req registerRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if f := firstInvalid(
		check{"ShortCode", req.ShortCode, validShortCode},
		check{"ResponseType", req.ResponseType, oneOf("Completed", "Cancelled")},
		check{"ConfirmationURL", req.ConfirmationURL, validURL},
	); f != nil {
		return f
	}
	if req.ValidationURL.bad || (req.ValidationURL.text != "" && !validURL(req.ValidationURL.text)) {
		return invalid("ValidationURL")
	}
	for _, u := range []struct{ name, url string }{
		{"ConfirmationURL", req.ConfirmationURL.text},
		{"ValidationURL", req.ValidationURL.str()},
	} {
		if word, bad := forbiddenWord(u.url); bad {
			return &failure{status: http.StatusBadRequest, code: "400.003.02",
				message: "Bad Request - Invalid " + u.name + " - URL has the word " + strings.ToUpper(word)}
		}
	}
	reg := c2bRegistration{
		responseType:    "Completed",
		confirmationURL: req.ConfirmationURL.text,
		validationURL:   req.ValidationURL.str(),
		version:         version,
	}
	if req.ResponseType.text != "Completed" {
		reg.responseType = "Cancelled"
	}
	shortCode := req.ShortCode.text
	s.mu.Lock()
	s.c2b[shortCode] = reg
	s.mu.Unlock()
	s.log.Info("c2b urls registered", "short_code", shortCode, "version", version, "response_type", reg.responseType)
	writeJSON(w, http.StatusOK, c2bAck{OriginatorCoversationID: newHexID(), ResponseCode: "0", ResponseDescription: "Success"})
	return nil
}

type simulateRequest struct {
	ShortCode      value
	CommandID      value
	Amount         value
	Msisdn         value
	BillRefNumber  value
	NoConfirmation value // simulator extension, see C2BPayment.NoConfirmation
}

// handleSimulate is the sandbox C2B simulate endpoint (docs/daraja.md "C2B"):
// token, JSON, then ShortCode, CommandID, Amount (whole shillings 1–250000),
// Msisdn and BillRefNumber (optional, any text), each 400.002.02 Invalid
// <Field>, and the simulator's own NoConfirmation (optional: true, false,
// "true" or "false"); a shortcode without registered URLs is HTTP 500
// "500.003.1001". It answers at once and makes the payment in the
// background, as PayC2B does (delivering nothing with NoConfirmation).
func (s *Server) handleSimulate(w http.ResponseWriter, r *http.Request) *failure {
	var req simulateRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if f := firstInvalid(
		check{"ShortCode", req.ShortCode, validShortCode},
		check{"CommandID", req.CommandID, oneOf(CommandPayBill, CommandBuyGoods)},
		check{"Amount", req.Amount, validAmount},
		check{"Msisdn", req.Msisdn, validMSISDN},
	); f != nil {
		return f
	}
	if req.BillRefNumber.bad {
		return invalid("BillRefNumber")
	}
	noConfirmation := false
	switch v := strings.ToLower(req.NoConfirmation.str()); {
	case req.NoConfirmation.bad && !req.NoConfirmation.boolean:
		return invalid("NoConfirmation")
	case req.NoConfirmation.boolean:
		noConfirmation = req.NoConfirmation.truth
	case v == "true", v == "false", v == "":
		noConfirmation = v == "true"
	default:
		return invalid("NoConfirmation")
	}
	amount, _ := parseAmount(req.Amount.text)
	p := C2BPayment{
		ShortCode:      req.ShortCode.text,
		CommandID:      req.CommandID.text,
		Amount:         amount,
		MSISDN:         req.Msisdn.text,
		BillRefNumber:  req.BillRefNumber.str(),
		NoConfirmation: noConfirmation,
	}
	s.mu.Lock()
	reg, ok := s.c2b[p.ShortCode]
	if ok {
		s.goLocked(func() {
			if _, err := s.pay(context.Background(), p, reg); err != nil {
				s.log.Warn("c2b simulation not completed", "short_code", p.ShortCode, "err", err)
			}
		})
	}
	s.mu.Unlock()
	if !ok {
		return &failure{status: http.StatusInternalServerError, code: "500.003.1001",
			message: "No URLs are registered for ShortCode " + p.ShortCode}
	}
	writeJSON(w, http.StatusOK, c2bAck{
		OriginatorCoversationID: newHexID(),
		ResponseCode:            "0",
		ResponseDescription:     "Accept the service request successfully.",
	})
	return nil
}

// PayC2B makes the customer payment p to the URLs registered for p.ShortCode,
// as the simulate endpoint does, and returns the payment's TransID (a
// NewReceipt). When a ValidationURL is registered it is POSTed first; a
// ResultCode other than "0" stops the payment with ErrRejected, and no usable
// answer within ValidationTimeout completes it only when ResponseType is
// Completed (else ErrCancelled). Then the confirmation is POSTed, with
// OrgAccountBalance the shortcode's running total; a transport error or a
// non-2xx answer is returned as an error. An invalid p or an unregistered
// shortcode (ErrNotRegistered) sends nothing and returns an empty transID.
// MSISDN is masked ("2547 ***** 149") when the URLs were registered through
// v2, plain through v1. PayC2B blocks until delivery ends; ctx cancels it.
// Every completed payment enters the transaction log (Transactions). With
// p.NoConfirmation (or payer PhoneNoConfirmation) nothing is sent and no
// registration is needed: the payment completes and is logged at once.
func (s *Server) PayC2B(ctx context.Context, p C2BPayment) (transID string, err error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	s.mu.Lock()
	reg, ok := s.c2b[p.ShortCode]
	s.mu.Unlock()
	if !ok && !p.NoConfirmation && p.MSISDN != PhoneNoConfirmation {
		return "", fmt.Errorf("%w: %s", ErrNotRegistered, p.ShortCode)
	}
	return s.pay(ctx, p, reg)
}

func (s *Server) pay(ctx context.Context, p C2BPayment, reg c2bRegistration) (string, error) {
	now := s.now()
	if p.NoConfirmation || p.MSISDN == PhoneNoConfirmation {
		transID := NewReceipt(now)
		s.mu.Lock()
		s.balances[p.ShortCode] += p.Amount
		s.recordC2BLocked(p, transID, now, true)
		s.mu.Unlock()
		s.log.Info("c2b payment completed; validation and confirmation withheld", "trans_id", transID, "short_code", p.ShortCode)
		return transID, nil
	}
	d := c2bDelivery{
		client:            s.client,
		log:               s.log,
		validationURL:     reg.validationURL,
		confirmationURL:   reg.confirmationURL,
		completeOnSilence: reg.responseType == "Completed",
		mask:              reg.version == 2,
		complete: func(n c2bNotification) string {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.balances[p.ShortCode] += p.Amount
			s.recordC2BLocked(p, n.TransID, now, false)
			return formatShillings(s.balances[p.ShortCode])
		},
	}
	return d.deliver(ctx, p, now)
}

// recordC2BLocked logs a completed C2B payment. s.mu must be held.
func (s *Server) recordC2BLocked(p C2BPayment, transID string, now time.Time, withheld bool) {
	s.recordLocked(Transaction{
		Receipt: transID, Kind: KindC2B, ShortCode: p.ShortCode, MSISDN: p.MSISDN, Amount: p.Amount,
		BillRef: p.BillRefNumber, CommandID: p.CommandID, CompletedAt: now, ConfirmationWithheld: withheld,
	})
	s.utility[p.ShortCode] += p.Amount
}

// SendC2B delivers the customer payment p the way M-Pesa does, without a
// Server: when validationURL is non-empty it POSTs a Daraja-shaped validation
// body there and, if the answer's ResultCode is not "0", returns ErrRejected
// (naming the code) and sends no confirmation; a missing or unusable answer
// counts as acceptance (ResponseType Completed). It then POSTs the
// confirmation to confirmationURL. Bodies are those of docs/daraja.md "C2B"
// with all values strings, TransTime from now in East Africa Time, the v2
// masked MSISDN and an empty OrgAccountBalance. client nil means a client
// with a 10 s timeout. It returns the TransID used (empty when p is invalid
// and nothing was sent) and an error for an invalid p, a rejection, or a
// confirmation that failed or answered non-2xx.
func SendC2B(ctx context.Context, client *http.Client, validationURL, confirmationURL string, p C2BPayment, now time.Time) (transID string, err error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	if p.NoConfirmation {
		return "", errors.New("darajasim: SendC2B cannot withhold the confirmation (no transaction log); use a Server")
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	d := c2bDelivery{
		client:            client,
		log:               slog.New(slog.DiscardHandler),
		validationURL:     validationURL,
		confirmationURL:   confirmationURL,
		completeOnSilence: true,
		mask:              true,
	}
	return d.deliver(ctx, p, now)
}

// c2bNotification is the validation and confirmation body (docs/daraja.md
// "C2B").
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

type validationAnswer struct {
	ResultCode        value
	ResultDesc        value
	ThirdPartyTransID value
}

// c2bDelivery is one way of delivering C2B notifications.
type c2bDelivery struct {
	client            *http.Client
	log               *slog.Logger
	validationURL     string // "" skips validation
	confirmationURL   string
	completeOnSilence bool                         // ResponseType Completed
	mask              bool                         // v2 masked MSISDN
	complete          func(c2bNotification) string // called once the payment completes (validation passed); returns OrgAccountBalance; nil → ""
}

func (d c2bDelivery) deliver(ctx context.Context, p C2BPayment, now time.Time) (string, error) {
	n := c2bNotification{
		TransactionType:   "Pay Bill",
		TransID:           NewReceipt(now),
		TransTime:         now.In(eat).Format(timestampLayout),
		TransAmount:       formatShillings(p.Amount),
		BusinessShortCode: p.ShortCode,
		BillRefNumber:     p.BillRefNumber,
		MSISDN:            p.MSISDN,
		FirstName:         "John",
	}
	if p.CommandID == CommandBuyGoods {
		n.TransactionType = "Buy Goods"
	}
	if d.mask {
		n.MSISDN = maskMSISDN(p.MSISDN)
	}
	if d.validationURL != "" {
		ans, err := d.validate(ctx, n)
		switch {
		case ctx.Err() != nil:
			return n.TransID, fmt.Errorf("post c2b validation: %w", ctx.Err())
		case err != nil && !d.completeOnSilence:
			return n.TransID, fmt.Errorf("%w (%v)", ErrCancelled, err)
		case err != nil:
			d.log.Info("c2b validation gave no answer; completing", "trans_id", n.TransID, "err", err)
		case ans.ResultCode.str() != "0":
			return n.TransID, fmt.Errorf("%w: ResultCode %q", ErrRejected, ans.ResultCode.str())
		default:
			n.ThirdPartyTransID = ans.ThirdPartyTransID.str()
		}
	}
	if d.complete != nil {
		n.OrgAccountBalance = d.complete(n)
	}
	status, err := post(ctx, d.client, d.confirmationURL, n, nil)
	if err != nil {
		return n.TransID, fmt.Errorf("post c2b confirmation: %w", err)
	}
	d.log.Info("c2b confirmation delivered", "trans_id", n.TransID, "status", status)
	if status < 200 || status > 299 {
		return n.TransID, fmt.Errorf("post c2b confirmation: answered HTTP %d", status)
	}
	return n.TransID, nil
}

// validate POSTs the validation body and decodes the answer; any error means
// "no usable answer" (transport, timeout, non-2xx, undecodable).
func (d c2bDelivery) validate(ctx context.Context, n c2bNotification) (validationAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, ValidationTimeout)
	defer cancel()
	var ans validationAnswer
	status, err := post(ctx, d.client, d.validationURL, n, &ans)
	if err != nil {
		return ans, fmt.Errorf("post c2b validation: %w", err)
	}
	d.log.Info("c2b validation answered", "trans_id", n.TransID, "status", status, "result_code", ans.ResultCode.str())
	if status < 200 || status > 299 {
		return ans, fmt.Errorf("post c2b validation: answered HTTP %d", status)
	}
	if !ans.ResultCode.set {
		return ans, errors.New("post c2b validation: answer has no ResultCode")
	}
	return ans, nil
}

// post sends body as JSON to u and returns the answer's status; when answer
// is non-nil and the status is 2xx, the answer body is decoded into it.
func post(ctx context.Context, client *http.Client, u string, body, answer any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if answer != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if err := json.Unmarshal(data, answer); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// formatShillings writes whole shillings as Daraja's decimal string, "100.00".
func formatShillings(n int64) string { return fmt.Sprintf("%d.00", n) }

// maskMSISDN returns the C2B v2 masked form of a 12-digit MSISDN,
// "2547 ***** 149" (docs/daraja.md "C2B").
func maskMSISDN(m string) string {
	if len(m) < 7 {
		return m
	}
	return m[:4] + " ***** " + m[len(m)-3:]
}
