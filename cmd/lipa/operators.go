package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// cmdReconcile runs `lipa reconcile`: one reconciliation pass, as `serve`
// runs in the background. In simulator mode without MPESA_BASE_URL there is
// no Daraja to query (the built-in simulator lives inside `serve`), so the
// pass only expires payments past LIPA_PENDING_EXPIRY.
func cmdReconcile(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return usageError("usage: lipa reconcile")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var client *daraja.Client
	if cfg.Environment != envSimulator || cfg.BaseURL != "" {
		if client, err = daraja.New(daraja.Config{BaseURL: cfg.darajaBaseURL(""), ConsumerKey: cfg.ConsumerKey,
			ConsumerSecret: cfg.ConsumerSecret, Timeout: cfg.DarajaTimeout}); err != nil {
			return err
		}
	}
	gw := gateway.New(db, client, gatewayConfig(cfg, cfg.CallbackURL, slog.New(slog.DiscardHandler)))
	rep, err := gw.Reconcile(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checked %d pending payments: %d succeeded, %d failed, %d expired, %d still pending\n",
		rep.Checked, rep.Succeeded, rep.Failed, rep.Expired, rep.Deferred)
	if rep.Held > 0 {
		fmt.Fprintf(stdout, "%d past LIPA_PENDING_EXPIRY left PENDING for the review queue (lipa review list)\n", rep.Held)
	}
	return nil
}

// cmdCallbacks runs `lipa callbacks unmatched [--json]` and `lipa callbacks
// match ID PAYMENT_ID [--reason TEXT]` (the review queue's match, addressed
// by the stored callback's ID).
func cmdCallbacks(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	asJSON := len(args) > 0 && args[len(args)-1] == "--json"
	if asJSON {
		args = args[:len(args)-1]
	}
	reason := ""
	if n := len(args); n >= 2 && args[n-2] == "--reason" {
		reason, args = args[n-1], args[:n-2]
	}
	if len(args) == 0 || (args[0] == "unmatched" && len(args) != 1) || (args[0] == "match" && len(args) != 3) ||
		(args[0] != "unmatched" && args[0] != "match") {
		return usageError("usage: lipa callbacks unmatched [--json] | lipa callbacks match ID PAYMENT_ID [--reason TEXT]")
	}
	if args[0] == "unmatched" {
		return listUnmatchedCallbacks(ctx, cfg, asJSON, stdout)
	}
	id, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return usageError("callbacks match: ID must be the number `lipa callbacks unmatched` shows")
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log, closeLog := auditLogger(cfg)
	defer closeLog()
	gw := gateway.New(db, nil, gatewayConfig(cfg, cfg.CallbackURL, log))
	p, err := gw.MatchCallback(ctx, cliActor(), id, lipa.PaymentID(args[2]), reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "callback %d applied to payment %s: now %s\n", id, p.ID, p.Status)
	return nil
}

// listUnmatchedCallbacks runs `lipa callbacks unmatched`, which only reads:
// it creates no database and no log file. The table shows what Safaricom
// sent through terminalSafe.
func listUnmatchedCallbacks(ctx context.Context, cfg Config, asJSON bool, stdout io.Writer) error {
	db, err := openExistingDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw := gateway.New(db, nil, gatewayConfig(cfg, cfg.CallbackURL, slog.New(slog.DiscardHandler)))
	msgs, err := gw.UnmatchedCallbacks(ctx, 1000)
	if err != nil {
		return err
	}
	if asJSON {
		out := []map[string]any{}
		for _, m := range msgs {
			out = append(out, map[string]any{"id": m.ID, "checkout_request_id": m.CheckoutRequestID,
				"received_at": m.ReceivedAt.Format(time.RFC3339), "source": m.SourceAddr, "body": string(m.Body)})
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tCHECKOUT_REQUEST_ID\tRESULT\tSOURCE")
	for _, m := range msgs {
		result := "?"
		if cb, err := daraja.ParseSTKCallback(m.Body); err == nil {
			result = cb.ResultCode + " " + cb.ResultDesc
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.ID, m.ReceivedAt.Format(time.RFC3339), terminalSafe(m.CheckoutRequestID), terminalSafe(result), terminalSafe(m.SourceAddr))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return nil
}
