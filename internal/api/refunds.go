package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// lookupWait bounds how long a lookup=daraja verification waits for
// M-Pesa's Transaction Status answer.
const lookupWait = 15 * time.Second

// operatorStatusWait bounds how long the admin API's Transaction Status
// waits for M-Pesa's answer.
const operatorStatusWait = 30 * time.Second

// refund serves POST /api/payments/{id}/refund/ with {"reason",
// "amount"?}: 202 with the refund (PENDING, AWAITING_APPROVAL, or FAILED
// when Daraja refused the request at once). With an Idempotency-Key the
// answer is stored, and a repeat gets it again (Idempotent-Replayed: true)
// without a second reversal.
func (s *Server) refund(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > 255 || hasControl(key) || !cleanText(key) {
		return lipa.InvalidField("invalid_idempotency_key", "Idempotency-Key", "the Idempotency-Key header must be at most 255 printable characters")
	}
	f, err := readBody(w, r, `{"reason": "customer returned the goods"}`, []string{"reason", "amount"})
	if err != nil {
		return err
	}
	res, err := s.gw.RequestRefund(r.Context(), app, gateway.RefundRequest{PaymentID: lipa.PaymentID(r.PathValue("id")),
		Reason: f["reason"], Amount: f["amount"], IdempotencyKey: key})
	if err != nil {
		return err
	}
	if res.Replay != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(res.Replay.Status)
		_, err := w.Write(res.Replay.Body)
		return err
	}
	raw, err := json.Marshal(lipa.RefundViewOf(res.Refund))
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if key != "" {
		if serr := s.gw.SaveRefundResponse(r.Context(), app, key, res.Refund.ID, http.StatusAccepted, raw); serr != nil {
			s.log.Error("save idempotent response", "app", app.Name, "err", serr)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, err = w.Write(raw)
	return err
}

// getRefund serves GET /api/refunds/{id}/: one of the app's refunds.
func (s *Server) getRefund(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	ref, err := s.gw.Refund(r.Context(), app, lipa.RefundID(r.PathValue("id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, lipa.RefundViewOf(ref))
}

// paymentDetail is GET /api/payments/{id}/'s body: the payment, what was
// refunded of it, and its refunds.
type paymentDetail struct {
	lipa.PaymentView
	RefundedAmount lipa.Amount       `json:"refunded_amount"`
	Refunds        []lipa.RefundView `json:"refunds"`
}

// paymentWithRefunds returns p's detail for the app.
func (s *Server) paymentWithRefunds(r *http.Request, app *lipa.App, p *lipa.Payment) (paymentDetail, error) {
	d := paymentDetail{PaymentView: lipa.ViewOf(p), Refunds: []lipa.RefundView{}}
	rs, err := s.gw.RefundsOfPayment(r.Context(), app, p.ID)
	if err != nil {
		return d, err
	}
	d.RefundedAmount = rs.Refunded
	for i := range rs.Refunds {
		d.Refunds = append(d.Refunds, lipa.RefundViewOf(&rs.Refunds[i]))
	}
	return d, nil
}

// lookupDaraja answers GET /api/payments/verify/?receipt=…&lookup=daraja
// for a receipt Lipa has no payment for: M-Pesa's Transaction Status
// answer, marked "source": "daraja", never a claimable payment. A receipt
// M-Pesa does not know is 404 "payment_not_found" (details.source
// "daraja"); no answer in time is 504 "daraja_timeout".
func (s *Server) lookupDaraja(w http.ResponseWriter, r *http.Request, app *lipa.App, receipt string) error {
	a, err := s.gw.LookupReceipt(r.Context(), app, receipt, lookupWait)
	if err != nil {
		return err
	}
	switch {
	case a.State != "answered":
		return lipa.Errorf(lipa.Timeout, "daraja_timeout",
			"M-Pesa has not answered about receipt %s yet; ask again in a minute (the question is not sent twice)", a.Receipt).
			With("source", "daraja")
	case !a.Found:
		return lipa.Errorf(lipa.NotFound, "payment_not_found", "neither Lipa nor M-Pesa knows receipt %s (%s %s)", a.Receipt, a.ResultCode, a.ResultDesc).
			With("source", "daraja").With("result_code", a.ResultCode)
	}
	v := a.View()
	return writeJSON(w, http.StatusOK, map[string]any{
		"source":             "daraja",
		"paid":               false,
		"claimable":          false,
		"receipt":            a.Receipt,
		"transaction_status": v.TransactionStatus,
		"amount":             v.Amount,
		"date":               v.CompletedAt,
		"message":            "M-Pesa knows this receipt but Lipa has no payment for it; an operator has been asked to look into it. It cannot be claimed until Lipa records it.",
	})
}

// adminRefunds serves GET /api/admin/refunds/?status=&payment_id=&limit=:
// refunds, newest first (status AWAITING_APPROVAL lists those waiting for
// a decision).
func (s *Server) adminRefunds(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit", "invalid_limit", 1000)
	if err != nil {
		return err
	}
	rs, err := s.gw.Refunds(r.Context(), gateway.RefundFilter{Status: lipa.RefundStatus(q.Get("status")),
		PaymentID: lipa.PaymentID(q.Get("payment_id")), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]gateway.RefundView, 0, len(rs))
	for _, x := range rs {
		out = append(out, x.View())
	}
	return writeJSON(w, http.StatusOK, map[string]any{"refunds": out})
}

// adminRefund serves GET /api/admin/refunds/{id}/.
func (s *Server) adminRefund(w http.ResponseWriter, r *http.Request) error {
	x, err := s.gw.RefundForOperator(r.Context(), lipa.RefundID(r.PathValue("id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, x.View())
}

// decideRefund serves POST /api/admin/refunds/{id}/approve/ and
// …/reject/ with {"reason"}, and …/settle/ with {"status", "receipt",
// "reason"}: audited as the admin API's.
func (s *Server) decideRefund(action string) handlerFunc {
	fields := []string{"reason"}
	if action == "settle" {
		fields = []string{"status", "receipt", "reason"}
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := readFields(w, r, fields...)
		if err != nil {
			return err
		}
		id := lipa.RefundID(r.PathValue("id"))
		var ref *lipa.Refund
		switch action {
		case "approve":
			ref, err = s.gw.ApproveRefund(r.Context(), adminActor, id, f["reason"])
		case "reject":
			ref, err = s.gw.RejectRefund(r.Context(), adminActor, id, f["reason"])
		default:
			ref, err = s.gw.SettleRefund(r.Context(), adminActor, id, lipa.RefundStatus(strings.ToUpper(f["status"])), f["receipt"], f["reason"])
		}
		if err != nil {
			return err
		}
		x, err := s.gw.RefundForOperator(r.Context(), ref.ID)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, x.View())
	}
}

// adminTransactionStatus serves POST /api/admin/transactions/status/ with
// {"receipt"}: what M-Pesa says about a receipt of the shortcode
// (Transaction Status), waiting up to 30 s for the answer ("state": "sent"
// when none came yet).
func (s *Server) adminTransactionStatus(w http.ResponseWriter, r *http.Request) error {
	f, err := readFields(w, r, "receipt")
	if err != nil {
		return err
	}
	a, err := s.gw.AskTransactionStatus(r.Context(), f["receipt"], operatorStatusWait)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.View())
}

// darajaResult serves Daraja's asynchronous answers at Lipa's result and
// timeout URLs (docs/daraja.md "Lipa's result and timeout URLs"):
// acknowledged with {"ResultCode": 0, "ResultDesc": "Accepted"} once
// stored, whatever was done with it; a body that is not a Result is stored
// and answered 400.
func (s *Server) darajaResult(kind gateway.InboundKind) func(http.ResponseWriter, *http.Request, gateway.Inbound) error {
	return func(w http.ResponseWriter, r *http.Request, in gateway.Inbound) error {
		if err := s.gw.ReceiveResult(r.Context(), kind, in); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{"ResultCode": 0, "ResultDesc": "Accepted"})
	}
}
