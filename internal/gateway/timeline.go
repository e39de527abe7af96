package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// TimelineKind says what a timeline entry records.
type TimelineKind string

// The kinds of timeline entry, in the order entries of one instant are
// shown.
const (
	TimelineRequest        TimelineKind = "request"         // the app's STK push request, or the C2B payment being recorded
	TimelineDarajaAnswer   TimelineKind = "daraja_answer"   // Daraja's answer to the STK push
	TimelineSafaricom      TimelineKind = "safaricom"       // a payload Safaricom sent: STK callback, C2B validation or confirmation
	TimelineQuery          TimelineKind = "stk_query"       // an STK push query the reconciler made, with Daraja's answer
	TimelineClaim          TimelineKind = "claim"           // an app claimed the payment
	TimelineEvent          TimelineKind = "event"           // an event for an app (feed and webhook)
	TimelineWebhookAttempt TimelineKind = "webhook_attempt" // one attempt to deliver an event to a webhook
	TimelineReview         TimelineKind = "review"          // a review item about the payment was opened (or closed by Lipa itself)
	TimelineOperator       TimelineKind = "operator"        // an operator's action from the audit log: a review resolution naming the payment, …
)

var timelineOrder = map[TimelineKind]int{TimelineRequest: 0, TimelineDarajaAnswer: 1, TimelineSafaricom: 2, TimelineQuery: 3,
	TimelineReview: 4, TimelineOperator: 5, TimelineClaim: 6, TimelineEvent: 7, TimelineWebhookAttempt: 8}

// TimelineEntry is one thing that happened to a payment.
type TimelineEntry struct {
	At     time.Time // UTC
	Kind   TimelineKind
	Title  string // one line: what it was
	Detail string // what it said, and what Lipa did with it
	// Outcome is, for a stored payload, what Lipa did with it (applied,
	// duplicate, conflict, unmatched, malformed, rejected, …); else "".
	Outcome string
	Body    string // a stored payload, pretty-printed when it is JSON; else ""
	Source  string // where a payload came from (address and path); else ""
	App     string // the app an event, attempt or claim concerns
	// For webhook attempts: the HTTP status (0 when none came), the time
	// taken, and the error.
	StatusCode int
	Latency    time.Duration
	Error      string
	// ReviewID is the review item a review entry or an operator's action
	// concerns; 0 when none.
	ReviewID int64
	// Actor is who performed an operator's action; zero for other kinds.
	Actor Actor
}

// PaymentDetail is a payment with everything that happened to it.
type PaymentDetail struct {
	Payment   lipa.Payment
	ClaimedBy string // the name of the app that claimed it, when claimed
	// Timeline is oldest first: the request, Daraja's answer, every stored
	// Safaricom payload, STK push queries, review items, operators'
	// actions, the claim, events and every webhook attempt.
	Timeline []TimelineEntry
}

// PaymentDetail returns any app's payment (operators see all) with its
// timeline. An unknown id is NotFound "payment_not_found".
//
// Operators' actions come from the audit log: those whose target is the
// payment ("payment:ID"), one of its review items ("review:ID": the items
// naming the payment, or one of its stored payloads) or one of its stored
// payloads ("inbound:ID").
func (g *Gateway) PaymentDetail(ctx context.Context, id lipa.PaymentID) (*PaymentDetail, error) {
	var (
		p        *lipa.Payment
		apps     []lipa.App
		inbound  []sqlstore.Inbound
		items    []sqlstore.ReviewItem
		audit    []sqlstore.AuditEntry
		events   []sqlstore.Event
		attempts map[int64][]sqlstore.Attempt
	)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		if p, err = tx.PaymentByID(ctx, id); err != nil {
			return err
		}
		if apps, err = tx.Apps(ctx); err != nil {
			return err
		}
		if inbound, err = tx.InboundForPayment(ctx, p.ID, p.CheckoutRequestID, p.MpesaReceiptNumber); err != nil {
			return err
		}
		if items, audit, err = operatorRecordTx(ctx, tx, p.ID, inbound); err != nil {
			return err
		}
		if events, err = tx.EventsForPayment(ctx, p.ID); err != nil {
			return err
		}
		seqs := make([]int64, len(events))
		for i, e := range events {
			seqs[i] = e.Seq
		}
		attempts, err = tx.AttemptsOf(ctx, seqs)
		return err
	})
	if err != nil {
		return nil, err
	}
	names := map[lipa.AppID]string{}
	for _, a := range apps {
		names[a.ID] = a.Name
	}
	d := &PaymentDetail{Payment: *p, ClaimedBy: names[p.ClaimedBy]}
	add := func(e TimelineEntry) { d.Timeline = append(d.Timeline, e) }

	if p.Type == lipa.TypeSTK {
		add(TimelineEntry{At: p.CreatedAt, Kind: TimelineRequest, App: p.AppName, Title: "STK push requested by app " + p.AppName,
			Detail: fmt.Sprintf("KES %s from %s, reference %q (shown to the customer as %q), description %q; sent to shortcode %s as %s",
				p.Amount, p.PhoneNumber, p.Reference, p.AccountReference, p.Description, p.ShortCode, p.TransactionType)})
	} else {
		add(TimelineEntry{At: p.CreatedAt, Kind: TimelineRequest, Title: "C2B payment recorded in the intake pool",
			Detail: fmt.Sprintf("KES %s paid to %s with account number %q (%s)", p.Amount, p.ShortCode, p.Reference, p.TransactionType)})
	}
	answered := false
	for _, m := range inbound {
		e := TimelineEntry{At: m.ReceivedAt, Outcome: string(m.Outcome), Body: prettyBody(m.Body), Source: strings.TrimSpace(m.SourceAddr + " " + m.Path)}
		switch m.Kind {
		case sqlstore.InboundSTKPushAnswer:
			answered = true
			e.Kind, e.Title = TimelineDarajaAnswer, "Daraja accepted the STK push"
			e.Detail = fmt.Sprintf("CheckoutRequestID %s, MerchantRequestID %s: %s", p.CheckoutRequestID, p.MerchantRequestID, p.CustomerMessage)
			e.Outcome = "" // Lipa's own request: nothing to decide
		case sqlstore.InboundSTKQuery:
			e.Kind, e.Title = TimelineQuery, "STK push query: Daraja's answer"
			e.Detail = outcomeText(m.Outcome, m.Note)
		case sqlstore.InboundSTKCallback:
			e.Kind, e.Title, e.Detail = TimelineSafaricom, "STK callback from Safaricom", outcomeText(m.Outcome, m.Note)
		case sqlstore.InboundC2BValidation:
			e.Kind, e.Title, e.Detail = TimelineSafaricom, "C2B validation request from Safaricom", outcomeText(m.Outcome, m.Note)
		case sqlstore.InboundC2BConfirmation:
			e.Kind, e.Title, e.Detail = TimelineSafaricom, "C2B confirmation from Safaricom", outcomeText(m.Outcome, m.Note)
		default:
			e.Kind, e.Title, e.Detail = TimelineSafaricom, "Message from Safaricom ("+string(m.Kind)+")", outcomeText(m.Outcome, m.Note)
		}
		add(e)
	}
	if p.Type == lipa.TypeSTK && !answered {
		// Payments from before Daraja's answers were stored, and refused
		// pushes: what the payment row says of the answer.
		switch {
		case p.CheckoutRequestID != "":
			add(TimelineEntry{At: p.CreatedAt, Kind: TimelineDarajaAnswer, Title: "Daraja accepted the STK push",
				Detail: fmt.Sprintf("CheckoutRequestID %s, MerchantRequestID %s: %s (the answer's own time and body were not stored)",
					p.CheckoutRequestID, p.MerchantRequestID, p.CustomerMessage)})
		case p.ResolvedBy == lipa.ResolvedByPush:
			add(TimelineEntry{At: p.CreatedAt, Kind: TimelineDarajaAnswer, Title: "The STK push did not go through",
				Detail: strings.TrimSpace(fmt.Sprintf("%s %s: the payment is FAILED (%s)", p.ResultCode, p.ResultDesc, p.FailureReason))})
		case p.Status == lipa.StatusPending && p.ResultDesc != "":
			add(TimelineEntry{At: p.CreatedAt, Kind: TimelineDarajaAnswer, Title: "Daraja's answer to the STK push is unknown",
				Detail: p.ResultDesc + "; the payment waits for its callback or an STK push query"})
		}
	}
	for _, it := range items {
		e := TimelineEntry{At: it.CreatedAt, Kind: TimelineReview, ReviewID: it.ID,
			Title:  fmt.Sprintf("Review item %d opened: %s", it.ID, strings.ReplaceAll(it.Reason, "_", " ")),
			Detail: it.Note + "; Lipa left it for a person"}
		if it.State == sqlstore.ReviewOpen {
			e.Detail += " (still open: an operator resolves it in the review queue)"
		}
		add(e)
		if it.State == sqlstore.ReviewResolved && it.ResolvedByKind == string(ActorLipa.Kind) {
			add(TimelineEntry{At: it.ResolvedAt, Kind: TimelineReview, ReviewID: it.ID, Actor: ActorLipa,
				Title: fmt.Sprintf("Review item %d closed by Lipa: %s", it.ID, it.Resolution), Detail: it.ResolutionReason})
		}
	}
	for _, a := range audit {
		e := TimelineEntry{At: a.At, Kind: TimelineOperator, Actor: Actor{Kind: ActorKind(a.ActorKind), Name: a.Actor},
			Title: fmt.Sprintf("Operator action %s by %s (%s)", a.Action, a.Actor, a.ActorKind)}
		e.Detail = "on " + a.Target
		if n, ok := strings.CutPrefix(a.Target, "review:"); ok {
			e.ReviewID, _ = strconv.ParseInt(n, 10, 64)
			e.Detail = "on review item " + n
		}
		if a.Reason != "" {
			e.Detail += fmt.Sprintf(", reason %q", a.Reason)
		}
		if a.Before != nil || a.After != nil {
			e.Body = prettyBody(fmt.Appendf(nil, `{"before":%s,"after":%s}`, jsonOrNull(a.Before), jsonOrNull(a.After)))
		}
		add(e)
	}
	if p.Claimed {
		add(TimelineEntry{At: p.ClaimedAt, Kind: TimelineClaim, App: d.ClaimedBy, Title: "Claimed by app " + d.ClaimedBy,
			Detail: "the app used this payment; every later claim is refused"})
	}
	for _, ev := range events {
		add(TimelineEntry{At: ev.CreatedAt, Kind: TimelineEvent, App: names[ev.AppID], Title: "Event " + ev.Type + " for app " + names[ev.AppID],
			Detail: "event " + ev.ID + " (in the app's feed, and sent to its webhook when it has one)", Body: prettyBody(ev.Payload)})
		for _, a := range attempts[ev.Seq] {
			e := TimelineEntry{At: a.AttemptedAt, Kind: TimelineWebhookAttempt, App: names[ev.AppID], StatusCode: a.StatusCode,
				Latency: a.Latency, Error: a.Error, Source: a.URL, Title: "Webhook attempt for event " + ev.ID}
			switch {
			case a.StatusCode >= 200 && a.StatusCode <= 299:
				e.Detail = fmt.Sprintf("delivered to %s: HTTP %d in %d ms", a.URL, a.StatusCode, a.Latency.Milliseconds())
			case a.StatusCode != 0:
				e.Detail = fmt.Sprintf("%s answered HTTP %d in %d ms: will be retried", a.URL, a.StatusCode, a.Latency.Milliseconds())
			default:
				e.Detail = fmt.Sprintf("no answer from %s after %d ms (%s): will be retried", a.URL, a.Latency.Milliseconds(), a.Error)
			}
			add(e)
		}
	}
	sort.SliceStable(d.Timeline, func(i, j int) bool {
		a, b := d.Timeline[i], d.Timeline[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		return timelineOrder[a.Kind] < timelineOrder[b.Kind]
	})
	return d, nil
}

// outcomeText says in words what Lipa did with a stored payload.
func outcomeText(o sqlstore.InboundOutcome, note string) string {
	var s string
	switch o {
	case sqlstore.OutcomeApplied:
		s = "applied: it settled or created this payment"
	case sqlstore.OutcomeDuplicate:
		s = "a repeat of what the payment already said: nothing changed"
	case sqlstore.OutcomeConflict:
		s = "contradicts the payment: stored and flagged, not applied"
	case sqlstore.OutcomeUnmatched:
		s = "no payment had its CheckoutRequestID when it came: stored as unmatched"
	case sqlstore.OutcomeMalformed:
		s = "unreadable: stored, not applied"
	case sqlstore.OutcomeAnswered:
		s = "answered"
	case sqlstore.OutcomeRejected:
		s = "rejected before it was read (path token or source address): changed nothing"
	case sqlstore.OutcomeUnconfirmed:
		s = "held until an STK push query confirms it"
	case sqlstore.OutcomeReceived:
		s = "stored; not interpreted"
	default:
		s = string(o)
	}
	if note != "" {
		s += " (" + note + ")"
	}
	return s
}

// prettyBody returns a stored body for people: indented when it is JSON,
// else as text with invalid UTF-8 replaced.
func prettyBody(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// operatorRecordTx returns the review items about a payment (those naming
// it, and those about one of its stored payloads inbound), oldest first,
// and the audit entries of operators' actions on it, on those items or on
// those payloads, oldest first. Every lookup is an indexed equality.
func operatorRecordTx(ctx context.Context, tx *sqlstore.Tx, id lipa.PaymentID, inbound []sqlstore.Inbound) ([]sqlstore.ReviewItem, []sqlstore.AuditEntry, error) {
	const most = 1000 // more than any payment ever gathers
	items, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{PaymentID: id, Limit: most})
	if err != nil {
		return nil, nil, err
	}
	targets := []string{"payment:" + string(id)}
	for _, m := range inbound {
		if m.Kind == sqlstore.InboundSTKPushAnswer {
			continue // Lipa's own record of Daraja's answer: never reviewed
		}
		more, err := tx.ReviewItems(ctx, sqlstore.ReviewFilter{InboundID: m.ID, Limit: most})
		if err != nil {
			return nil, nil, err
		}
		items = append(items, more...)
		targets = append(targets, "inbound:"+strconv.FormatInt(m.ID, 10))
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	items = slices.CompactFunc(items, func(a, b sqlstore.ReviewItem) bool { return a.ID == b.ID })
	for _, it := range items {
		targets = append(targets, reviewTarget(it.ID))
	}
	audit, err := tx.AuditEntries(ctx, sqlstore.AuditQuery{Targets: targets, Limit: most})
	if err != nil {
		return nil, nil, err
	}
	slices.Reverse(audit)
	return items, audit, nil
}

// jsonOrNull is a stored JSON document, or null when there is none.
func jsonOrNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}
