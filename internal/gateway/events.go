package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/webhook"
)

// The event types Lipa sends apps (webhook.Type… for receivers).
const (
	EventPaymentSucceeded = "payment.succeeded" // an app's payment became SUCCESS
	EventPaymentFailed    = "payment.failed"    // an app's payment became FAILED
	EventPaymentClaimed   = "payment.claimed"   // the app claimed a payment
	EventC2BReceived      = "c2b.received"      // a C2B payment entered the intake pool (sent to every enabled app)
)

// eventBody is the JSON an event carries: its id, type, time and the
// payment as GET /api/payments/{id}/ shows it.
type eventBody struct {
	ID        string           `json:"id"`
	Type      string           `json:"type"`
	CreatedAt string           `json:"created_at"`
	Payment   lipa.PaymentView `json:"payment"`
}

// emitTx records an event about p in the caller's transaction (the outbox:
// the event commits or rolls back with the change that caused it), and
// queues its webhook delivery when the app has a webhook URL. An intake
// payment's c2b.received goes to every enabled app.
func (g *Gateway) emitTx(ctx context.Context, tx *sqlstore.Tx, p *lipa.Payment, typ string) error {
	recipients, err := tx.EventRecipients(ctx, p.AppID)
	if err != nil {
		return err
	}
	now := g.clock()
	for _, r := range recipients {
		e := &sqlstore.Event{ID: newID("evt_"), AppID: r.App, Type: typ, PaymentID: p.ID, CreatedAt: now}
		payload, err := json.Marshal(eventBody{ID: e.ID, Type: typ, CreatedAt: now.Format(time.RFC3339Nano), Payment: lipa.ViewOf(p)})
		if err != nil {
			return err
		}
		e.Payload = payload
		if err := tx.InsertEvent(ctx, e, r.HasWebhook); err != nil {
			return err
		}
	}
	return nil
}

// settledEvent returns the event type for a payment that just became
// final, or "" when its status did not change.
func settledEvent(before lipa.Status, p *lipa.Payment) string {
	switch {
	case before == p.Status:
		return ""
	case p.Status == lipa.StatusSuccess:
		return EventPaymentSucceeded
	case p.Status == lipa.StatusFailed:
		return EventPaymentFailed
	}
	return ""
}

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

// Delivery concurrency: one slow receiver holds at most webhookPerApp of the
// webhookParallel slots, so it never holds up other apps.
const (
	webhookParallel = 8 // attempts under way at once, per process
	webhookPerApp   = 2 // of which one app may hold at most this many
	webhookTimeout  = 10 * time.Second
)

// DeliverWebhooks starts one delivery pass: it leases as many due
// deliveries as there are free delivery slots (webhookParallel per process,
// so one slow receiver holds one slot, never the others or a payment
// request; one replica per delivery), and starts for each, in the
// background, a POST of the event to its app's URL with a Lipa-Signature
// header. A 2xx answer within 10 s delivers it; anything else is retried
// with exponential backoff and jitter (first retry after WebhookBackoff, at
// most an hour apart) until WebhookRetrySpan has passed since the event,
// when the delivery fails and the app's webhook is paused (flagged for an
// operator, resumed by redelivery or by setting the webhook again). Every
// attempt is recorded. It returns how many attempts it started; Wait waits
// for them. Cancelling ctx cuts attempts in flight, which are recorded as
// failed and retried.
func (g *Gateway) DeliverWebhooks(ctx context.Context) (int, error) {
	free := webhookParallel - int(g.inFlight.Load())
	if free <= 0 {
		return 0, nil
	}
	now := g.clock()
	g.appsMu.Lock()
	busy := make(map[lipa.AppID]int, len(g.appsInFlight))
	for k, v := range g.appsInFlight {
		busy[k] = v
	}
	g.appsMu.Unlock()
	var due []sqlstore.Delivery
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		due, err = tx.ClaimDueDeliveries(ctx, now, now.Add(2*webhookTimeout+time.Minute), free, webhookPerApp, busy)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, d := range due {
		g.inFlight.Add(1)
		g.trackApp(d.AppID, 1)
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			defer g.inFlight.Add(-1)
			defer g.trackApp(d.AppID, -1)
			if err := g.deliver(ctx, d); err != nil {
				g.log.Error("record webhook attempt", "event_id", d.ID, "err", err)
			}
		}()
	}
	return len(due), nil
}

// deliver makes one attempt at one delivery and records it.
func (g *Gateway) deliver(ctx context.Context, d sqlstore.Delivery) error {
	start := g.now()
	a := sqlstore.Attempt{EventSeq: d.Seq, AttemptedAt: start.UTC(), URL: d.URL}
	rctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Lipa-Webhooks/1")
		req.Header.Set("Lipa-Event-Id", d.ID)
		req.Header.Set(webhook.HeaderName, webhook.Sign([]byte(d.Secret.Reveal()), start, d.Payload))
		var resp *http.Response
		if resp, err = g.webhookClient().Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			a.StatusCode = resp.StatusCode
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
	}
	a.Latency = g.now().Sub(start)
	log := g.log.With("app_id", d.AppID, "event_id", d.ID, "type", d.Type, "payment_id", d.PaymentID, "attempt", d.Attempts+1)
	state, next := "delivered", g.clock()
	if err != nil {
		a.Error = truncateText(err.Error(), 300)
		wait := g.cfg.WebhookBackoff
		for i := 0; i < d.Attempts && wait < time.Hour; i++ {
			wait *= 2
		}
		wait = min(wait, time.Hour)
		wait += time.Duration(mrand.Int64N(int64(wait)/5 + 1))
		state, next = "pending", g.clock().Add(wait)
		if next.Sub(d.QueuedAt) > g.cfg.WebhookRetrySpan {
			state = "failed"
		}
	}
	dctx := context.WithoutCancel(ctx) // an attempt cut short is still recorded
	err = g.db.InTx(dctx, func(tx *sqlstore.Tx) error {
		if err := tx.RecordAttempt(dctx, a, state, next); err != nil {
			return err
		}
		if state == "failed" {
			return tx.PauseWebhook(dctx, d.AppID, g.clock())
		}
		return nil
	})
	switch state {
	case "delivered":
		log.Info("webhook delivered", "status", a.StatusCode, "latency_ms", a.Latency.Milliseconds())
	case "pending":
		log.Warn("webhook attempt failed; will retry", "status", a.StatusCode, "err", a.Error, "next_attempt_at", next.Format(time.RFC3339))
	default:
		log.Error("webhook failed for the whole retry span; the app's webhook is paused until redelivery", "err", a.Error)
	}
	return err
}

func (g *Gateway) webhookClient() *http.Client {
	if g.cfg.WebhookClient != nil {
		return g.cfg.WebhookClient
	}
	return defaultWebhookClient
}

var defaultWebhookClient = &http.Client{
	Timeout: webhookTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is not a 2xx: retried, never followed
	},
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
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

// trackApp counts an app's webhook attempts under way in this process.
func (g *Gateway) trackApp(app lipa.AppID, delta int) {
	g.appsMu.Lock()
	defer g.appsMu.Unlock()
	if g.appsInFlight == nil {
		g.appsInFlight = map[lipa.AppID]int{}
	}
	if g.appsInFlight[app] += delta; g.appsInFlight[app] <= 0 {
		delete(g.appsInFlight, app)
	}
}
