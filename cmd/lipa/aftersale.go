package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// darajaConfig returns the Daraja client's configuration for Daraja at
// base: the consumer key and secret, the initiator, and the certificate
// its password is encrypted with (MPESA_CERTIFICATE_FILE; in simulator mode
// the simulator's own, darajasim.Certificate; otherwise the client's
// embedded one for the environment).
func (c Config) darajaConfig(base string, log *slog.Logger) (daraja.Config, error) {
	dc := daraja.Config{BaseURL: base, ConsumerKey: c.ConsumerKey, ConsumerSecret: c.ConsumerSecret, Timeout: c.DarajaTimeout,
		Logger: log, InitiatorName: c.InitiatorName, InitiatorPassword: c.InitiatorPassword}
	switch {
	case c.CertificateFile != "":
		cert, err := daraja.LoadCertificate(c.CertificateFile)
		if err != nil {
			return dc, fmt.Errorf("MPESA_CERTIFICATE_FILE: %w", err)
		}
		dc.Certificate = cert
	case c.Environment == envSimulator:
		dc.Certificate = darajasim.Certificate()
	}
	return dc, nil
}

// simulatorInitiators is the built-in simulator's Config.Initiators: the
// configured initiator, so that a wrong password is answered 2001 as
// Daraja does; nil (any) when none is configured.
func (c Config) simulatorInitiators() map[string]lipa.Secret {
	if c.InitiatorName == "" {
		return nil
	}
	return map[string]lipa.Secret{c.InitiatorName: c.InitiatorPassword}
}

// urlOrigin returns scheme://host[:port] of an absolute URL.
func urlOrigin(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "/"); j >= 0 {
			return u[:i+3+j]
		}
	}
	return strings.TrimRight(u, "/")
}

// withResultURLs sets the gateway's result, timeout and Pull callback URLs
// on origin (Lipa's public scheme://host), each ending with the callback
// token (docs/daraja.md "Lipa's result and timeout URLs"), and the
// after-sale settings.
func withResultURLs(cfg Config, gc gateway.Config, origin string, token lipa.Secret) gateway.Config {
	gc.ReversalResultURL = withToken(origin+"/api/reversal/result/", token)
	gc.ReversalTimeoutURL = withToken(origin+"/api/reversal/timeout/", token)
	gc.StatusResultURL = withToken(origin+"/api/status/result/", token)
	gc.StatusTimeoutURL = withToken(origin+"/api/status/timeout/", token)
	gc.PullCallbackURL = withToken(origin+"/api/pull/callback/", token)
	gc.RefundResultTimeout = cfg.RefundResultTimeout
	gc.RefundApproval = cfg.RefundApproval
	gc.PullInterval = cfg.PullInterval
	gc.DarajaLookupsPerHour = cfg.DarajaLookupsPerHour
	return gc
}

// afterSaleGateway builds the gateway of a CLI command that calls Daraja
// for refunds, Transaction Status or Pull: against Daraja, or in simulator
// mode the running `lipa serve`'s built-in simulator (MPESA_BASE_URL when
// set). Daraja's answers go to the result URLs of the running Lipa
// (MPESA_CALLBACK_URL's host, or in simulator mode LISTEN_ADDR), so `lipa
// serve` must be running for them to be applied.
func afterSaleGateway(ctx context.Context, cfg Config, db *sqlstore.DB, log *slog.Logger) (*gateway.Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := cfg.darajaBaseURL("")
	if cfg.Environment == envSimulator && cfg.BaseURL == "" {
		u, err := simulatorURL(ctx, cfg)
		if err != nil {
			return nil, err
		}
		base = u
	}
	dc, err := cfg.darajaConfig(base, log.With("component", "daraja"))
	if err != nil {
		return nil, err
	}
	client, err := daraja.New(dc)
	if err != nil {
		return nil, err
	}
	token, err := callbackToken(ctx, cfg, db)
	if err != nil {
		return nil, err
	}
	origin := urlOrigin(cfg.CallbackURL)
	if cfg.CallbackURL == "" {
		if origin, err = lipaURL(ctx, cfg, db); err != nil {
			return nil, err
		}
	}
	return gateway.New(db, client, withResultURLs(cfg, gatewayConfig(cfg, cfg.CallbackURL, log), origin, token)), nil
}

// settingLipaURL names the setting in which `lipa serve` without
// MPESA_CALLBACK_URL (simulator mode) keeps the URL it serves on, where
// the result URLs of CLI commands point.
const settingLipaURL = "simulator_lipa_url"

// storeLipaURL records the running Lipa's URL in the database.
func storeLipaURL(ctx context.Context, db *sqlstore.DB, u string) error {
	return db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.PutSetting(ctx, settingLipaURL, u) })
}

// lipaURL returns the URL of the running Lipa that serve recorded, or
// LISTEN_ADDR's when none is recorded.
func lipaURL(ctx context.Context, cfg Config, db *sqlstore.DB) (string, error) {
	var u string
	err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		u, err = tx.Setting(ctx, settingLipaURL)
		return err
	})
	if err != nil {
		return "", err
	}
	if u == "" {
		u = localURL(tcpAddr(cfg.ListenAddr))
	}
	return u, nil
}

const refundsUsage = `usage:
  lipa refunds list [--status STATUS] [--payment PAYMENT_ID] [--limit N] [--json]
  lipa refunds show ID [--json]
  lipa refunds approve ID --reason TEXT
  lipa refunds reject ID --reason TEXT
  lipa refunds settle ID --status SUCCESS --receipt RECEIPT --reason TEXT
  lipa refunds settle ID --status FAILED --reason TEXT`

// cmdRefunds runs `lipa refunds …`: refunds for operators, and the
// approval (maker-checker) of those that wait for one.
func cmdRefunds(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError(refundsUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("refunds "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	var status, payment, reason, receipt *string
	var limit *int
	want := 1
	switch sub {
	case "list":
		want = 0
		status, payment, limit = fs.String("status", "", "only refunds with this status"), fs.String("payment", "", "only refunds of this payment"), fs.Int("limit", 100, "how many")
	case "show":
	case "approve", "reject":
		reason = fs.String("reason", "", "why (recorded in the audit log)")
	case "settle":
		reason, status, receipt = fs.String("reason", "", "why (recorded in the audit log)"), fs.String("status", "", "SUCCESS or FAILED"), fs.String("receipt", "", "the reversal's M-Pesa receipt (SUCCESS)")
	default:
		return usageError(fmt.Sprintf("unknown refunds subcommand %q\n%s", sub, refundsUsage))
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != want {
		return usageError(refundsUsage)
	}
	if reason != nil && strings.TrimSpace(*reason) == "" {
		return usageError(fmt.Sprintf("refunds %s needs --reason TEXT: say why, for the audit log", sub))
	}
	readOnly := sub == "list" || sub == "show"
	open, log, closeLog := openDB, slog.New(slog.DiscardHandler), func() {}
	if readOnly {
		open = openExistingDB
	} else {
		log, closeLog = auditLogger(cfg)
	}
	defer closeLog()
	db, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw := gateway.New(db, nil, gatewayConfig(cfg, cfg.CallbackURL, log))
	if sub == "approve" {
		// The approved refund's reversal is sent at once when Daraja can be
		// reached from here; otherwise the running Lipa sends it.
		if g, err := afterSaleGateway(ctx, cfg, db, log); err == nil {
			gw = g
		}
	}
	var r *lipa.Refund
	switch sub {
	case "list":
		rs, err := gw.Refunds(ctx, gateway.RefundFilter{Status: lipa.RefundStatus(*status), PaymentID: lipa.PaymentID(*payment), Limit: *limit})
		if err != nil {
			return err
		}
		return printRefunds(stdout, rs, *asJSON)
	case "show":
		x, err := gw.RefundForOperator(ctx, lipa.RefundID(pos[0]))
		if err != nil {
			return err
		}
		return printRefund(stdout, x, *asJSON)
	case "approve":
		r, err = gw.ApproveRefund(ctx, cliActor(), lipa.RefundID(pos[0]), *reason)
	case "reject":
		r, err = gw.RejectRefund(ctx, cliActor(), lipa.RefundID(pos[0]), *reason)
	case "settle":
		r, err = gw.SettleRefund(ctx, cliActor(), lipa.RefundID(pos[0]), lipa.RefundStatus(strings.ToUpper(*status)), *receipt, *reason)
	}
	if err != nil {
		return err
	}
	x, err := gw.RefundForOperator(ctx, r.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(x.View())
	}
	fmt.Fprintf(stdout, "refund %s %s by %s: now %s\n", r.ID, map[string]string{"approve": "approved", "reject": "rejected", "settle": "settled"}[sub], cliActor(), r.Status)
	if sub == "approve" && r.Status == lipa.RefundPending && r.ConversationID == "" {
		fmt.Fprintln(stdout, "the running Lipa sends its reversal at its next refund pass")
	}
	return nil
}

// printRefunds prints refunds as a table, or a JSON array.
func printRefunds(w io.Writer, rs []gateway.RefundInfo, asJSON bool) error {
	if asJSON {
		out := make([]gateway.RefundView, 0, len(rs))
		for _, r := range rs {
			out = append(out, r.View())
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tAPP\tPAYMENT\tRECEIPT\tAMOUNT\tCREATED\tREASON")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, orDash(r.AppName), r.PaymentID, orDash(r.Receipt), r.Amount,
			r.CreatedAt.Format(time.RFC3339), printable(r.Reason))
	}
	return tw.Flush()
}

// printRefund prints one refund.
func printRefund(w io.Writer, x *gateway.RefundInfo, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(x.View())
	}
	r := x.Refund
	fmt.Fprintf(w, "refund      %s\nstatus      %s\napp         %s\npayment     %s (receipt %s)\namount      %s\nreason      %s\n",
		r.ID, r.Status, orDash(x.AppName), r.PaymentID, orDash(r.Receipt), r.Amount, printable(r.Reason))
	fmt.Fprintf(w, "conversation %s / %s\nresult      %s %s\nfailure     %s\nreversal    %s\nresolved by %s\n",
		orDash(r.ConversationID), orDash(r.OriginatorConversationID), orDash(r.ResultCode), orDash(r.ResultDesc),
		orDash(r.FailureReason), orDash(r.ReversalReceipt), orDash(r.ResolvedBy))
	if r.ApprovalRequired {
		fmt.Fprintf(w, "approval    required; decided by %s: %s\n", orDash(r.DecidedBy), orDash(r.DecisionReason))
	}
	fmt.Fprintf(w, "created     %s\n", r.CreatedAt.Format(time.RFC3339))
	return nil
}

// cmdTransactions runs `lipa transactions status RECEIPT [--wait D]
// [--json]`: what M-Pesa says about a receipt of the shortcode
// (Transaction Status). The answer comes to the running Lipa's result URL;
// this waits for it to be stored.
func cmdTransactions(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	const u = "usage: lipa transactions status RECEIPT [--wait 30s] [--json]"
	if len(args) == 0 || args[0] != "status" {
		return usageError(u)
	}
	fs := flag.NewFlagSet("transactions status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for M-Pesa's answer")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 1 {
		return usageError(u)
	}
	log, closeLog := auditLogger(cfg)
	defer closeLog()
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw, err := afterSaleGateway(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	a, err := gw.AskTransactionStatus(ctx, pos[0], *wait)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(a.View())
	}
	switch {
	case a.State == "sent" || a.State == "sending":
		return fmt.Errorf("M-Pesa has not answered about %s within %s (question %s); the answer is stored when it reaches the running Lipa's result URL: is `lipa serve` running?", a.Receipt, *wait, a.ID)
	case a.State == "failed":
		return fmt.Errorf("M-Pesa did not answer about %s: %s", a.Receipt, a.ResultDesc)
	case !a.Found:
		fmt.Fprintf(stdout, "receipt     %s\nM-Pesa      not found: %s %s\n", a.Receipt, a.ResultCode, printable(a.ResultDesc))
	default:
		d := a.Details
		fmt.Fprintf(stdout, "receipt     %s\nM-Pesa      %s, %s shillings\ncompleted   %s\ndebit       %s\ncredit      %s\nreason      %s\n",
			orDash(d.ReceiptNo), orDash(d.TransactionStatus), d.Amount, timeOrDash(d.FinalisedTime), orDash(d.DebitPartyName),
			orDash(d.CreditPartyName), orDash(d.ReasonType))
	}
	if a.Payment != nil {
		fmt.Fprintf(stdout, "Lipa        payment %s, %s %s, %s shillings\n", a.Payment.ID, a.Payment.Type, a.Payment.Status, a.Payment.Amount)
	} else {
		fmt.Fprintln(stdout, "Lipa        no payment has this receipt")
	}
	return nil
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// cmdPull runs `lipa pull register [--nominated-number N]` and `lipa pull
// run [--since 6h] [--json]`: the Pull Transactions registration of the
// shortcode, and one backfill by hand (see gateway.PullWindow).
func cmdPull(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	const u = "usage: lipa pull register [--nominated-number MSISDN] | lipa pull run [--since 6h] [--json]"
	if len(args) == 0 || (args[0] != "register" && args[0] != "run") {
		return usageError(u)
	}
	fs := flag.NewFlagSet("pull "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	since := fs.Duration("since", 6*time.Hour, "how far back to look (at most 48h)")
	nominated := fs.String("nominated-number", cfg.PullNominatedNumber, "the Safaricom number on the shortcode's KYC record")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil || len(pos) != 0 {
		return usageError(u)
	}
	log, closeLog := auditLogger(cfg)
	defer closeLog()
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw, err := afterSaleGateway(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	if args[0] == "register" {
		if strings.TrimSpace(*nominated) == "" {
			return usageError("pull register needs --nominated-number (or MPESA_PULL_NOMINATED_NUMBER): the Safaricom number on the shortcode's KYC record")
		}
		reg, err := gw.RegisterPull(ctx, *nominated)
		if err != nil {
			return err
		}
		if reg.AlreadyRegistered {
			fmt.Fprintf(stdout, "shortcode %s was already registered for Pull Transactions (%s)\n", cfg.ShortCode, reg.Description)
		} else {
			fmt.Fprintf(stdout, "shortcode %s registered for Pull Transactions (%s)\n", cfg.ShortCode, reg.Description)
		}
		return nil
	}
	if *since <= 0 || *since > daraja.PullWindow {
		return usageError("pull run: --since must be more than 0 and at most 48h (Daraja keeps 48 hours)")
	}
	now := time.Now()
	rep, err := gw.PullWindow(ctx, now.Add(-*since), now)
	if err != nil {
		var le *lipa.Error
		if errors.As(err, &le) {
			return fmt.Errorf("pull run: %s", le.Message)
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"start": rep.Start.Format(time.RFC3339), "end": rep.End.Format(time.RFC3339),
			"pages": rep.Pages, "transactions": rep.Transactions, "known": rep.Known, "created": rep.Created, "settled": rep.Settled,
			"receipts": rep.Receipts, "review": rep.Review, "skipped": rep.Skipped})
	}
	fmt.Fprintf(stdout, "pulled %d transactions from %s to %s: %d already recorded, %d C2B payments created, %d pending pushes settled, %d receipts added, %d for the review queue\n",
		rep.Transactions, rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339), rep.Known, rep.Created, rep.Settled, rep.Receipts, rep.Review)
	if rep.Review > 0 {
		fmt.Fprintln(stdout, "see lipa review list")
	}
	return nil
}
