package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// stkPush serves POST /api/stk-push/. With an Idempotency-Key header the
// answer is stored, and a repeat of the request gets it again (with the
// header Idempotent-Replayed: true) instead of a second prompt.
func (s *Server) stkPush(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > 255 || hasControl(key) || !cleanText(key) {
		return lipa.InvalidField("invalid_idempotency_key", "Idempotency-Key", "the Idempotency-Key header must be at most 255 printable characters")
	}
	f, err := readBody(w, r, `{"phone_number": "0712345678", "amount": 10, "reference": "ORDER1"}`,
		[]string{"phone_number", "amount", "reference", "account_reference", "description"})
	if err != nil {
		return err
	}
	res, err := s.gw.InitiateSTKPush(r.Context(), app, gateway.STKPushRequest{
		PhoneNumber: f["phone_number"], Amount: f["amount"], Reference: f["reference"],
		AccountReference: f["account_reference"], Description: f["description"], IdempotencyKey: key,
	})
	if err != nil && (key == "" || gateway.RecordedPayment(err) == "") {
		return err // nothing stored under the key: no answer to keep
	}
	if err == nil && res.Replay != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(res.Replay.Status)
		_, err := w.Write(res.Replay.Body)
		return err
	}
	var status int
	var body any
	if err != nil {
		var eb errorBody
		status, eb = s.errorResponse(r, err)
		setRetryAfter(w, status, eb)
		body = eb
	} else {
		p := res.Payment
		status, body = http.StatusOK, map[string]any{
			"message":             "STK initiated",
			"payment_id":          p.ID,
			"status":              p.Status,
			"checkout_request_id": p.CheckoutRequestID,
			"merchant_request_id": p.MerchantRequestID,
			"customer_message":    p.CustomerMessage,
			"daraja_response":     json.RawMessage(res.DarajaResponse),
		}
		if res.DarajaResponse == nil {
			body.(map[string]any)["daraja_response"] = nil
		}
	}
	raw, merr := json.Marshal(body)
	if merr != nil {
		return merr
	}
	raw = append(raw, '\n')
	// Only the request that reserved the key stores its answer: it is the
	// one whose payment the key names (refusals before the reservation, and
	// repeats, carry no payment of their own).
	paymentID := gateway.RecordedPayment(err)
	if err == nil {
		paymentID = res.Payment.ID
	}
	if key != "" && paymentID != "" {
		if serr := s.gw.SaveIdempotentResponse(r.Context(), app, key, paymentID, status, raw); serr != nil {
			s.log.ErrorContext(r.Context(), "save idempotent response", "app", app.Name, "err", serr)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, werr := w.Write(raw)
	return werr
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// getPayment serves GET /api/payments/{id}/: the payment, with
// refunded_amount and its refunds.
func (s *Server) getPayment(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	p, err := s.gw.Payment(r.Context(), app, lipa.PaymentID(r.PathValue("id")))
	if err != nil {
		return err
	}
	d, err := s.paymentWithRefunds(r, app, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// listPayments serves GET /api/payments/?status=&reference=&claimed=&limit=&cursor=.
func (s *Server) listPayments(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	q := r.URL.Query()
	page, next, err := s.gw.Payments(r.Context(), app, gateway.ListQuery{
		Status: q.Get("status"), Reference: q.Get("reference"), Claimed: q.Get("claimed"),
		Limit: q.Get("limit"), Cursor: q.Get("cursor"),
	})
	if err != nil {
		return err
	}
	out := make([]lipa.PaymentView, len(page))
	for i := range page {
		out[i] = lipa.ViewOf(&page[i])
	}
	return writeJSON(w, http.StatusOK, map[string]any{"payments": out, "next_cursor": optional(next)})
}

// verify serves GET /api/payments/verify/?receipt=…|reference=…[&phone=…][&lookup=daraja].
// With lookup=daraja, a receipt Lipa has no payment for is asked of
// M-Pesa (see lookupDaraja).
func (s *Server) verify(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	q := r.URL.Query()
	lookup := q.Get("lookup")
	if lookup != "" && lookup != "daraja" {
		return lipa.InvalidField("invalid_parameter", "lookup", "lookup must be daraja (ask M-Pesa about a receipt Lipa has never seen), or absent")
	}
	v, err := s.gw.Verify(r.Context(), app, gateway.VerifyQuery{Receipt: q.Get("receipt"), Reference: q.Get("reference"), Phone: q.Get("phone")})
	if lookup != "" && strings.TrimSpace(q.Get("receipt")) != "" && lipa.ErrorKind(err) == lipa.NotFound {
		return s.lookupDaraja(w, r, app, q.Get("receipt"))
	}
	if err != nil {
		return err
	}
	var expected *lipa.Amount
	if v.AmountExpected != 0 {
		expected = &v.AmountExpected
	}
	return writeJSON(w, http.StatusOK, verifyAnswer{
		Paid:           v.Paid,
		Amount:         v.Amount,
		AmountExpected: expected,
		AmountPaid:     v.AmountPaid,
		Phone:          v.PhoneNumber,
		Receipt:        optional(v.MpesaReceiptNumber),
		Reference:      v.Reference,
		Claimed:        v.Claimed,
		Date:           optionalTime(v.TransactionDate),
		PaymentID:      v.ID,
		PaymentType:    v.Type,
		FromIntake:     v.FromIntake,
		Status:         v.Status,
		FailureReason:  optional(v.FailureReason),
	})
}

// verifyAnswer is the body of GET /api/payments/verify/. Its fields are in
// the order of their names, as the map it replaced encoded them.
type verifyAnswer struct {
	Amount         lipa.Amount      `json:"amount"`
	AmountExpected *lipa.Amount     `json:"amount_expected"`
	AmountPaid     lipa.Amount      `json:"amount_paid"`
	Claimed        bool             `json:"claimed"`
	Date           *string          `json:"date"`
	FailureReason  *string          `json:"failure_reason"`
	FromIntake     bool             `json:"from_intake"`
	Paid           bool             `json:"paid"`
	PaymentID      lipa.PaymentID   `json:"payment_id"`
	PaymentType    lipa.PaymentType `json:"payment_type"`
	Phone          string           `json:"phone"`
	Receipt        *string          `json:"receipt"`
	Reference      string           `json:"reference"`
	Status         lipa.Status      `json:"status"`
}

// claimAnswer is the body of a successful POST /api/payments/claim/, its
// fields in the order of their names.
type claimAnswer struct {
	Amount    lipa.Amount    `json:"amount"`
	ClaimedAt string         `json:"claimed_at"`
	Message   string         `json:"message"`
	PaymentID lipa.PaymentID `json:"payment_id"`
	Receipt   *string        `json:"receipt"`
	Status    lipa.Status    `json:"status"`
}

// claim serves POST /api/payments/claim/.
func (s *Server) claim(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	f, err := readBody(w, r, `{"payment_id": "pay_…"}, {"receipt": "NLJ7RT61SV"} or {"reference": "ORDER1"}, with an optional "amount"`,
		[]string{"payment_id", "receipt", "reference", "amount"})
	if err != nil {
		return err
	}
	p, err := s.gw.Claim(r.Context(), app, gateway.ClaimRequest{
		PaymentID: lipa.PaymentID(f["payment_id"]), Receipt: f["receipt"], Reference: f["reference"], Amount: f["amount"],
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, claimAnswer{
		Message:   "Payment claimed successfully",
		PaymentID: p.ID,
		Receipt:   optional(p.MpesaReceiptNumber),
		Amount:    p.Amount,
		ClaimedAt: p.ClaimedAt.UTC().Format(time.RFC3339),
		Status:    p.Status,
	})
}

// optional returns nil for "" (JSON null), else a pointer to s.
func optional[T ~string](s T) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

// optionalTime returns nil for the zero time, else t in RFC 3339 UTC.
func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339)
	return &v
}
