package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/webhook"
)

// EventWebhookTest is the type of the event an operator sends to check an
// app's webhook (SendTestEvent). It is signed like every event, carries no
// payment ("payment": null) and is not in the app's events feed.
const EventWebhookTest = webhook.TypeWebhookTest

// DeliveryQuery filters the operators' list of webhook deliveries; empty
// fields do not filter.
type DeliveryQuery struct {
	App       string // an app's name
	State     string // pending, delivered or failed
	PaymentID lipa.PaymentID
	Cursor    string // the next cursor of the previous page
	Limit     int    // 1–200; 0 means 50
}

// WebhookDelivery is one event's delivery to an app's webhook, with every
// attempt.
type WebhookDelivery struct {
	EventID   string
	Type      string
	PaymentID lipa.PaymentID
	App       string
	URL       string // the app's webhook URL now
	State     string // pending, delivered or failed
	CreatedAt time.Time
	QueuedAt  time.Time // when it was queued (again, after a redelivery)
	LastError string
	Attempts  []WebhookAttempt
}

// WebhookAttempt is one try at delivering an event.
type WebhookAttempt struct {
	At         time.Time
	URL        string
	StatusCode int // 0 when no HTTP answer came
	Latency    time.Duration
	Error      string
}

// WebhookDeliveryList lists webhook deliveries of every app (or one),
// newest event first, a page at a time, each with every attempt, and
// returns the cursor of the next page ("" on the last). Errors: Invalid
// "invalid_app", "invalid_state", "invalid_limit", "invalid_cursor".
func (g *Gateway) WebhookDeliveryList(ctx context.Context, q DeliveryQuery) ([]WebhookDelivery, string, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 200 {
		return nil, "", lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 200")
	}
	f := sqlstore.DeliveryFilter{PaymentID: q.PaymentID}
	switch st := strings.ToLower(strings.TrimSpace(q.State)); st {
	case "", "pending", "delivered", "failed":
		f.State = st
	default:
		return nil, "", lipa.InvalidField("invalid_state", "state", "state must be pending, delivered or failed")
	}
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", lipa.InvalidField("invalid_cursor", "cursor", "cursor is not one Lipa gave; start from the first page")
		}
		f.BeforeSeq = n
	}
	var (
		ds       []sqlstore.Delivery
		attempts map[int64][]sqlstore.Attempt
		names    map[lipa.AppID]string
	)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		if name := strings.TrimSpace(q.App); name != "" {
			app, err := tx.AppByName(ctx, name)
			if lipa.ErrorKind(err) == lipa.NotFound {
				return lipa.InvalidField("invalid_app", "app", "no app is named %q", name)
			}
			if err != nil {
				return err
			}
			f.App = app.ID
		}
		if names, err = appNames(ctx, tx); err != nil {
			return err
		}
		if ds, err = tx.DeliveryList(ctx, f, limit+1); err != nil {
			return err
		}
		seqs := make([]int64, len(ds))
		for i, d := range ds {
			seqs[i] = d.Seq
		}
		attempts, err = tx.AttemptsOf(ctx, seqs)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = strconv.FormatInt(ds[limit-1].Seq, 10)
	}
	out := make([]WebhookDelivery, len(ds))
	for i, d := range ds {
		w := WebhookDelivery{EventID: d.ID, Type: d.Type, PaymentID: d.PaymentID, App: names[d.AppID], URL: d.URL,
			State: d.State, CreatedAt: d.CreatedAt, QueuedAt: d.QueuedAt, LastError: d.LastError}
		for _, a := range attempts[d.Seq] {
			w.Attempts = append(w.Attempts, WebhookAttempt{At: a.AttemptedAt, URL: a.URL, StatusCode: a.StatusCode, Latency: a.Latency, Error: a.Error})
		}
		out[i] = w
	}
	return out, next, nil
}

// ResumeWebhook lifts the pause on the named app's webhook (set when a
// delivery failed for the whole retry span), so its pending deliveries go
// out again; failed ones stay failed until redelivered. It reports whether
// the webhook was paused. Audited (webhook.resume), also when it was not
// paused. Errors: Invalid "invalid_actor"; NotFound "app_not_found";
// Conflict "no_webhook".
func (g *Gateway) ResumeWebhook(ctx context.Context, actor Actor, name string) (bool, error) {
	if err := checkActor(actor); err != nil {
		return false, err
	}
	var resumed bool
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
			return lipa.Errorf(lipa.Conflict, "no_webhook", "app %q has no webhook URL", name)
		}
		before, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		if resumed, err = tx.ResumeWebhook(ctx, app.ID, g.clock()); err != nil {
			return err
		}
		after, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		return g.recordAuditTx(ctx, tx, actor, AuditWebhookResume, appTarget(name), "", before, after)
	})
	if err == nil {
		g.log.Info("webhook resumed", "app", name, "was_paused", resumed, "by", actor.String())
	}
	return resumed, err
}

// TestDelivery is the result of SendTestEvent.
type TestDelivery struct {
	EventID    string
	URL        string
	StatusCode int // 0 when no HTTP answer came
	Latency    time.Duration
	Error      string // "" when the webhook answered 2xx
}

// SendTestEvent POSTs a signed EventWebhookTest event to the named app's
// webhook URL now, the way deliveries are sent (Lipa-Signature, 10 s
// timeout, no redirects), and reports how the webhook answered. It is not
// queued, retried or put in the app's feed. The sending and how the
// webhook answered are audited (webhook.test). Errors: Invalid
// "invalid_actor"; NotFound "app_not_found"; Conflict "no_webhook".
func (g *Gateway) SendTestEvent(ctx context.Context, actor Actor, name string) (*TestDelivery, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	var wh *sqlstore.Webhook
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		app, err := tx.AppByName(ctx, name)
		if err != nil {
			return err
		}
		wh, err = tx.AppWebhook(ctx, app.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if wh.URL == "" {
		return nil, lipa.Errorf(lipa.Conflict, "no_webhook", "app %q has no webhook URL; set one first", name)
	}
	now := g.clock()
	td := &TestDelivery{EventID: newID("evt_"), URL: wh.URL}
	body, err := json.Marshal(map[string]any{"id": td.EventID, "type": EventWebhookTest, "created_at": now.Format(time.RFC3339Nano), "payment": nil})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	start := g.now()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Lipa-Webhooks/1")
		req.Header.Set("Lipa-Event-Id", td.EventID)
		req.Header.Set(webhook.HeaderName, webhook.Sign([]byte(wh.Secret.Reveal()), start, body))
		var resp *http.Response
		if resp, err = g.webhookClient().Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			td.StatusCode = resp.StatusCode
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
	}
	td.Latency = g.now().Sub(start)
	if err != nil {
		td.Error = truncateText(err.Error(), 300)
	}
	g.log.Info("webhook test event sent", "app", name, "event_id", td.EventID, "status", td.StatusCode,
		"latency_ms", td.Latency.Milliseconds(), "err", td.Error, "by", actor.String())
	// The event went out whatever happens next: its record is written even
	// when the operator's request has been cancelled meanwhile.
	actx := context.WithoutCancel(ctx)
	err = g.db.InTx(actx, func(tx *sqlstore.Tx) error {
		return g.recordAuditTx(actx, tx, actor, AuditWebhookTest, appTarget(name), "", nil,
			map[string]any{"event_id": td.EventID, "webhook_url": RedactURLUserinfo(td.URL), "status_code": td.StatusCode,
				"latency_ms": td.Latency.Milliseconds(), "error": td.Error})
	})
	if err != nil {
		return nil, err
	}
	return td, nil
}
