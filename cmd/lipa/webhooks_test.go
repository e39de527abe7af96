package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
	"github.com/lipa-gateway/lipa/webhook"
)

// These tests drive Lipa's webhooks end to end: a real service (in-process,
// or the built binary when it must be killed), real HTTP receivers that
// check every request with webhook.Verify, the built-in Daraja simulator,
// and the CLI an operator would use.

// whWait bounds each wait for webhook deliveries: retries happen at the
// service's delivery passes, one a second, so a few attempts take several
// seconds. A failure deadline, never an assertion on how long things take.
const whWait = 60 * time.Second

// whLeaseWait bounds the wait for a delivery after lipa serve was killed:
// an attempt in flight at the kill keeps its lease (2 × 10 s + 1 min)
// before another process may make it again.
const whLeaseWait = 150 * time.Second

// whPoll is how often the waits look again.
const whPoll = 50 * time.Millisecond

// The event types, as the issue names them.
const (
	whSucceeded = "payment.succeeded"
	whFailed    = "payment.failed"
	whClaimed   = "payment.claimed"
	whC2B       = "c2b.received"
)

// whStart starts Lipa for a webhook test: retries 200ms after a failure
// (doubling), no per-app rate limit; extra adds or overrides settings.
func whStart(t *testing.T, databaseURL string, extra map[string]string) *testService {
	t.Helper()
	env := map[string]string{"LIPA_WEBHOOK_BACKOFF": "200ms", "LIPA_APP_RATE_LIMIT": "0"}
	maps.Copy(env, extra)
	return startTestService(t, databaseURL, env)
}

// whRequest is one request a receiver got.
type whRequest struct {
	Event     webhook.Event
	Body      []byte
	Header    http.Header
	VerifyErr error // webhook.Verify's verdict with the app's secret, or why the body is not an event
	Attempt   int   // 1 for the first request carrying this event ID, 2 for the next…
	Answer    int   // the status answered; 0 while the receiver is still holding the request
}

// whReceiver is an app's webhook endpoint: a real HTTP server that checks
// every request's Lipa-Signature with webhook.Verify and the app's secret,
// records it, and answers what answer says (400 when the signature is
// wrong, without asking answer).
type whReceiver struct {
	URL    string
	answer func(r *http.Request, ev webhook.Event, attempt int) int

	mu       sync.Mutex
	secret   []byte
	reqs     []whRequest
	attempts map[string]int
}

// newWHReceiver starts a receiver on a free loopback port, closed at
// cleanup.
func newWHReceiver(t *testing.T, answer func(r *http.Request, ev webhook.Event, attempt int) int) *whReceiver {
	t.Helper()
	rc := &whReceiver{answer: answer, attempts: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks/lipa"
	return rc
}

// newWHReceiverAt starts a receiver listening on addr (host:port), closed
// at cleanup.
func newWHReceiverAt(t *testing.T, addr string, answer func(r *http.Request, ev webhook.Event, attempt int) int) *whReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	rc := &whReceiver{answer: answer, attempts: map[string]int{}, URL: "http://" + addr + "/hooks/lipa"}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return rc
}

// whAlways answers every event with status.
func whAlways(status int) func(*http.Request, webhook.Event, int) int {
	return func(*http.Request, webhook.Event, int) int { return status }
}

// whFailFirst answers 500 to the first n requests for each event, then 200.
func whFailFirst(n int) func(*http.Request, webhook.Event, int) int {
	return func(_ *http.Request, _ webhook.Event, attempt int) int {
		if attempt <= n {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
}

// setSecret gives the receiver the app's signing secret.
func (rc *whReceiver) setSecret(secret string) {
	rc.mu.Lock()
	rc.secret = []byte(secret)
	rc.mu.Unlock()
}

func (rc *whReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	secret := rc.secret
	rc.mu.Unlock()
	req := whRequest{Body: body, Header: r.Header.Clone()}
	req.VerifyErr = webhook.Verify(r.Header.Get(webhook.HeaderName), body, secret, 0, time.Now())
	if err != nil {
		req.VerifyErr = fmt.Errorf("read body: %w", err)
	} else if err := json.Unmarshal(body, &req.Event); err != nil && req.VerifyErr == nil {
		req.VerifyErr = fmt.Errorf("body is not an event: %w", err)
	}
	rc.mu.Lock()
	rc.attempts[req.Event.ID]++
	req.Attempt = rc.attempts[req.Event.ID]
	i := len(rc.reqs)
	rc.reqs = append(rc.reqs, req)
	rc.mu.Unlock()
	status := http.StatusBadRequest
	if req.VerifyErr == nil {
		status = rc.answer(r, req.Event, req.Attempt)
	}
	rc.mu.Lock()
	rc.reqs[i].Answer = status
	rc.mu.Unlock()
	w.WriteHeader(status)
}

// requests returns the requests received so far, in arrival order.
func (rc *whReceiver) requests() []whRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// okCounts returns how many 2xx answers each event ID got.
func (rc *whReceiver) okCounts() map[string]int {
	out := map[string]int{}
	for _, r := range rc.requests() {
		if r.Answer >= 200 && r.Answer <= 299 {
			out[r.Event.ID]++
		}
	}
	return out
}

// waitOK waits until every event in ids has been answered with a 2xx.
func (rc *whReceiver) waitOK(t *testing.T, deadline time.Duration, ids ...string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		ok := rc.okCounts()
		var missing []string
		for _, id := range ids {
			if ok[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("receiver: got no 2xx delivery of events %v, want every one of %v delivered (requests: %s)", missing, ids, whSummary(rc.requests()))
		}
		time.Sleep(whPoll)
	}
}

// checkSigned fails the test for every request whose signature did not
// verify with the app's secret or whose body was not an event.
func (rc *whReceiver) checkSigned(t *testing.T) {
	t.Helper()
	for i, r := range rc.requests() {
		if r.VerifyErr != nil {
			t.Errorf("request %d (event %s): webhook.Verify got %v, want nil (header %q, body %s)", i, r.Event.ID, r.VerifyErr, r.Header.Get(webhook.HeaderName), r.Body)
		}
	}
}

// whSummary describes requests briefly, for failure messages.
func whSummary(reqs []whRequest) string {
	var b bytes.Buffer
	for _, r := range reqs {
		fmt.Fprintf(&b, "[%s %s #%d → %d] ", r.Event.Type, r.Event.ID, r.Attempt, r.Answer)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// whCLI runs a lipa command in-process, which must exit 0, and returns its
// stdout.
func whCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, args...)
	if code != 0 {
		t.Fatalf("lipa %v: got exit code %d (stderr %q), want 0", args, code, stderr)
	}
	return stdout
}

// whSetWebhook runs `lipa apps set-webhook NAME URL --json` and returns the
// signing secret it prints.
func whSetWebhook(t *testing.T, env map[string]string, app, hookURL string) string {
	t.Helper()
	stdout := whCLI(t, env, "apps", "set-webhook", app, hookURL, "--json")
	var out struct {
		URL    string `json:"webhook_url"`
		Secret string `json:"webhook_secret"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("lipa apps set-webhook --json: got %q, want a JSON object: %v", stdout, err)
	}
	if out.URL != hookURL || out.Secret == "" {
		t.Fatalf("lipa apps set-webhook --json: got %q, want webhook_url %q and a webhook_secret", stdout, hookURL)
	}
	return out.Secret
}

// whDelivery is one delivery as `lipa webhooks list --json` prints it.
type whDelivery struct {
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	PaymentID string `json:"payment_id"`
	State     string `json:"state"`
	Attempts  []struct {
		At         string `json:"at"`
		StatusCode int    `json:"status_code"`
		Error      string `json:"error"`
	} `json:"attempts"`
	LastError string `json:"last_error"`
}

// codes returns the status code of each attempt, oldest first.
func (d whDelivery) codes() []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.StatusCode)
	}
	return out
}

// whList runs `lipa webhooks list --app NAME --json` and returns the
// deliveries by event ID.
func whList(t *testing.T, env map[string]string, app string) map[string]whDelivery {
	t.Helper()
	stdout := whCLI(t, env, "webhooks", "list", "--app", app, "--json")
	var ds []whDelivery
	if err := json.Unmarshal([]byte(stdout), &ds); err != nil {
		t.Fatalf("lipa webhooks list --json: got %q, want a JSON array: %v", stdout, err)
	}
	out := map[string]whDelivery{}
	for _, d := range ds {
		out[d.EventID] = d
	}
	return out
}

// whWaitList polls `lipa webhooks list` until cond holds and returns the
// deliveries.
func whWaitList(t *testing.T, env map[string]string, app, what string, cond func(map[string]whDelivery) bool) map[string]whDelivery {
	t.Helper()
	end := time.Now().Add(whWait)
	for {
		ds := whList(t, env, app)
		if cond(ds) {
			return ds
		}
		if time.Now().After(end) {
			t.Fatalf("lipa webhooks list --app %s: got %+v, want %s", app, ds, what)
		}
		time.Sleep(whPoll)
	}
}

// whFeedPage is the answer of GET /api/events/.
type whFeedPage struct {
	Events  []json.RawMessage `json:"events"`
	HasMore bool              `json:"has_more"`
	LastID  *string           `json:"last_id"`
}

// whFeed calls GET /api/events/ with the query, which must answer 200. It
// reads the feed raw, not through the client, because the tests check
// each event's exact JSON keys and compare its payment object as sent.
func whFeed(t *testing.T, svc *testService, key, query string) whFeedPage {
	t.Helper()
	r := svc.raw(t, http.MethodGet, "/api/events/"+query, keyHeader(key), nil)
	wantStatus(t, "GET /api/events/"+query, r, http.StatusOK)
	var p whFeedPage
	if err := json.Unmarshal(r.Raw, &p); err != nil || p.Events == nil {
		t.Fatalf("GET /api/events/%s: got %s, want {\"events\": [...], \"has_more\", \"last_id\"}", query, r.Raw)
	}
	return p
}

// whFeedAll returns every event of the app, in the feed's order, once it
// has at least n (PostgreSQL shows an event once the transactions older
// than its own have ended, so it may show up a moment after its change).
func whFeedAll(t *testing.T, svc *testService, key string, n int) []webhook.Event {
	t.Helper()
	end := time.Now().Add(whWait)
	for {
		p := whFeed(t, svc, key, "?limit=500")
		if p.HasMore {
			t.Fatalf("GET /api/events/?limit=500: got has_more true, want every event of this test on one page")
		}
		if len(p.Events) >= n || time.Now().After(end) {
			var out []webhook.Event
			for _, raw := range p.Events {
				out = append(out, whDecode(t, raw))
			}
			return out
		}
		time.Sleep(whPoll)
	}
}

// whDecode decodes an event, which must be exactly {"id", "type",
// "created_at", "payment"} with a non-empty id and a payment object.
func whDecode(t *testing.T, raw []byte) webhook.Event {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("event %s: got something that is not a JSON object, want an event: %v", raw, err)
	}
	keys := slices.Sorted(maps.Keys(fields))
	if want := []string{"created_at", "id", "payment", "type"}; !slices.Equal(keys, want) {
		t.Errorf("event %s: got keys %v, want %v", raw, keys, want)
	}
	var ev webhook.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: got %v decoding it as webhook.Event, want nil", raw, err)
	}
	if ev.ID == "" || ev.CreatedAt.IsZero() || len(ev.Payment) == 0 || ev.Payment[0] != '{' {
		t.Errorf("event %s: got id %q, created_at %v, payment %s; want an id, a time and a payment object", raw, ev.ID, ev.CreatedAt, ev.Payment)
	}
	return ev
}

// whPayment decodes an event's payment.
func whPayment(t *testing.T, ev webhook.Event) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(ev.Payment, &p); err != nil {
		t.Fatalf("event %s: payment %s is not a JSON object: %v", ev.ID, ev.Payment, err)
	}
	return p
}

// whFind returns the event of type typ about payment id in evs.
func whFind(t *testing.T, evs []webhook.Event, typ, paymentID string) webhook.Event {
	t.Helper()
	var found []webhook.Event
	for _, ev := range evs {
		if ev.Type == typ && jsonStr(whPayment(t, ev), "id") == paymentID {
			found = append(found, ev)
		}
	}
	if len(found) != 1 {
		t.Fatalf("events: got %d %s events about payment %s, want 1 (events %v)", len(found), typ, paymentID, evs)
	}
	return found[0]
}

// whIDs returns the IDs of evs.
func whIDs(evs []webhook.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// whSimulateC2B has the built-in simulator pay 50 shillings to account
// through `lipa simulate c2b`, and returns the payment Lipa recorded, as
// the app with key finds it by receipt.
func whSimulateC2B(t *testing.T, svc *testService, key, account string) string {
	t.Helper()
	stdout := whCLI(t, svc.Env, "simulate", "c2b", "--amount", "50", "--account", account, "--phone", "254708374149", "--url", svc.URL)
	m := regexp.MustCompile(`TransID (\S+),`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("lipa simulate c2b: got %q, want a line naming the TransID", stdout)
	}
	return verifyOK(t, svc.appClient(t, key), client.VerifyQuery{Receipt: m[1]}).PaymentID
}

// whPaid pushes to a fresh phone for the app with key and waits until the
// simulator's callback has made it SUCCESS; it returns the payment ID.
func whPaid(t *testing.T, svc *testService, key string) string {
	t.Helper()
	c := svc.appClient(t, key)
	id := pushOK(t, c, freshPhone(), 10, freshRef()).PaymentID
	waitPayment(t, c, id, client.StatusSuccess)
	return id
}

// whClaim claims the payment, which must answer 200.
func whClaim(t *testing.T, svc *testService, key, id string) {
	t.Helper()
	claimOK(t, svc.appClient(t, key), client.ClaimRequest{PaymentID: id})
}

// TestWebhookRetriedUntilDelivered: a receiver that fails the first three
// attempts at each event gets every event exactly once as a 2xx, each
// request signed with the secret set-webhook printed, each body
// {"id","type","created_at","payment"} with the payment as GET
// /api/payments/{id}/ showed it then. c2b.received goes to every enabled
// app with a webhook, and not to a disabled one. `webhooks list` shows the
// three 500s and the 200.
func TestWebhookRetriedUntilDelivered(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		otherKey := svc.createApp(t, "other")
		svc.createApp(t, "off")
		shop := newWHReceiver(t, whFailFirst(3))
		shop.setSecret(whSetWebhook(t, svc.Env, "shop", shop.URL))
		other := newWHReceiver(t, whAlways(http.StatusOK))
		other.setSecret(whSetWebhook(t, svc.Env, "other", other.URL))
		off := newWHReceiver(t, whAlways(http.StatusOK))
		off.setSecret(whSetWebhook(t, svc.Env, "off", off.URL))
		whCLI(t, svc.Env, "apps", "disable", "off")

		// want is, per event type, the payment as GET /api/payments/{id}/
		// showed it right after the change, as JSON (read raw: it is
		// compared with the event's payment object as sent).
		c := svc.appClient(t, key)
		rawPayment := func(id string) map[string]any {
			t.Helper()
			r := svc.raw(t, http.MethodGet, "/api/payments/"+id+"/", keyHeader(key), nil)
			wantStatus(t, "GET /api/payments/"+id+"/", r, http.StatusOK)
			return r.Body
		}
		want := map[string]map[string]any{}
		paid := whPaid(t, svc, key)
		want[whSucceeded] = rawPayment(paid)
		whClaim(t, svc, key, paid)
		want[whClaimed] = rawPayment(paid)
		failed := pushOK(t, c, darajasim.PhoneCancelled, 10, freshRef()).PaymentID
		waitPayment(t, c, failed, client.StatusFailed)
		want[whFailed] = rawPayment(failed)
		c2b := whSimulateC2B(t, svc, key, "WHRETRY1")
		want[whC2B] = rawPayment(c2b)

		feed := whFeedAll(t, svc, key, 4)
		if len(feed) != 4 {
			t.Fatalf("shop's feed: got %d events %v, want 4", len(feed), feed)
		}
		shop.waitOK(t, whWait, whIDs(feed)...)
		otherFeed := whFeedAll(t, svc, otherKey, 1)
		if len(otherFeed) != 1 || otherFeed[0].Type != whC2B {
			t.Fatalf("other's feed: got %v, want one c2b.received", otherFeed)
		}
		other.waitOK(t, whWait, otherFeed[0].ID)
		list := whWaitList(t, svc.Env, "shop", "4 deliveries, each delivered", func(ds map[string]whDelivery) bool {
			n := 0
			for _, d := range ds {
				if d.State == "delivered" {
					n++
				}
			}
			return n == 4
		})

		shop.checkSigned(t)
		other.checkSigned(t)
		reqs := shop.requests()
		for _, ev := range feed {
			t.Run(ev.Type, func(t *testing.T) {
				var answers []int
				var got webhook.Event
				for _, r := range reqs {
					if r.Event.ID == ev.ID {
						answers = append(answers, r.Answer)
						got = whDecode(t, r.Body)
						if ct := r.Header.Get("Content-Type"); ct != "application/json" {
							t.Errorf("Content-Type: got %q, want application/json", ct)
						}
					}
				}
				if w := []int{500, 500, 500, 200}; !slices.Equal(answers, w) {
					t.Errorf("receiver's answers to event %s: got %v, want %v (one 2xx, after three failures)", ev.ID, answers, w)
				}
				if got.Type != ev.Type || !got.CreatedAt.Equal(ev.CreatedAt) {
					t.Errorf("delivered event: got type %q created_at %v, want %q %v as in the feed", got.Type, got.CreatedAt, ev.Type, ev.CreatedAt)
				}
				p := whPayment(t, got)
				// GET /api/payments/{id}/ adds what events leave out: the
				// payment's refunds.
				w := maps.Clone(want[ev.Type])
				delete(w, "refunded_amount")
				delete(w, "refunds")
				for _, k := range []string{"id", "status", "amount"} {
					if p[k] != w[k] {
						t.Errorf("payment.%s: got %v, want %v as GET /api/payments/{id}/ shows it", k, p[k], w[k])
					}
				}
				if diff := cmp.Diff(w, p); diff != "" {
					t.Errorf("payment in the event differs from GET /api/payments/%s/ right after the change (-GET +event):\n%s", w["id"], diff)
				}
				d, ok := list[ev.ID]
				if !ok {
					t.Fatalf("lipa webhooks list: got no delivery of event %s, want one", ev.ID)
				}
				if d.State != "delivered" || d.Type != ev.Type || d.PaymentID != jsonStr(w, "id") || !slices.Equal(d.codes(), []int{500, 500, 500, 200}) {
					t.Errorf("lipa webhooks list: got %+v, want %s of %s delivered after attempts [500 500 500 200]", d, ev.Type, w["id"])
				}
				for i, a := range d.Attempts[:min(3, len(d.Attempts))] {
					if a.Error == "" || a.At == "" {
						t.Errorf("attempt %d: got error %q at %q, want the failure and its time recorded", i+1, a.Error, a.At)
					}
				}
			})
		}

		// One payment's events go out in order: payment.claimed is not
		// tried until payment.succeeded has been delivered.
		var okSucceeded, firstClaimed = -1, -1
		for i, r := range reqs {
			if r.Event.Type == whSucceeded && r.Answer == 200 {
				okSucceeded = i
			}
			if r.Event.Type == whClaimed && firstClaimed < 0 {
				firstClaimed = i
			}
		}
		if firstClaimed < okSucceeded {
			t.Errorf("receiver: got payment.claimed (request %d) before payment.succeeded was delivered (request %d), want them in order: %s", firstClaimed, okSucceeded, whSummary(reqs))
		}

		oreqs := other.requests()
		if len(oreqs) != 1 || oreqs[0].Answer != 200 {
			t.Errorf("other app's receiver: got %s, want the c2b.received once", whSummary(oreqs))
		} else {
			if p := whPayment(t, oreqs[0].Event); p["id"] != c2b {
				t.Errorf("other app's c2b.received: got payment %v, want %s", p["id"], c2b)
			}
			if oreqs[0].Event.ID == whFind(t, feed, whC2B, c2b).ID {
				t.Errorf("c2b.received: got the same event ID %s for two apps, want one event per app", oreqs[0].Event.ID)
			}
		}
		if got := off.requests(); len(got) != 0 {
			t.Errorf("disabled app's receiver: got %s, want nothing", whSummary(got))
		}
	})
}

// TestWebhookReceiverDownThenBack: while the receiver's port refuses
// connections Lipa keeps trying; once it listens it gets every event of the
// feed exactly once, one payment's events in order.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		addr := freeAddr(t) // reserved: nothing listens there until the receiver comes back
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		secret := whSetWebhook(t, svc.Env, "shop", "http://"+addr+"/hooks/lipa")

		var paid []string
		for range 3 {
			id := whPaid(t, svc, key)
			whClaim(t, svc, key, id)
			paid = append(paid, id)
		}
		c := svc.appClient(t, key)
		waitPayment(t, c, pushOK(t, c, darajasim.PhoneCancelled, 10, freshRef()).PaymentID, client.StatusFailed)
		whSimulateC2B(t, svc, key, "WHDOWN1")
		feed := whFeedAll(t, svc, key, 8)
		if len(feed) != 8 {
			t.Fatalf("feed: got %d events, want 8 (3 succeeded, 3 claimed, 1 failed, 1 c2b.received)", len(feed))
		}
		first := whFind(t, feed, whSucceeded, paid[0]).ID
		whWaitList(t, svc.Env, "shop", "at least two failed attempts at the first event", func(ds map[string]whDelivery) bool {
			return len(ds[first].Attempts) >= 2
		})

		rc := newWHReceiverAt(t, addr, whAlways(http.StatusOK))
		rc.setSecret(secret)
		rc.waitOK(t, whWait, whIDs(feed)...)
		rc.checkSigned(t)

		reqs := rc.requests()
		if ok := rc.okCounts(); len(reqs) != len(feed) || len(ok) != len(feed) {
			t.Errorf("receiver: got %s, want each of the %d events exactly once", whSummary(reqs), len(feed))
		}
		arrived := map[string]int{} // event ID → index of its first arrival
		for i, r := range reqs {
			if _, ok := arrived[r.Event.ID]; !ok {
				arrived[r.Event.ID] = i
			}
		}
		for _, id := range paid {
			s, c := whFind(t, feed, whSucceeded, id), whFind(t, feed, whClaimed, id)
			if arrived[s.ID] > arrived[c.ID] {
				t.Errorf("payment %s: got payment.claimed (request %d) before payment.succeeded (request %d), want them in order", id, arrived[c.ID], arrived[s.ID])
			}
		}
		list := whWaitList(t, svc.Env, "shop", "every delivery delivered", func(ds map[string]whDelivery) bool {
			for _, ev := range feed {
				if ds[ev.ID].State != "delivered" {
					return false
				}
			}
			return true
		})
		d := list[first]
		if n := len(d.Attempts); n < 3 || d.Attempts[n-1].StatusCode != 200 {
			t.Fatalf("first event's attempts: got %+v, want failures then a 200", d.Attempts)
		}
		for i, a := range d.Attempts[:len(d.Attempts)-1] {
			if a.StatusCode != 0 || a.Error == "" {
				t.Errorf("attempt %d while the receiver was down: got status %d error %q, want status 0 and the connection error", i+1, a.StatusCode, a.Error)
			}
		}
	})
}

// whProcShop starts lipa serve (the binary bin) on databaseURL, creates the
// app "shop" with its webhook at rc, and has the simulator pay one push. It
// returns the process, its environment (to start it again), the CLI's
// environment and the paid payment's ID.
func whProcShop(t *testing.T, bin, databaseURL string, rc *whReceiver) (p *serveProc, env, cli map[string]string, paymentID string) {
	t.Helper()
	dir := t.TempDir()
	env = map[string]string{
		"DATABASE_URL": databaseURL, "MPESA_ENVIRONMENT": "simulator", "LOG_FILE": filepath.Join(dir, "lipa.log"),
		"LIPA_SIMULATOR_CALLBACK_DELAY": "20ms", "LIPA_RECONCILE_AFTER": "10m", "MPESA_ALLOW_TOKENLESS_CALLBACKS": "true",
		"LIPA_APP_RATE_LIMIT": "0", "LIPA_WEBHOOK_BACKOFF": "200ms",
	}
	cli = map[string]string{"DATABASE_URL": databaseURL, "LOG_FILE": filepath.Join(dir, "cli.log")}
	p = startServeProc(t, bin, t.TempDir(), env)
	var created struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal([]byte(whCLI(t, cli, "apps", "create", "shop", "--json")), &created)
	rc.setSecret(whSetWebhook(t, cli, "shop", rc.URL))
	c := processClient(t, p.url, created.APIKey, 30*time.Second)
	paymentID = pushOK(t, c, freshPhone(), 10, freshRef()).PaymentID
	end := time.Now().Add(whWait)
	for {
		pay, err := c.Payment(context.Background(), paymentID)
		if err == nil && pay.Status == client.StatusSuccess {
			return p, env, cli, paymentID
		}
		if time.Now().After(end) {
			t.Fatalf("payment %s: got %+v (error %v), want SUCCESS", paymentID, pay, err)
		}
		time.Sleep(whPoll)
	}
}

// TestWebhookSurvivesRestart: lipa serve is stopped while a delivery is
// under way; started again on the same database, it delivers the event,
// exactly once as a 2xx.
func TestWebhookSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills lipa serve")
	}
	bin := buildLipa(t)

	// SIGKILL between two failed attempts: nothing is lost.
	t.Run("SIGKILL mid-retry", func(t *testing.T) {
		sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
			var healthy atomic.Bool
			rc := newWHReceiver(t, func(*http.Request, webhook.Event, int) int {
				if healthy.Load() {
					return http.StatusOK
				}
				return http.StatusInternalServerError
			})
			p1, env, cli, id := whProcShop(t, bin, databaseURL, rc)
			var event string
			whWaitList(t, cli, "shop", "two failed attempts recorded", func(ds map[string]whDelivery) bool {
				for _, d := range ds {
					event = d.EventID
					return len(d.Attempts) >= 2
				}
				return false
			})
			p1.kill()
			before := whList(t, cli, "shop")[event]
			if before.State != "pending" || len(before.Attempts) < 2 || slices.ContainsFunc(before.codes(), func(c int) bool { return c != 500 }) {
				t.Fatalf("after the kill: got delivery %+v, want it pending after 500s", before)
			}
			if got := rc.okCounts()[event]; got != 0 {
				t.Fatalf("before the restart: got %d 2xx answers, want none", got)
			}

			healthy.Store(true)
			startServeProc(t, bin, t.TempDir(), env)
			// An attempt in flight at the kill would keep its lease: hence
			// the longer deadline.
			rc.waitOK(t, whLeaseWait, event)
			rc.checkSigned(t)
			if got := rc.okCounts()[event]; got != 1 {
				t.Errorf("receiver: got %d 2xx answers for event %s, want exactly 1 (%s)", got, event, whSummary(rc.requests()))
			}
			after := whWaitList(t, cli, "shop", "the event delivered", func(ds map[string]whDelivery) bool { return ds[event].State == "delivered" })[event]
			if n := len(after.Attempts); n <= len(before.Attempts) || after.Attempts[n-1].StatusCode != 200 {
				t.Errorf("after the restart: got attempts %v, want the %d before the kill then a 200", after.codes(), len(before.Attempts))
			}
			var got webhook.Event
			for _, r := range rc.requests() {
				if r.Answer == 200 {
					got = whDecode(t, r.Body)
				}
			}
			if p := whPayment(t, got); got.Type != whSucceeded || p["id"] != id || p["status"] != "SUCCESS" {
				t.Errorf("delivered event: got %s about %v (%v), want payment.succeeded about %s (SUCCESS)", got.Type, p["id"], p["status"], id)
			}
		})
	})

	// SIGTERM while the receiver holds Lipa's request: the shutdown cuts the
	// attempt short, and the delivery log keeps it (every attempt is kept),
	// so the event is due again at once rather than after its lease.
	t.Run("SIGTERM mid-attempt", func(t *testing.T) {
		sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
			slow := newWHSlow(t)
			p1, env, cli, _ := whProcShop(t, bin, databaseURL, slow.whReceiver)
			slow.waitHeld(t)
			p1.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p1.exited:
			case <-time.After(whWait):
				t.Fatalf("lipa serve: got no exit after SIGTERM, want a graceful stop")
			}
			ds := whList(t, cli, "shop")
			if len(ds) != 1 {
				t.Fatalf("lipa webhooks list: got %+v, want one delivery", ds)
			}
			var d whDelivery
			for _, v := range ds {
				d = v
			}
			if d.State != "pending" || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 0 || d.Attempts[0].Error == "" {
				t.Fatalf("after SIGTERM: got delivery %+v with attempts %+v, want it pending with the interrupted attempt recorded (status 0 and its error)", d, d.Attempts)
			}

			slow.unblock()
			startServeProc(t, bin, t.TempDir(), env)
			slow.waitOK(t, whWait, d.EventID)
			slow.checkSigned(t)
			if got := slow.okCounts()[d.EventID]; got != 1 {
				t.Errorf("receiver: got %d 2xx answers for event %s, want exactly 1 (%s)", got, d.EventID, whSummary(slow.requests()))
			}
		})
	})
}

// TestWebhookRedeliverOneEvent: `webhooks redeliver --app NAME EVENT_ID`
// sends a delivered event again, same ID, signed afresh; an event ID the
// app does not have is an error, not "0 deliveries queued".
func TestWebhookRedeliverOneEvent(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		otherKey := svc.createApp(t, "other")
		rc := newWHReceiver(t, whAlways(http.StatusOK))
		rc.setSecret(whSetWebhook(t, svc.Env, "shop", rc.URL))
		whPaid(t, svc, key)
		whPaid(t, svc, otherKey)
		ev := whFeedAll(t, svc, key, 1)[0].ID
		rc.waitOK(t, whWait, ev)

		out := whCLI(t, svc.Env, "webhooks", "redeliver", "--app", "shop", ev)
		if !regexp.MustCompile(`^1 deliver`).MatchString(out) {
			t.Errorf("lipa webhooks redeliver %s: got %q, want 1 delivery queued", ev, out)
		}
		end := time.Now().Add(whWait)
		for rc.okCounts()[ev] < 2 {
			if time.Now().After(end) {
				t.Fatalf("receiver: got %s, want event %s a second time", whSummary(rc.requests()), ev)
			}
			time.Sleep(whPoll)
		}
		rc.checkSigned(t)
		reqs := rc.requests()
		if a, b := reqs[0], reqs[len(reqs)-1]; !bytes.Equal(a.Body, b.Body) {
			t.Errorf("redelivered body: got %s, want the original %s", b.Body, a.Body)
		}

		tests := []struct{ name, id string }{
			{"unknown event", "evt_NOSUCHEVENT"},
			{"another app's event", whFeedAll(t, svc, otherKey, 1)[0].ID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, stdout, stderr := runCLI(t, svc.Env, "webhooks", "redeliver", "--app", "shop", tt.id)
				if code == 0 {
					t.Errorf("lipa webhooks redeliver --app shop %s: got exit code 0 (stdout %q), want an error naming the unknown event", tt.id, stdout)
				} else if !bytes.Contains([]byte(stderr), []byte(tt.id)) && !bytes.Contains([]byte(stderr), []byte("event_not_found")) {
					t.Errorf("lipa webhooks redeliver --app shop %s: got stderr %q, want it to name the event", tt.id, stderr)
				}
			})
		}
	})
}

// TestWebhookSignatureRejectsTamperAndReplay takes a delivery Lipa really
// sent and checks that webhook.Verify refuses it modified or replayed.
func TestWebhookSignatureRejectsTamperAndReplay(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		rc := newWHReceiver(t, whAlways(http.StatusNoContent))
		secret := whSetWebhook(t, svc.Env, "shop", rc.URL)
		rc.setSecret(secret)
		whPaid(t, svc, key)
		rc.waitOK(t, whWait, whIDs(whFeedAll(t, svc, key, 1))...)
		rc.checkSigned(t)
		sent := rc.requests()[0]
		header, body := sent.Header.Get(webhook.HeaderName), sent.Body

		m := regexp.MustCompile(`(?:^|,)\s*t=(\d+)`).FindStringSubmatch(header)
		if m == nil {
			t.Fatalf("Lipa-Signature: got %q, want t=<unix seconds>", header)
		}
		var ts int64
		fmt.Sscan(m[1], &ts)
		signedAt := time.Unix(ts, 0)
		flip := func(i int) []byte {
			b := slices.Clone(body)
			b[i] ^= 0x01
			return b
		}
		tests := []struct {
			name   string
			body   []byte
			secret string
			now    time.Time
			want   error
		}{
			{"as sent", body, secret, signedAt.Add(time.Second), nil},
			{"first byte flipped", flip(0), secret, signedAt.Add(time.Second), webhook.ErrNoMatch},
			{"middle byte flipped", flip(len(body) / 2), secret, signedAt.Add(time.Second), webhook.ErrNoMatch},
			{"last byte flipped", flip(len(body) - 1), secret, signedAt.Add(time.Second), webhook.ErrNoMatch},
			{"byte appended", append(slices.Clone(body), ' '), secret, signedAt.Add(time.Second), webhook.ErrNoMatch},
			{"another secret", body, secret + "x", signedAt.Add(time.Second), webhook.ErrNoMatch},
			{"replayed 6 minutes later", body, secret, signedAt.Add(6 * time.Minute), webhook.ErrTooOld},
			{"tampered and replayed", flip(len(body) / 2), secret, signedAt.Add(6 * time.Minute), webhook.ErrNoMatch},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := webhook.Verify(header, tt.body, []byte(tt.secret), 0, tt.now)
				if (tt.want == nil && err != nil) || !errors.Is(err, tt.want) {
					t.Errorf("webhook.Verify: got %v, want %v", err, tt.want)
				}
			})
		}

		t.Run("VerifyRequest of a tampered body", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/hooks/lipa", bytes.NewReader(flip(len(body)/2)))
			req.Header.Set(webhook.HeaderName, header)
			if _, err := webhook.VerifyRequest(req, []byte(secret), 0); !errors.Is(err, webhook.ErrNoMatch) {
				t.Errorf("webhook.VerifyRequest: got %v, want %v", err, webhook.ErrNoMatch)
			}
		})
		t.Run("VerifyRequest of an old signature", func(t *testing.T) {
			// Lipa's own signature of this body, made 6 minutes ago.
			old := webhook.Sign([]byte(secret), time.Now().Add(-6*time.Minute), body)
			req := httptest.NewRequest(http.MethodPost, "/hooks/lipa", bytes.NewReader(body))
			req.Header.Set(webhook.HeaderName, old)
			if _, err := webhook.VerifyRequest(req, []byte(secret), 0); !errors.Is(err, webhook.ErrTooOld) {
				t.Errorf("webhook.VerifyRequest: got %v, want %v", err, webhook.ErrTooOld)
			}
		})
	})
}

// whSlow is a receiver that holds every request until released.
type whSlow struct {
	*whReceiver
	release chan struct{}
	once    sync.Once
	held    atomic.Int64 // requests being held now
	gaveUp  atomic.Int64 // requests Lipa abandoned (its 10 s timeout) while held
}

// newWHSlow starts a receiver that answers 200 only once unblock is
// called (at cleanup at the latest).
func newWHSlow(t *testing.T) *whSlow {
	t.Helper()
	s := &whSlow{release: make(chan struct{})}
	s.whReceiver = newWHReceiver(t, func(r *http.Request, _ webhook.Event, _ int) int {
		s.held.Add(1)
		defer s.held.Add(-1)
		select {
		case <-s.release:
			return http.StatusOK
		case <-r.Context().Done():
			s.gaveUp.Add(1)
			return http.StatusServiceUnavailable
		}
	})
	t.Cleanup(s.unblock) // before the server closes: Close waits for held requests
	return s
}

func (s *whSlow) unblock() { s.once.Do(func() { close(s.release) }) }

// waitHeld waits until the receiver is holding at least one request.
func (s *whSlow) waitHeld(t *testing.T) {
	t.Helper()
	end := time.Now().Add(whWait)
	for s.held.Load() == 0 {
		if time.Now().After(end) {
			t.Fatalf("slow receiver: got no request, want one held (requests %s)", whSummary(s.requests()))
		}
		time.Sleep(whPoll)
	}
}

// TestWebhookSlowReceiverDoesNotSlowPayments: while the receiver holds
// Lipa's requests unanswered, pushes, their callbacks, verify and claim all
// complete; the events are delivered once it answers.
func TestWebhookSlowReceiverDoesNotSlowPayments(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		slow := newWHSlow(t)
		slow.setSecret(whSetWebhook(t, svc.Env, "shop", slow.URL))
		whPaid(t, svc, key)
		slow.waitHeld(t)

		c := svc.appClient(t, key)
		for i := range 5 {
			phone, ref := freshPhone(), freshRef()
			id := pushOK(t, c, phone, int64(10+i), ref).PaymentID
			waitPayment(t, c, id, client.StatusSuccess)
			v := verifyOK(t, c, client.VerifyQuery{Reference: ref})
			if !v.Paid || v.PaymentID != id {
				t.Fatalf("verify %s: got %+v, want paid payment %s", ref, v, id)
			}
			whClaim(t, svc, key, id)
		}
		if held, gaveUp := slow.held.Load(), slow.gaveUp.Load(); held == 0 || gaveUp != 0 {
			t.Fatalf("after 5 payments: got %d requests held and %d abandoned by Lipa, want the receiver still holding Lipa's request: the payments waited for it", held, gaveUp)
		}

		slow.unblock()
		feed := whFeedAll(t, svc, key, 11)
		if len(feed) != 11 {
			t.Fatalf("feed: got %d events, want 11 (6 succeeded, 5 claimed)", len(feed))
		}
		slow.waitOK(t, whWait, whIDs(feed)...)
		slow.checkSigned(t)
	})
}

// TestWebhookSlowReceiverDoesNotHoldUpOtherApps: while one app's receiver
// holds Lipa's request, another app's receiver still gets its events.
func TestWebhookSlowReceiverDoesNotHoldUpOtherApps(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		slowKey := svc.createApp(t, "slow")
		fastKey := svc.createApp(t, "fast")
		slow := newWHSlow(t)
		slow.setSecret(whSetWebhook(t, svc.Env, "slow", slow.URL))
		var heldThen, gaveUpThen atomic.Int64
		fast := newWHReceiver(t, func(*http.Request, webhook.Event, int) int {
			heldThen.Store(slow.held.Load())
			gaveUpThen.Store(slow.gaveUp.Load())
			return http.StatusOK
		})
		fast.setSecret(whSetWebhook(t, svc.Env, "fast", fast.URL))
		whPaid(t, svc, slowKey)
		slow.waitHeld(t)

		whPaid(t, svc, fastKey)
		fast.waitOK(t, whWait, whIDs(whFeedAll(t, svc, fastKey, 1))...)
		if heldThen.Load() == 0 || gaveUpThen.Load() != 0 {
			t.Errorf("fast app's event arrived when the slow receiver held %d requests and Lipa had abandoned %d; want it while the slow one is still held: one slow receiver holds up every delivery (and the reconciler) until Lipa's 10 s timeout", heldThen.Load(), gaveUpThen.Load())
		}
		fast.checkSigned(t)
	})
}

// TestWebhookRetrySpanPausesThenRedeliver: a receiver failing for the whole
// LIPA_WEBHOOK_RETRY_SPAN leaves the delivery "failed" and the webhook
// paused (new events reach the feed, not the receiver); `webhooks redeliver
// --failed` with the receiver healthy delivers it.
func TestWebhookRetrySpanPausesThenRedeliver(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, map[string]string{"LIPA_WEBHOOK_RETRY_SPAN": "2s"})
		key := svc.createApp(t, "shop")
		otherKey := svc.createApp(t, "other")
		var healthy atomic.Bool
		shop := newWHReceiver(t, func(*http.Request, webhook.Event, int) int {
			if healthy.Load() {
				return http.StatusOK
			}
			return http.StatusInternalServerError
		})
		shop.setSecret(whSetWebhook(t, svc.Env, "shop", shop.URL))
		other := newWHReceiver(t, whAlways(http.StatusOK))
		other.setSecret(whSetWebhook(t, svc.Env, "other", other.URL))

		first := whPaid(t, svc, key)
		ev1 := whFind(t, whFeedAll(t, svc, key, 1), whSucceeded, first).ID
		list := whWaitList(t, svc.Env, "shop", "the event's delivery failed", func(ds map[string]whDelivery) bool {
			return ds[ev1].State == "failed"
		})
		if d := list[ev1]; len(d.Attempts) == 0 || slices.ContainsFunc(d.codes(), func(c int) bool { return c != 500 }) || d.LastError == "" {
			t.Errorf("failed delivery: got %+v, want 500s and the last error", d)
		}

		// Paused: a new event is recorded in the feed but not attempted.
		second := whPaid(t, svc, key)
		ev2 := whFind(t, whFeedAll(t, svc, key, 2), whSucceeded, second).ID
		// The other app's event, due after ev2, being delivered shows that
		// a delivery pass has run since ev2 was due.
		whPaid(t, svc, otherKey)
		other.waitOK(t, whWait, whIDs(whFeedAll(t, svc, otherKey, 1))...)
		for _, r := range shop.requests() {
			if r.Event.ID == ev2 {
				t.Fatalf("paused webhook: got a request for the new event %s, want none until redelivery", ev2)
			}
		}
		if d := whList(t, svc.Env, "shop")[ev2]; d.State != "pending" || len(d.Attempts) != 0 {
			t.Errorf("new event while paused: got %+v, want pending with no attempt", d)
		}

		healthy.Store(true)
		out := whCLI(t, svc.Env, "webhooks", "redeliver", "--app", "shop", "--failed")
		if !regexp.MustCompile(`^1 deliver`).MatchString(out) {
			t.Errorf("lipa webhooks redeliver --failed: got %q, want 1 delivery queued", out)
		}
		shop.waitOK(t, whWait, ev1, ev2)
		shop.checkSigned(t)
		if ok := shop.okCounts(); ok[ev1] != 1 || ok[ev2] != 1 {
			t.Errorf("receiver: got 2xx counts %v, want exactly one for %s and %s", ok, ev1, ev2)
		}
		whWaitList(t, svc.Env, "shop", "both delivered", func(ds map[string]whDelivery) bool {
			return ds[ev1].State == "delivered" && ds[ev2].State == "delivered"
		})
	})
}

// TestEventsFeed: GET /api/events/ lists the app's own events in order and
// pages through them with after=<last_id>, each once; another app's events
// never appear, and bad cursors and limits are errors.
func TestEventsFeed(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := whStart(t, databaseURL, nil)
		key := svc.createApp(t, "shop")
		otherKey := svc.createApp(t, "other")

		otherPaid := whPaid(t, svc, otherKey)
		paid := whPaid(t, svc, key)
		whClaim(t, svc, key, paid)
		c := svc.appClient(t, key)
		failed := pushOK(t, c, darajasim.PhoneCancelled, 10, freshRef()).PaymentID
		waitPayment(t, c, failed, client.StatusFailed)
		whClaim(t, svc, otherKey, otherPaid)
		c2b := whSimulateC2B(t, svc, key, "WHFEED1")

		all := whFeedAll(t, svc, key, 4)
		type typed struct{ Type, Payment string }
		var got []typed
		for _, ev := range all {
			got = append(got, typed{ev.Type, jsonStr(whPayment(t, ev), "id")})
		}
		want := []typed{{whSucceeded, paid}, {whClaimed, paid}, {whFailed, failed}, {whC2B, c2b}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("shop's feed (-want +got):\n%s", diff)
		}
		if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].CreatedAt.Before(all[j].CreatedAt) }) {
			t.Errorf("feed: got created_at out of order, want oldest first")
		}
		otherFeed := whFeedAll(t, svc, otherKey, 3)
		var otherGot []typed
		for _, ev := range otherFeed {
			otherGot = append(otherGot, typed{ev.Type, jsonStr(whPayment(t, ev), "id")})
			if slices.Contains(whIDs(all), ev.ID) {
				t.Errorf("event %s (%s) appears in both apps' feeds, want each app's own", ev.ID, ev.Type)
			}
		}
		if diff := cmp.Diff([]typed{{whSucceeded, otherPaid}, {whClaimed, otherPaid}, {whC2B, c2b}}, otherGot); diff != "" {
			t.Errorf("other's feed (-want +got):\n%s", diff)
		}

		t.Run("pages of one", func(t *testing.T) {
			var paged []string
			after := ""
			for range len(all) + 2 {
				q := "?limit=1"
				if after != "" {
					q += "&after=" + url.QueryEscape(after)
				}
				p := whFeed(t, svc, key, q)
				if len(p.Events) != 1 || p.LastID == nil {
					t.Fatalf("GET /api/events/%s: got %d events, last_id %v; want 1 and its id", q, len(p.Events), p.LastID)
				}
				ev := whDecode(t, p.Events[0])
				if *p.LastID != ev.ID {
					t.Errorf("GET /api/events/%s: got last_id %q, want the event's id %q", q, *p.LastID, ev.ID)
				}
				paged = append(paged, ev.ID)
				after = *p.LastID
				if !p.HasMore {
					break
				}
			}
			if diff := cmp.Diff(whIDs(all), paged); diff != "" {
				t.Errorf("paging with limit=1 (-all at once +paged):\n%s", diff)
			}
			p := whFeed(t, svc, key, "?after="+url.QueryEscape(after))
			if len(p.Events) != 0 || p.HasMore || p.LastID == nil || *p.LastID != after {
				t.Errorf("after the last event: got %d events, has_more %v, last_id %v; want none, false, %q (the position to keep)", len(p.Events), p.HasMore, p.LastID, after)
			}
		})

		t.Run("errors", func(t *testing.T) {
			tests := []struct {
				name, query string
				status      int
				code        string
			}{
				{"unknown after", "?after=evt_NOSUCHEVENT", http.StatusNotFound, "event_not_found"},
				{"another app's event as after", "?after=" + url.QueryEscape(otherFeed[0].ID), http.StatusNotFound, "event_not_found"},
				{"limit 0", "?limit=0", http.StatusBadRequest, "invalid_limit"},
				{"limit -1", "?limit=-1", http.StatusBadRequest, "invalid_limit"},
				{"limit 501", "?limit=501", http.StatusBadRequest, "invalid_limit"},
				{"limit not a number", "?limit=ten", http.StatusBadRequest, "invalid_limit"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					wantError(t, "GET /api/events/"+tt.query, svc.raw(t, http.MethodGet, "/api/events/"+tt.query, keyHeader(key), nil), tt.status, tt.code)
				})
			}
			if r := svc.raw(t, http.MethodGet, "/api/events/", nil, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("GET /api/events/ without a key: got %d, want 401", r.Status)
			}
		})
	})
}
