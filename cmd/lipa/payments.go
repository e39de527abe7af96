package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

const paymentsUsage = `usage: lipa payments list [--q VALUE] [--app NAME] [--status S] [--type STK|C2B] [--claimed true|false]
                          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--limit N] [--cursor C] [--json]
       lipa payments show PAYMENT_ID [--json]
--q finds a payment by receipt, reference, phone (any Kenyan form), CheckoutRequestID or id, as the console's search box.`

// cmdPayments runs `lipa payments list|show`: the console's payment search
// and payment timeline, on the command line.
func cmdPayments(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		return usageError(paymentsUsage)
	}
	fs := flag.NewFlagSet("payments", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var q gateway.PaymentQuery
	fs.StringVar(&q.Q, "q", "", "")
	fs.StringVar(&q.App, "app", "", "")
	fs.StringVar(&q.Status, "status", "", "")
	fs.StringVar(&q.Type, "type", "", "")
	fs.StringVar(&q.Claimed, "claimed", "", "")
	fs.StringVar(&q.From, "from", "", "")
	fs.StringVar(&q.To, "to", "", "")
	fs.StringVar(&q.Cursor, "cursor", "", "")
	fs.IntVar(&q.Limit, "limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	rest := args[1:]
	var id string
	if args[0] == "show" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usageError(paymentsUsage)
		}
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil || fs.NArg() != 0 {
		return usageError(paymentsUsage)
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log, closeLog := auditLogger(cfg)
	defer closeLog()
	gw := gateway.New(db, nil, gatewayConfig(cfg, "", log))
	if args[0] == "show" {
		d, err := gw.PaymentDetail(ctx, lipa.PaymentID(id))
		if err != nil {
			return err
		}
		return printPayment(stdout, d, *asJSON)
	}
	list, next, err := gw.SearchPayments(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			Payments   []lipa.PaymentView `json:"payments"`
			NextCursor *string            `json:"next_cursor"`
		}{Payments: []lipa.PaymentView{}}
		for i := range list {
			out.Payments = append(out.Payments, lipa.ViewOf(&list[i]))
		}
		if next != "" {
			out.NextCursor = &next
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED (EAT)\tID\tAPP\tTYPE\tSTATUS\tAMOUNT\tPHONE\tREFERENCE\tRECEIPT\tCLAIMED")
	for _, p := range list {
		app := p.AppName
		if app == "" {
			app = "(intake)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\n", p.CreatedAt.In(lipa.NairobiTime).Format("2006-01-02 15:04:05"),
			p.ID, app, p.Type, p.Status, p.Amount, p.PhoneNumber, p.Reference, dash(p.MpesaReceiptNumber), p.Claimed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stdout, "more: lipa payments list … --cursor %s\n", next)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printPayment writes a payment and its timeline, as text or JSON.
func printPayment(w io.Writer, d *gateway.PaymentDetail, asJSON bool) error {
	if asJSON {
		type entry struct {
			At         string `json:"at"`
			Kind       string `json:"kind"`
			Title      string `json:"title"`
			Detail     string `json:"detail"`
			Outcome    string `json:"outcome,omitempty"`
			Source     string `json:"source,omitempty"`
			App        string `json:"app,omitempty"`
			StatusCode int    `json:"status_code,omitempty"`
			LatencyMS  int64  `json:"latency_ms,omitempty"`
			Error      string `json:"error,omitempty"`
			Body       string `json:"body,omitempty"`
		}
		out := struct {
			Payment  lipa.PaymentView `json:"payment"`
			Timeline []entry          `json:"timeline"`
		}{Payment: lipa.ViewOf(&d.Payment), Timeline: []entry{}}
		for _, e := range d.Timeline {
			out.Timeline = append(out.Timeline, entry{At: e.At.UTC().Format(time.RFC3339Nano), Kind: string(e.Kind), Title: e.Title,
				Detail: e.Detail, Outcome: e.Outcome, Source: e.Source, App: e.App, StatusCode: e.StatusCode,
				LatencyMS: e.Latency.Milliseconds(), Error: e.Error, Body: e.Body})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	p := &d.Payment
	app := p.AppName
	if app == "" {
		app = "(intake: no app has claimed it)"
	}
	t := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.In(lipa.NairobiTime).Format("2006-01-02 15:04:05 EAT")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range [][2]string{
		{"id", string(p.ID)}, {"app", app}, {"type", string(p.Type) + " " + p.TransactionType}, {"status", string(p.Status)},
		{"failure_reason", dash(string(p.FailureReason))}, {"resolved_by", dash(p.ResolvedBy)},
		{"amount", "KES " + p.Amount.String()}, {"phone_number", p.PhoneNumber}, {"reference", p.Reference},
		{"account_reference", p.AccountReference}, {"description", p.Description}, {"shortcode", p.ShortCode},
		{"mpesa_receipt_number", dash(p.MpesaReceiptNumber)}, {"checkout_request_id", dash(p.CheckoutRequestID)},
		{"merchant_request_id", dash(p.MerchantRequestID)}, {"result_code", dash(p.ResultCode)}, {"result_desc", dash(p.ResultDesc)},
		{"claimed", fmt.Sprintf("%t %s %s", p.Claimed, d.ClaimedBy, map[bool]string{true: t(p.ClaimedAt)}[p.Claimed])},
		{"transaction_date", t(p.TransactionDate)}, {"created_at", t(p.CreatedAt)}, {"updated_at", t(p.UpdatedAt)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], strings.TrimSpace(f[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ntimeline (oldest first, Kenya time):")
	for _, e := range d.Timeline {
		fmt.Fprintf(w, "\n%s  %s", t(e.At), e.Title)
		if e.Outcome != "" {
			fmt.Fprintf(w, " [%s]", e.Outcome)
		}
		fmt.Fprintf(w, "\n    %s\n", e.Detail)
		if e.Source != "" {
			fmt.Fprintf(w, "    from %s\n", e.Source)
		}
		if e.Body != "" && e.Kind != gateway.TimelineEvent {
			for _, line := range strings.Split(e.Body, "\n") {
				fmt.Fprintf(w, "    | %s\n", line)
			}
		}
	}
	return nil
}
