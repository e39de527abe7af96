package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa/internal/gateway"
)

// cmdWebhooks runs `lipa webhooks list --app NAME [--json]` and `lipa
// webhooks redeliver --app NAME (EVENT_ID | --failed)`.
func cmdWebhooks(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	const usage = "usage: lipa webhooks list --app NAME [--limit N] [--json] | lipa webhooks redeliver --app NAME (EVENT_ID | --failed)"
	if len(args) == 0 || (args[0] != "list" && args[0] != "redeliver") {
		return usageError(usage)
	}
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	app := fs.String("app", "", "the app")
	asJSON := fs.Bool("json", false, "print JSON")
	failed := fs.Bool("failed", false, "redeliver every failed delivery")
	limit := fs.Int("limit", 50, "how many deliveries to list")
	if err := fs.Parse(args[1:]); err != nil || *app == "" || *limit < 1 || *limit > 1000 {
		return usageError(usage)
	}
	if args[0] == "list" {
		return listWebhooks(ctx, cfg, *app, *limit, *asJSON, stdout)
	}
	eventID := fs.Arg(0)
	if (eventID == "") == !*failed || fs.NArg() > 1 {
		return usageError(usage)
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log, closeLog := auditLogger(cfg)
	defer closeLog()
	gw := gateway.New(db, nil, gatewayConfig(cfg, "", log))
	n, err := gw.Redeliver(ctx, cliActor(), *app, eventID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d deliveries queued for %q; a running lipa serve sends them within a second\n", n, *app)
	return nil
}

// listWebhooks runs `lipa webhooks list`, which only reads: it creates no
// database and no log file.
func listWebhooks(ctx context.Context, cfg Config, app string, limit int, asJSON bool, stdout io.Writer) error {
	db, err := openExistingDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	gw := gateway.New(db, nil, gatewayConfig(cfg, "", slog.New(slog.DiscardHandler)))
	ds, err := gw.WebhookDeliveries(ctx, app, limit)
	if err != nil {
		return err
	}
	if asJSON {
		out := []map[string]any{}
		for _, d := range ds {
			attempts := []map[string]any{}
			for _, a := range d.History {
				attempts = append(attempts, map[string]any{"at": a.AttemptedAt.Format(time.RFC3339Nano), "status_code": a.StatusCode,
					"latency_ms": a.Latency.Milliseconds(), "error": a.Error})
			}
			out = append(out, map[string]any{"event_id": d.ID, "type": d.Type, "payment_id": d.PaymentID, "state": d.State,
				"attempts": attempts, "last_error": d.LastError, "created_at": d.CreatedAt.Format(time.RFC3339)})
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tPAYMENT\tSTATE\tATTEMPTS")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.ID, d.Type, d.PaymentID, d.State, len(d.History))
		for _, a := range d.History {
			status := strconv.Itoa(a.StatusCode)
			if a.StatusCode == 0 {
				status = "no answer"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d ms\t%s\t\n", a.AttemptedAt.Format(time.RFC3339), status, a.Latency.Milliseconds(), terminalSafe(a.Error))
		}
	}
	return tw.Flush()
}
