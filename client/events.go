package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lipa-gateway/lipa/webhook"
)

// The event types (Event.Type). Ignore types you do not know: Lipa may add
// more.
const (
	EventPaymentSucceeded = webhook.TypePaymentSucceeded // a payment of the app became SUCCESS
	EventPaymentFailed    = webhook.TypePaymentFailed    // a payment of the app became FAILED
	EventPaymentClaimed   = webhook.TypePaymentClaimed   // the app claimed a payment
	EventC2BReceived      = webhook.TypeC2BReceived      // a C2B payment arrived in the shared intake pool
	EventRefundSucceeded  = webhook.TypeRefundSucceeded  // a refund of the app's payment succeeded (Event.Refund)
	EventRefundFailed     = webhook.TypeRefundFailed     // a refund of the app's payment failed or was rejected (Event.Refund)
)

// Event is something that happened to a payment the app can see, as the
// events feed and webhooks carry it. ID is the same on every retry and
// redelivery: deduplicate on it.
type Event struct {
	ID        string    `json:"id"`         // "evt_…"
	Type      string    `json:"type"`       // EventPaymentSucceeded and the others
	CreatedAt time.Time `json:"created_at"` // when it happened, not when it was sent
	Payment   Payment   `json:"payment"`    // the payment as it was just after the event
	Refund    *Refund   `json:"refund"`     // the refund, in refund events; nil in the others
}

// EventPage is one page of the events feed, oldest first.
type EventPage struct {
	Events  []Event
	HasMore bool   // more events follow: ask again with LastID
	LastID  string // the id of the page's last event; "" when the page is empty
}

// EventsQuery says where to read the events feed from.
type EventsQuery struct {
	After string // the id of the last event already read; "" reads from the first
	Limit int    // events per page, 1 to 500 (0: Lipa's default, 100)
}

// EventsPage returns one page of the app's events after q.After, oldest
// first (GET /api/events/). Errors: ErrEventNotFound when q.After is not
// one of the app's events; a *Error with code invalid_limit (400).
func (c *Client) EventsPage(ctx context.Context, q EventsQuery) (*EventPage, error) {
	v := url.Values{}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Events  []Event `json:"events"`
		HasMore bool    `json:"has_more"`
		LastID  *string `json:"last_id"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/events/", query: v, retry: true}, &out); err != nil {
		return nil, err
	}
	p := &EventPage{Events: out.Events, HasMore: out.HasMore}
	if out.LastID != nil {
		p.LastID = *out.LastID
	}
	return p, nil
}

// Events iterates over the app's events after q.After, oldest first,
// fetching page after page (q.Limit per page) until the feed has no more.
// Keep the ID of the last event handled and pass it as After next time to
// read only what is new. An error ends the iteration: it is yielded once,
// with a zero Event.
//
//	for ev, err := range c.Events(ctx, client.EventsQuery{After: lastSeen}) {
//		if err != nil {
//			return err
//		}
//		handle(ev)
//		lastSeen = ev.ID
//	}
func (c *Client) Events(ctx context.Context, q EventsQuery) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			page, err := c.EventsPage(ctx, q)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range page.Events {
				if !yield(ev, nil) {
					return
				}
			}
			if !page.HasMore || page.LastID == "" {
				return
			}
			q.After = page.LastID
		}
	}
}

// ParseWebhook checks that header (the delivery's Lipa-Signature) signs
// body with secret at a time within webhook.DefaultTolerance of now, and
// returns the event body carries. The errors are webhook.Verify's
// (webhook.ErrNoMatch, webhook.ErrTooOld and the others; test with
// errors.Is), or a decoding error.
func ParseWebhook(header string, body, secret []byte, now time.Time) (*Event, error) {
	if err := webhook.Verify(header, body, secret, 0, now); err != nil {
		return nil, err
	}
	return decodeEvent(body)
}

// VerifyWebhook reads a webhook delivery from r (consuming its body),
// checks its Lipa-Signature with secret and the current time, and returns
// its event. The errors are webhook.VerifyRequest's (webhook.ErrNoMatch,
// webhook.ErrTooOld, webhook.ErrMissingHeader, …), or a decoding error.
func VerifyWebhook(r *http.Request, secret []byte) (*Event, error) {
	body, err := webhook.VerifyRequest(r, secret, 0)
	if err != nil {
		return nil, err
	}
	return decodeEvent(body)
}

func decodeEvent(body []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("lipa: decode webhook event: %w", err)
	}
	if ev.ID == "" || ev.Type == "" {
		return nil, errors.New("lipa: decode webhook event: no id or type")
	}
	return &ev, nil
}

// WebhookHandler returns an http.Handler for the app's webhook URL: it
// verifies each delivery with secret (VerifyWebhook) and calls handle with
// its event. It answers 204 when handle returns nil, 400 to a delivery that
// is not Lipa's (bad or stale signature, not an event), and 500 when handle
// fails, so that Lipa delivers the event again later. Lipa delivers at
// least once: handle must skip event IDs it has handled, and should return
// quickly (Lipa waits 10 seconds), leaving slow work for later.
func WebhookHandler(secret []byte, handle func(ctx context.Context, ev *Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := VerifyWebhook(r, secret)
		if err != nil {
			http.Error(w, "not a valid Lipa webhook delivery", http.StatusBadRequest)
			return
		}
		if err := handle(r.Context(), ev); err != nil {
			http.Error(w, "try again later", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
