package gateway

// This file is the webhook delivery worker: leasing due deliveries fairly
// between apps, POSTing them, and recording the attempts in batches.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/metrics"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/webhook"
)

// DefaultWebhookConcurrency is Config.WebhookConcurrency's default: webhook
// attempts under way at once, per process.
const DefaultWebhookConcurrency = 64

const (
	// webhookTimeout bounds one attempt, from dialling to the end of the
	// answer's body.
	webhookTimeout = 10 * time.Second
	// webhookLease is how long a leased delivery is left alone by every
	// other pass: longer than any attempt and its record.
	webhookLease = 2*webhookTimeout + time.Minute
	// webhookPoll is how often Run looks for due deliveries it was not
	// woken for: retries coming due, and events written by other replicas.
	webhookPoll = 250 * time.Millisecond
)

// webhookPerApp is how many of the process's delivery slots one app may
// hold: a quarter, at least 2.
func webhookPerApp(slots int) int { return max(2, slots/4) }

// deliveries is the delivery worker's state in one process.
type deliveries struct {
	pass sync.Mutex // one delivery pass at a time

	mu     sync.Mutex
	busy   int                // slots taken: attempts under way
	perApp map[lipa.AppID]int // of which, per app
	turn   int                // rotates which app leases first

	queue      []finishedAttempt // attempts waiting to be recorded
	unrecorded int               // attempts made and not yet recorded (queued or being recorded)
	recording  bool              // a goroutine is recording the queue
}

// finishedAttempt is an attempt made, waiting to be recorded.
type finishedAttempt struct {
	d      sqlstore.Delivery
	r      sqlstore.AttemptResult
	result string // metrics.Webhook…
}

// wakeDeliveries asks Run's delivery loop for a pass now (an event was
// committed, a slot came free). It never blocks; wakes coalesce.
func (g *Gateway) wakeDeliveries() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// DeliverWebhooks starts one delivery pass: it leases as many due
// deliveries as there are free delivery slots (Config.WebhookConcurrency per
// process), sharing them between the apps that have deliveries due (each
// app first gets an equal share, in a turn that rotates from pass to pass,
// and never holds more than a quarter of the slots, so one app's slow or
// hanging receiver never holds up the others), and starts for each, in the
// background, a POST of the event to its app's URL with a Lipa-Signature
// header. Of each payment only its earliest pending event is leased, so one
// payment's events arrive in order. A 2xx answer within 10 s delivers it;
// anything else is retried with exponential backoff and jitter (first retry
// after WebhookBackoff, at most an hour apart) until WebhookRetrySpan has
// passed since the event, when the delivery fails and the app's webhook is
// paused (flagged for an operator, resumed by redelivery or by setting the
// webhook again). Every attempt is recorded; attempts that finish together
// are recorded in one transaction, while the freed slots already carry the
// next attempts. Leases keep other replicas off a delivery until its
// attempt is recorded (at least once, never twice at the same time).
//
// It returns how many attempts it started; Wait waits for them. Cancelling
// ctx cuts attempts in flight, which are recorded as failed and retried.
// Run calls it whenever it is woken; tests may call it directly.
func (g *Gateway) DeliverWebhooks(ctx context.Context) (int, error) {
	dl := &g.deliveries
	dl.pass.Lock()
	defer dl.pass.Unlock()
	slots := g.cfg.WebhookConcurrency
	perApp := webhookPerApp(slots)
	dl.mu.Lock()
	free := slots - dl.busy
	if dl.unrecorded >= slots {
		free = 0 // the database is behind: let the records catch up first
	}
	quota := func(app lipa.AppID) int { return perApp - dl.perApp[app] }
	turn := dl.turn
	dl.turn++
	dl.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	now := g.clock()
	var due []sqlstore.Delivery
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		due = nil
		apps, err := tx.DeliveryApps(ctx, now)
		if err != nil || len(apps) == 0 {
			return err
		}
		left := map[lipa.AppID]int{}
		var cands []lipa.AppID
		dl.mu.Lock()
		for i := range apps {
			app := apps[(turn+i)%len(apps)]
			if q := quota(app); q > 0 {
				left[app] = q
				cands = append(cands, app)
			}
		}
		dl.mu.Unlock()
		// Equal shares of the free slots; an app that takes all of its
		// share may have more, and shares what others left in the next
		// round.
		for free > 0 && len(cands) > 0 {
			share := (free + len(cands) - 1) / len(cands)
			var more []lipa.AppID
			for _, app := range cands {
				n := min(share, left[app], free)
				if n == 0 {
					continue
				}
				ds, err := tx.LeaseDeliveries(ctx, app, now, now.Add(webhookLease), n)
				if err != nil {
					return err
				}
				due = append(due, ds...)
				left[app] -= len(ds)
				free -= len(ds)
				if len(ds) == n && left[app] > 0 {
					more = append(more, app)
				}
			}
			cands = more
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	dl.mu.Lock()
	if dl.perApp == nil {
		dl.perApp = map[lipa.AppID]int{}
	}
	for _, d := range due {
		dl.busy++
		dl.perApp[d.AppID]++
	}
	dl.mu.Unlock()
	for _, d := range due {
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			g.recordAttempt(g.attempt(ctx, d))
		}()
	}
	return len(due), nil
}

// attempt makes one attempt at one delivery and returns what to record.
func (g *Gateway) attempt(ctx context.Context, d sqlstore.Delivery) finishedAttempt {
	start := g.now()
	a := sqlstore.Attempt{EventSeq: d.Seq, AttemptedAt: start.UTC(), URL: d.URL}
	result := metrics.WebhookNoAnswer
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
			// Read (a bounded part of) the body, so the connection is
			// kept for the next delivery.
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			a.StatusCode = resp.StatusCode
			result = metrics.WebhookDelivered
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
				result = metrics.WebhookRejected
			}
		}
	}
	a.Latency = g.now().Sub(start)
	r := sqlstore.AttemptResult{Attempt: a, AppID: d.AppID, State: "delivered", Next: g.clock()}
	if err != nil {
		r.Error = truncateText(err.Error(), 300)
		wait := g.cfg.WebhookBackoff
		for i := 0; i < d.Attempts && wait < time.Hour; i++ {
			wait *= 2
		}
		wait = min(wait, time.Hour)
		wait += time.Duration(mrand.Int64N(int64(wait)/5 + 1))
		r.State, r.Next = "pending", g.clock().Add(wait)
		if r.Next.Sub(d.QueuedAt) > g.cfg.WebhookRetrySpan {
			r.State = "failed"
		}
	}
	return finishedAttempt{d: d, r: r, result: result}
}

// recordAttempt frees a finished attempt's slot, wakes the delivery loop to
// fill it, and queues the attempt to be recorded. The first goroutine to
// find nobody recording records the queue, and keeps on while attempts
// finish meanwhile: under load, many attempts share one transaction, and
// recording overlaps the next attempts. The delivery stays leased until its
// record commits (so its payment's next event waits for it), and passes
// lease nothing while a whole slot-load of attempts waits to be recorded.
func (g *Gateway) recordAttempt(f finishedAttempt) {
	dl := &g.deliveries
	dl.mu.Lock()
	dl.busy--
	if dl.perApp[f.d.AppID]--; dl.perApp[f.d.AppID] <= 0 {
		delete(dl.perApp, f.d.AppID)
	}
	dl.unrecorded++
	dl.queue = append(dl.queue, f)
	g.wakeDeliveries()
	if dl.recording {
		dl.mu.Unlock()
		return
	}
	dl.recording = true
	for len(dl.queue) > 0 {
		batch := dl.queue
		dl.queue = nil
		dl.mu.Unlock()
		g.recordBatch(batch)
		dl.mu.Lock()
		dl.unrecorded -= len(batch)
		g.wakeDeliveries() // the payments' next events are due now
	}
	dl.recording = false
	dl.mu.Unlock()
}

// recordBatch records finished attempts in one transaction (one at a time
// if that fails, so one bad record does not hold back the others), then
// logs and counts each. An attempt that cannot be recorded keeps its lease
// until it runs out, and is then made again: at least once.
func (g *Gateway) recordBatch(batch []finishedAttempt) {
	ctx := context.Background() // an attempt cut short by shutdown is still recorded
	rs := make([]sqlstore.AttemptResult, len(batch))
	for i, f := range batch {
		rs[i] = f.r
	}
	recorded := make([]error, len(batch))
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.RecordAttempts(ctx, rs) }); err != nil && len(batch) > 1 {
		for i := range rs {
			recorded[i] = g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.RecordAttempts(ctx, rs[i:i+1]) })
		}
	} else {
		for i := range recorded {
			recorded[i] = err
		}
	}
	for i, f := range batch {
		d, r := f.d, f.r
		log := g.log.With("app_id", d.AppID, "event_id", d.ID, "type", d.Type, "payment_id", d.PaymentID, "attempt", d.Attempts+1)
		if err := recorded[i]; err != nil {
			log.Error("record webhook attempt", "status", r.StatusCode, "err", err)
			continue
		}
		g.metrics.WebhookAttempt(f.result)
		switch r.State {
		case "delivered":
			g.metrics.WebhookDelivered(r.AttemptedAt.Add(r.Latency).Sub(d.CreatedAt))
			log.Info("webhook delivered", "status", r.StatusCode, "latency_ms", r.Latency.Milliseconds())
		case "pending":
			log.Warn("webhook attempt failed; will retry", "status", r.StatusCode, "err", r.Error, "next_attempt_at", r.Next.Format(time.RFC3339))
		default:
			g.metrics.WebhookFailed()
			log.Error("webhook failed for the whole retry span; the app's webhook is paused until redelivery", "err", r.Error)
		}
	}
}

// webhookClient returns the client webhooks are sent with.
func (g *Gateway) webhookClient() *http.Client { return g.webhooks }

// newWebhookClient returns the default webhook client: a 10 s bound on each
// attempt, redirects never followed (a 3xx is not a 2xx: retried), and
// keep-alive connections, up to slots idle ones per receiver, so that a
// busy receiver is not dialled again for every event.
func newWebhookClient(slots int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = slots
	t.MaxIdleConns = max(100, 2*slots)
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Timeout:   webhookTimeout,
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// WebhookBacklog returns how many webhook deliveries are pending in the
// database, for every app and replica: due, waiting for a retry, or under
// way.
func (g *Gateway) WebhookBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		n, err = tx.PendingDeliveries(ctx)
		return err
	})
	return n, err
}
