package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// cliActor is who the audit log names for an operator command: the
// operating-system user running it ($USER when the user database cannot
// say, "unknown" when nothing can).
func cliActor() gateway.Actor {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = "unknown"
	}
	return gateway.Actor{Kind: gateway.ActorCLI, Name: name}
}

// parseInterspersed parses args with fs, allowing flags after positional
// arguments ("dismiss 12 --reason R"), and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// printable escapes control and other non-printing characters (as Go
// would quote them), so that text from Safaricom payloads cannot drive the
// operator's terminal.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// orDash returns s, or "-" when it is empty.
func orDash[T ~string](s T) string {
	if s == "" {
		return "-"
	}
	return printable(string(s))
}

const reviewUsage = `usage:
  lipa review list [--resolved | --all] [--reason REASON] [--limit N] [--json]
  lipa review show ID [--json]
  lipa review match ID PAYMENT_ID --reason TEXT
  lipa review settle ID --status SUCCESS --receipt RECEIPT --reason TEXT
  lipa review settle ID --status FAILED --reason TEXT
  lipa review create-payment ID [--amount A] [--account X] [--phone P] --reason TEXT
  lipa review dismiss ID --reason TEXT`

// cmdReview runs `lipa review …`: the review queue of what Lipa could not
// settle by itself.
func cmdReview(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError(reviewUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("review "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	reason := new(string)
	if sub != "list" && sub != "show" {
		reason = fs.String("reason", "", "why (recorded in the audit log)")
	}
	var all, resolved *bool
	var limit *int
	var reasonFilter, status, receipt, amount, account, phone *string
	want := 0 // positional arguments
	switch sub {
	case "list":
		all, resolved = fs.Bool("all", false, "open and resolved items"), fs.Bool("resolved", false, "resolved items only")
		limit, reasonFilter = fs.Int("limit", 100, "how many items"), fs.String("reason", "", "only items with this reason code")
	case "show", "dismiss":
		want = 1
	case "match":
		want = 2
	case "settle":
		want = 1
		status, receipt = fs.String("status", "", "SUCCESS or FAILED"), fs.String("receipt", "", "the M-Pesa receipt (SUCCESS)")
	case "create-payment":
		want = 1
		amount, account, phone = fs.String("amount", "", "corrected amount"), fs.String("account", "", "corrected account number"), fs.String("phone", "", "corrected phone")
	default:
		return usageError(fmt.Sprintf("unknown review subcommand %q\n%s", sub, reviewUsage))
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != want {
		return usageError(reviewUsage)
	}
	var id int64
	if want > 0 {
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil || id < 1 {
			return usageError(fmt.Sprintf("review %s: ID must be the number `lipa review list` shows", sub))
		}
	}
	switch sub {
	case "match", "settle", "create-payment", "dismiss":
		if strings.TrimSpace(*reason) == "" {
			return usageError(fmt.Sprintf("review %s needs --reason TEXT: say why, for the audit log", sub))
		}
	}
	// list and show only read: they create no database and no log file.
	gw, done, err := commandGateway(ctx, cfg, sub == "list" || sub == "show")
	if err != nil {
		return err
	}
	defer done()
	actor := cliActor()
	var res *gateway.ReviewResult
	switch sub {
	case "list":
		f := gateway.ReviewFilter{State: gateway.ReviewOpen, Reason: gateway.ReviewReason(*reasonFilter), Limit: *limit}
		if *all {
			f.State = ""
		} else if *resolved {
			f.State = gateway.ReviewResolved
		}
		items, err := gw.ReviewItems(ctx, f)
		if err != nil {
			return err
		}
		return printReviewList(stdout, items, *asJSON)
	case "show":
		d, err := gw.ReviewItem(ctx, id)
		if err != nil {
			return err
		}
		return printReviewItem(stdout, d, *asJSON)
	case "match":
		res, err = gw.ResolveMatch(ctx, actor, id, lipa.PaymentID(pos[1]), *reason)
	case "settle":
		res, err = gw.ResolveSettle(ctx, actor, id, gateway.Settlement{Status: lipa.Status(strings.ToUpper(*status)), Receipt: *receipt}, *reason)
	case "create-payment":
		res, err = gw.ResolveCreatePayment(ctx, actor, id, gateway.Correction{Amount: *amount, Account: *account, Phone: *phone}, *reason)
	case "dismiss":
		res, err = gw.ResolveDismiss(ctx, actor, id, *reason)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]any{"item": res.Item.View(), "payment": nil}
		if res.Payment != nil {
			out["payment"] = lipa.ViewOf(res.Payment)
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "review item %d %s by %s", id, res.Item.Resolution, actor)
	if res.Payment != nil {
		fmt.Fprintf(stdout, ": payment %s is %s", res.Payment.ID, res.Payment.Status)
		if res.Payment.MpesaReceiptNumber != "" {
			fmt.Fprintf(stdout, " (receipt %s)", res.Payment.MpesaReceiptNumber)
		}
	}
	fmt.Fprintln(stdout)
	return nil
}

// printReviewList prints review items as a table, or as a JSON array of
// item objects.
func printReviewList(w io.Writer, items []gateway.ReviewItem, asJSON bool) error {
	if asJSON {
		out := make([]gateway.ReviewItemView, 0, len(items))
		for _, it := range items {
			out = append(out, it.View())
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tREASON\tSTATE\tPAYMENT\tCHECKOUT_REQUEST_ID\tRECEIPT\tNOTE")
	for _, it := range items {
		note := []rune(it.Note)
		if len(note) > 70 {
			note = append(note[:69], '…')
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.CreatedAt.Format(time.RFC3339), it.Reason, it.State,
			orDash(it.PaymentID), orDash(it.CheckoutRequestID), orDash(it.Receipt), printable(string(note)))
	}
	return tw.Flush()
}

// printReviewItem prints one item with its stored payload (pretty-printed
// when it is JSON), its payment and its history.
func printReviewItem(w io.Writer, d *gateway.ReviewDetail, asJSON bool) error {
	if asJSON {
		v := d.Item.View()
		if d.Payment != nil {
			pv := lipa.ViewOf(d.Payment)
			v.Payment = &pv
		}
		hist := []gateway.AuditEntryView{}
		for _, e := range d.History {
			hist = append(hist, e.View())
		}
		out := map[string]any{"item": v, "payload": nil, "history": hist}
		if d.Payload != nil {
			body := json.RawMessage(d.Payload.Body)
			if !json.Valid(body) {
				body, _ = json.Marshal(string(d.Payload.Body))
			}
			out["payload"] = map[string]any{"id": d.Payload.ID, "kind": d.Payload.Kind, "path": d.Payload.Path, "source": d.Payload.SourceAddr,
				"received_at": d.Payload.ReceivedAt.Format(time.RFC3339Nano), "outcome": d.Payload.Outcome, "note": d.Payload.Note, "body": body}
		}
		return json.NewEncoder(w).Encode(out)
	}
	it := d.Item
	fmt.Fprintf(w, "Review item %d: %s (%s)\n", it.ID, it.Reason, it.State)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  created\t%s\n", it.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "  note\t%s\n", orDash(it.Note))
	fmt.Fprintf(tw, "  payment\t%s\n", orDash(it.PaymentID))
	fmt.Fprintf(tw, "  checkout_request_id\t%s\n", orDash(it.CheckoutRequestID))
	fmt.Fprintf(tw, "  receipt\t%s\n", orDash(it.Receipt))
	if it.State == gateway.ReviewResolved {
		fmt.Fprintf(tw, "  resolution\t%s by %s at %s\n", it.Resolution, printable(it.ResolvedBy.String()), it.ResolvedAt.Format(time.RFC3339))
		fmt.Fprintf(tw, "  reason\t%s\n", orDash(it.ResolutionReason))
		if it.ResultPaymentID != "" {
			fmt.Fprintf(tw, "  result payment\t%s\n", it.ResultPaymentID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p := d.Payload; p != nil {
		fmt.Fprintf(w, "\nStored payload %d: %s from %s to %s, received %s, outcome %s\n", p.ID, p.Kind, printable(p.SourceAddr),
			printable(p.Path), p.ReceivedAt.Format(time.RFC3339), p.Outcome)
		if p.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", printable(p.Note))
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, p.Body, "  ", "  ") == nil {
			// json.Indent keeps string contents as sent: escape what a
			// terminal would act on.
			fmt.Fprintf(w, "  %s\n", escapeLines(pretty.String()))
		} else {
			fmt.Fprintf(w, "  (not JSON, %d bytes) %s\n", len(p.Body), strconv.QuoteToGraphic(string(p.Body)))
		}
	}
	if d.Payment != nil {
		v, err := json.MarshalIndent(lipa.ViewOf(d.Payment), "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nPayment %s:\n  %s\n", d.Payment.ID, escapeLines(string(v)))
	}
	fmt.Fprintln(w, "\nHistory:")
	fmt.Fprintf(w, "  %s  opened: %s\n", it.CreatedAt.Format(time.RFC3339), it.Reason)
	for _, e := range d.History {
		fmt.Fprintf(w, "  %s  %s by %s: %s\n", e.At.Format(time.RFC3339), e.Action, printable(e.Actor.String()), printable(e.Reason))
	}
	if it.State == gateway.ReviewResolved && it.ResolvedBy == gateway.ActorLipa {
		fmt.Fprintf(w, "  %s  %s by Lipa: %s\n", it.ResolvedAt.Format(time.RFC3339), it.Resolution, printable(it.ResolutionReason))
	}
	return nil
}

// escapeLines escapes non-printing characters line by line.
func escapeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

const auditUsage = "usage: lipa audit list [--actor NAME] [--action ACTION] [--target TARGET] [--since TIME] [--until TIME] [--limit N] [--before ID] [--json]"

// cmdAudit runs `lipa audit list`: operator actions, newest first.
func cmdAudit(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError(auditUsage)
	}
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	actor := fs.String("actor", "", "only this actor (OS user, admin-api, operator)")
	action := fs.String("action", "", "only this action (app.create, review.dismiss, …)")
	target := fs.String("target", "", "only this target (app:NAME, review:ID)")
	since := fs.String("since", "", "RFC 3339 time or a duration ago (24h)")
	until := fs.String("until", "", "RFC 3339 time or a duration ago")
	limit := fs.Int("limit", 50, "how many entries (1-1000)")
	before := fs.Int64("before", 0, "only entries older than this ID (the next page)")
	if pos, err := parseInterspersed(fs, args[1:]); err != nil || len(pos) != 0 {
		return usageError(auditUsage)
	}
	f := gateway.AuditFilter{Actor: *actor, Action: gateway.AuditAction(*action), Target: *target, Limit: *limit, Before: *before}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if t.v == "" {
			continue
		}
		if d, err := time.ParseDuration(t.v); err == nil {
			*t.dst = time.Now().Add(-d)
			continue
		}
		v, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return usageError(fmt.Sprintf("audit list: --%s must be an RFC 3339 time (2026-12-01T00:00:00Z) or a duration (24h)", t.name))
		}
		*t.dst = v
	}
	db, err := openExistingDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw := gateway.New(db, nil, gatewayConfig(cfg, cfg.CallbackURL, slog.New(slog.DiscardHandler)))
	entries, err := gw.AuditLog(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		out := []gateway.AuditEntryView{}
		for _, e := range entries {
			out = append(out, e.View())
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tTARGET\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), printable(e.Actor.String()), e.Action,
			orDash(e.Target), orDash(e.Reason))
	}
	return tw.Flush()
}
