package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa/internal/gateway"
)

// cmdApps runs `lipa apps …`, the operator's app management.
func cmdApps(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	asJSON := false
	var rest []string
	for _, a := range args {
		if a == "--json" {
			asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) == 0 {
		return usageError("apps needs a subcommand: create, list, rotate-key, set-webhook, disable or enable")
	}
	sub, rest := rest[0], rest[1:]
	needName := func() (string, error) {
		if len(rest) != 1 {
			return "", usageError(fmt.Sprintf("usage: lipa apps %s NAME", sub))
		}
		return rest[0], nil
	}
	open, audited := openDB, true
	if sub == "list" {
		open, audited = openExistingDB, false // only reads: creates no database and no log file
	}
	db, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log, closeLog := slog.New(slog.DiscardHandler), func() {}
	if audited {
		log, closeLog = auditLogger(cfg)
	}
	defer closeLog()
	gw := gateway.New(db, nil, gateway.Config{Logger: log, KeyRotationGrace: cfg.KeyRotationGrace})
	switch sub {
	case "create":
		name, err := needName()
		if err != nil {
			return err
		}
		app, key, err := gw.CreateApp(ctx, cliActor(), name)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"name": app.Name, "api_key": key.Reveal()})
		}
		fmt.Fprintf(stdout, "Created app %q. Its API key, shown only this once:\n\n    %s\n\nSend it as the X-API-KEY header.\n", app.Name, key.Reveal())
	case "rotate-key":
		name, err := needName()
		if err != nil {
			return err
		}
		key, graceUntil, err := gw.RotateKey(ctx, cliActor(), name)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"name": name, "api_key": key.Reveal(), "old_key_valid_until": graceUntil.Format(time.RFC3339)})
		}
		fmt.Fprintf(stdout, "New API key for %q, shown only this once:\n\n    %s\n\nThe old key keeps working until %s.\n", name, key.Reveal(), graceUntil.Format(time.RFC3339))
	case "set-webhook":
		if len(rest) != 2 {
			return usageError("usage: lipa apps set-webhook NAME URL [--json]   (an empty URL \"\" removes the webhook)")
		}
		secret, err := gw.SetWebhook(ctx, cliActor(), rest[0], rest[1])
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"webhook_url": rest[1], "webhook_secret": secret.Reveal()})
		}
		if rest[1] == "" {
			fmt.Fprintf(stdout, "webhook of %q removed; events stay in GET /api/events/\n", rest[0])
			return nil
		}
		fmt.Fprintf(stdout, "Webhook of %q set to %s. Its signing secret, shown only this once:\n\n    %s\n\nVerify the Lipa-Signature header with it (see the README).\n", rest[0], rest[1], secret.Reveal())
	case "disable", "enable":
		name, err := needName()
		if err != nil {
			return err
		}
		if err := gw.SetAppDisabled(ctx, cliActor(), name, sub == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "app %q %sd\n", name, sub)
	case "list":
		if len(rest) != 0 {
			return usageError("usage: lipa apps list [--json]")
		}
		apps, err := gw.Apps(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := []map[string]any{}
			for _, a := range apps {
				m := map[string]any{"name": a.Name, "id": a.ID, "disabled": a.Disabled, "key_hint": a.KeyHint, "created_at": a.CreatedAt.Format(time.RFC3339),
					"last_used_at": nil, "webhook_url": a.WebhookURL, "webhook_paused": !a.PausedAt.IsZero()}
				if !a.LastUsedAt.IsZero() {
					m["last_used_at"] = a.LastUsedAt.Format(time.RFC3339)
				}
				out = append(out, m)
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tKEY\tLAST USED\tWEBHOOK\tCREATED")
		for _, a := range apps {
			status := "enabled"
			if a.Disabled {
				status = "disabled"
			}
			used := "never"
			if !a.LastUsedAt.IsZero() {
				used = a.LastUsedAt.Format(time.RFC3339)
			}
			hook := "-"
			if a.WebhookURL != "" {
				hook = a.WebhookURL
				if !a.PausedAt.IsZero() {
					hook += " (PAUSED since " + a.PausedAt.Format(time.RFC3339) + ": lipa webhooks redeliver --app " + a.Name + " --failed)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", terminalSafe(a.Name), status, a.KeyHint, used, terminalSafe(hook), a.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		return usageError(fmt.Sprintf("unknown apps subcommand %q: use create, list, rotate-key, set-webhook, disable or enable", sub))
	}
	return nil
}
