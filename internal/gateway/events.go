package gateway

// This file is what apps and operators do with events: the feed, an app's
// webhook settings, the delivery history and redelivery.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// SetWebhook sets the named app's webhook URL (absolute http or https) and
// returns a new signing secret, shown this once; deliveries resume. An empty
// url removes the webhook (events stay in the feed). A URL with credentials
// in it (https://user:password@host/) is refused: they would be stored in
// clear and shown wherever the URL is, and the receiver authenticates Lipa
// by the Lipa-Signature header instead. Audited as actor's. Errors: Invalid
// "invalid_webhook_url" (the message never repeats a URL with "@" in it),
// "invalid_actor"; NotFound "app_not_found".
func (g *Gateway) SetWebhook(ctx context.Context, actor Actor, name, rawURL string) (lipa.Secret, error) {
	if err := checkActor(actor); err != nil {
		return "", err
	}
	var secret lipa.Secret
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		shown := RedactURLUserinfo(rawURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return "", lipa.InvalidField("invalid_webhook_url", "url", "webhook URL %q is not an absolute http(s) URL", shown)
		case u.User != nil:
			return "", lipa.InvalidField("invalid_webhook_url", "url", "webhook URL %q carries a user name or password (user:password@), which Lipa would store and show in clear; remove them and have the receiver check the Lipa-Signature header instead", shown)
		}
		b := make([]byte, 32)
		rand.Read(b)
		secret = lipa.Secret("whsec_" + base64.RawURLEncoding.EncodeToString(b))
	}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		before, app, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := tx.SetAppWebhook(ctx, app.ID, rawURL, secret, g.clock()); err != nil {
			return err
		}
		after, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		return g.recordAuditTx(ctx, tx, actor, AuditAppSetWebhook, appTarget(name), "", before, after)
	})
	if err != nil {
		return "", err
	}
	g.log.Info("webhook set", "app", name, "url", rawURL, "actor", actor.String())
	return secret, nil
}

// RedactURLUserinfo returns raw with any user name and password replaced by
// "***" (https://***@host/path), for showing a URL stored before Lipa
// refused credentials in webhook URLs. A URL with an "@" that Lipa cannot
// read as scheme://host/… is hidden whole.
func RedactURLUserinfo(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "(a URL with an @ in it, hidden)"
	case u.User == nil:
		return raw
	}
	u.User = nil
	return strings.Replace(u.String(), "//", "//***@", 1)
}

// Events returns the app's events after the event with ID after (from the
// first when empty), in order, at most limit (1–500, default 100), and
// whether more follow. Errors: Invalid "invalid_limit"; NotFound
// "event_not_found" for an unknown after.
func (g *Gateway) Events(ctx context.Context, app *lipa.App, after, limit string) ([]json.RawMessage, bool, error) {
	n := 100
	if limit != "" {
		v, err := strconv.Atoi(limit)
		if err != nil || v < 1 || v > 500 {
			return nil, false, lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 500")
		}
		n = v
	}
	var evs []sqlstore.Event
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		var seq int64
		if after != "" {
			var err error
			if seq, err = tx.EventSeq(ctx, app.ID, after); err != nil {
				return err
			}
		}
		var err error
		evs, err = tx.Events(ctx, app.ID, seq, n+1)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	more := len(evs) > n
	if more {
		evs = evs[:n]
	}
	out := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		out[i] = e.Payload
	}
	return out, more, nil
}

// DeliveryInfo is one webhook delivery as operators list it.
type DeliveryInfo struct {
	sqlstore.Delivery
	History []sqlstore.Attempt
}

// WebhookDeliveries lists the named app's latest deliveries (at most limit)
// with every attempt of each.
func (g *Gateway) WebhookDeliveries(ctx context.Context, name string, limit int) ([]DeliveryInfo, error) {
	var out []DeliveryInfo
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		app, err := tx.AppByName(ctx, name)
		if err != nil {
			return err
		}
		ds, err := tx.Deliveries(ctx, app.ID, limit)
		if err != nil {
			return err
		}
		for _, d := range ds {
			h, err := tx.Attempts(ctx, d.Seq)
			if err != nil {
				return err
			}
			out = append(out, DeliveryInfo{Delivery: d, History: h})
		}
		return nil
	})
	return out, err
}

// Redeliver queues the named app's event eventID again (or, with an empty
// eventID, every failed delivery), due now with a fresh retry span, and
// resumes a paused webhook. An event recorded before the app had a webhook
// is queued too. It returns how many deliveries were queued. Errors:
// NotFound "app_not_found", "event_not_found" (no such event of this app),
// Conflict "no_webhook" (the app has no webhook URL), Invalid
// "invalid_actor". Audited as actor's.
func (g *Gateway) Redeliver(ctx context.Context, actor Actor, name, eventID string) (int64, error) {
	if err := checkActor(actor); err != nil {
		return 0, err
	}
	var n int64
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		app, err := tx.AppByName(ctx, name)
		if err != nil {
			return err
		}
		wh, err := tx.AppWebhook(ctx, app.ID)
		if err != nil {
			return err
		}
		if wh.URL == "" {
			return lipa.Errorf(lipa.Conflict, "no_webhook", "app %q has no webhook URL; set one with `lipa apps set-webhook`", name)
		}
		if eventID != "" {
			if _, err := tx.EventSeq(ctx, app.ID, eventID); err != nil {
				return err
			}
		}
		if n, err = tx.Redeliver(ctx, app.ID, eventID, g.clock()); err != nil {
			return err
		}
		what := map[string]any{"event_id": eventID, "deliveries": n}
		if eventID == "" {
			what["event_id"] = nil
			what["failed"] = true
		}
		return g.recordAuditTx(ctx, tx, actor, AuditWebhookRedeliver, appTarget(name), "", nil, what)
	})
	if err == nil {
		g.log.Info("webhook redelivery queued", "app", name, "event_id", eventID, "deliveries", n, "actor", actor.String())
	}
	return n, err
}
