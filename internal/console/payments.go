package console

import (
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// queryOf reads the payments filters from a request's query string; the
// list, the CSV export and the CLI take the same parameters.
func queryOf(r *http.Request) gateway.PaymentQuery {
	v := r.URL.Query()
	return gateway.PaymentQuery{App: v.Get("app"), Status: v.Get("status"), Type: v.Get("type"), Claimed: v.Get("claimed"),
		From: v.Get("from"), To: v.Get("to"), Q: v.Get("q"), Cursor: v.Get("cursor")}
}

// values is a PaymentQuery as query parameters (without the cursor).
func values(q gateway.PaymentQuery) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "app": q.App, "status": q.Status, "type": q.Type, "claimed": q.Claimed, "from": q.From, "to": q.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

type paymentsPage struct {
	Query    gateway.PaymentQuery
	Apps     []string
	Payments []lipa.Payment
	NextURL  string
	FirstURL string // the first page, when this is not it
	CSVURL   string
	Filtered bool
}

// payments serves GET /admin/payments: filters, one search box, newest
// first, a page at a time.
func (s *Server) payments(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	q := queryOf(r)
	apps, err := s.gw.Apps(r.Context())
	if err != nil {
		return err
	}
	p := paymentsPage{Query: q}
	for _, a := range apps {
		p.Apps = append(p.Apps, a.Name)
	}
	list, next, err := s.gw.SearchPayments(r.Context(), q)
	if err != nil {
		if lipa.ErrorKind(err) != lipa.Invalid {
			return err
		}
		// A bad filter: say so on the page itself, with the form to fix it.
		s.render(w, r, op, http.StatusBadRequest, "payments", "Payments", "payments", struct {
			paymentsPage
			Error string
		}{p, errorMessage(err)})
		return nil
	}
	p.Payments = list
	base := values(q)
	p.Filtered = len(base) > 0
	p.CSVURL = "/admin/payments.csv"
	if len(base) > 0 {
		p.CSVURL += "?" + base.Encode()
	}
	if next != "" {
		v := values(q)
		v.Set("cursor", next)
		p.NextURL = "/admin/payments?" + v.Encode()
	}
	if q.Cursor != "" {
		p.FirstURL = "/admin/payments"
		if len(base) > 0 {
			p.FirstURL += "?" + base.Encode()
		}
	}
	s.render(w, r, op, http.StatusOK, "payments", "Payments", "payments", struct {
		paymentsPage
		Error string
	}{p, ""})
	return nil
}

// csvHeader names the CSV export's columns: the fields of a payment as the
// API shows them, times in UTC (RFC 3339), amounts in shillings.
var csvHeader = []string{"id", "created_at", "app", "payment_type", "status", "amount", "currency", "phone_number", "reference",
	"account_reference", "description", "shortcode", "transaction_type", "mpesa_receipt_number", "checkout_request_id",
	"merchant_request_id", "result_code", "result_desc", "failure_reason", "resolved_by", "claimed", "claimed_at",
	"claimed_by", "transaction_date", "updated_at"}

// paymentsCSV serves GET /admin/payments.csv: the filtered list (same
// parameters as /admin/payments), every page of it, streamed row by row.
func (s *Server) paymentsCSV(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	q := queryOf(r)
	q.Cursor = ""
	cw := csv.NewWriter(w)
	started, rows := false, 0
	start := func() {
		if started {
			return
		}
		started = true
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="lipa-payments-`+s.now().In(lipa.NairobiTime).Format("20060102-150405")+`.csv"`)
		w.WriteHeader(http.StatusOK)
		cw.Write(csvHeader)
	}
	flusher, _ := w.(http.Flusher)
	n, err := s.gw.ExportPayments(r.Context(), actor(op), q, func(p *lipa.Payment) error {
		start()
		cw.Write(csvRow(p))
		if n := cw.Error(); n != nil {
			return n
		}
		rows++
		if rows%200 == 0 {
			// Out to the client as it goes: a month of payments never
			// gathers in memory.
			cw.Flush()
			if flusher != nil {
				flusher.Flush()
			}
		}
		return cw.Error()
	})
	if err != nil && !started {
		return err
	}
	if err != nil {
		// The header is sent: cut the answer short so that the client sees
		// an incomplete download, never a silently shorter file.
		s.log.Error("payments export cut short", "operator", op.Operator.Username, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	start()
	cw.Flush()
	return cw.Error()
}

// csvRow is one payment as a CSV row. A cell that a spreadsheet would run
// as a formula (starting with =, +, -, @, a tab or a carriage return: a
// C2B account number is whatever the customer typed) gets a leading
// apostrophe.
func csvRow(p *lipa.Payment) []string {
	t := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339)
	}
	claimed, claimedBy := "false", ""
	if p.Claimed {
		claimed, claimedBy = "true", p.AppName // a claim makes an intake payment the claiming app's
	}
	row := []string{string(p.ID), t(p.CreatedAt), p.AppName, string(p.Type), string(p.Status), p.Amount.String(), p.Currency,
		p.PhoneNumber, p.Reference, p.AccountReference, p.Description, p.ShortCode, p.TransactionType, p.MpesaReceiptNumber,
		p.CheckoutRequestID, p.MerchantRequestID, p.ResultCode, p.ResultDesc, string(p.FailureReason), p.ResolvedBy, claimed,
		t(p.ClaimedAt), claimedBy, t(p.TransactionDate), t(p.UpdatedAt)}
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			row[i] = "'" + c
		}
	}
	return row
}

// payment serves GET /admin/payments/{id}: every field and the timeline.
func (s *Server) payment(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	d, err := s.gw.PaymentDetail(r.Context(), lipa.PaymentID(r.PathValue("id")))
	if err != nil {
		return err
	}
	s.render(w, r, op, http.StatusOK, "payment", "Payment "+string(d.Payment.ID), "payments", d)
	return nil
}

type intakePage struct {
	Payments []lipa.Payment
	NextURL  string
	FirstURL string
}

// intake serves GET /admin/intake: unclaimed C2B payments, oldest first.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	cursor := r.URL.Query().Get("cursor")
	list, next, err := s.gw.Intake(r.Context(), cursor, 0)
	if err != nil {
		return err
	}
	p := intakePage{Payments: list}
	if next != "" {
		p.NextURL = "/admin/intake?" + url.Values{"cursor": {next}}.Encode()
	}
	if cursor != "" {
		p.FirstURL = "/admin/intake"
	}
	s.render(w, r, op, http.StatusOK, "intake", "C2B intake", "intake", p)
	return nil
}

// errorMessage is an error's message, safe to show.
func errorMessage(err error) string {
	var le *lipa.Error
	if errors.As(err, &le) {
		return le.Message
	}
	return "Something went wrong; the log has the details."
}
