package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// AuditAction names an operator action in the audit log.
type AuditAction string

// The audited operator actions. Targets are written "app:NAME",
// "review:ID", "inbound:ID" (a stored Safaricom payload), "operator:NAME"
// (an operator account), "payment:ID" (an action on one payment: it shows
// in the payment's timeline, as do the actions on its review items and
// stored payloads) and "payments" (the payments list as a whole).
const (
	AuditAppCreate           AuditAction = "app.create"            // CreateApp; target app:NAME
	AuditAppRotateKey        AuditAction = "app.rotate_key"        // RotateKey
	AuditAppDisable          AuditAction = "app.disable"           // SetAppDisabled(true)
	AuditAppEnable           AuditAction = "app.enable"            // SetAppDisabled(false)
	AuditAppSetWebhook       AuditAction = "app.set_webhook"       // SetWebhook
	AuditWebhookRedeliver    AuditAction = "webhook.redeliver"     // Redeliver; target app:NAME
	AuditCallbackMatch       AuditAction = "callback.match"        // MatchCallback of a payload with no review item; target inbound:ID
	AuditReviewMatch         AuditAction = "review.match"          // ResolveMatch, MatchCallback; target review:ID
	AuditReviewSettle        AuditAction = "review.settle"         // ResolveSettle
	AuditReviewCreatePayment AuditAction = "review.create_payment" // ResolveCreatePayment
	AuditReviewDismiss       AuditAction = "review.dismiss"        // ResolveDismiss
	AuditWebhookResume       AuditAction = "webhook.resume"        // ResumeWebhook; target app:NAME
	AuditWebhookTest         AuditAction = "webhook.test"          // SendTestEvent; target app:NAME
	AuditOperatorCreate      AuditAction = "operator.create"       // CreateOperator; target operator:NAME
	AuditOperatorDisable     AuditAction = "operator.disable"      // SetOperatorDisabled(true)
	AuditOperatorEnable      AuditAction = "operator.enable"       // SetOperatorDisabled(false)
	AuditOperatorPassword    AuditAction = "operator.set_password" // SetOperatorPassword (the password is never recorded)
	AuditPaymentsExport      AuditAction = "payments.export"       // ExportPayments; target payments, after: the filters and the row count
)

// AuditEntry is one operator action as the audit log records it. Before
// and After are JSON documents of the target as it was and became (nil
// when there is nothing to show); they never hold a key or secret.
type AuditEntry struct {
	ID     int64
	At     time.Time // UTC
	Actor  Actor
	Action AuditAction
	Target string
	Reason string // the operator's reason; empty for actions that take none
	Before json.RawMessage
	After  json.RawMessage
}

// AuditEntryView is an audit entry as the CLI's --json and the admin API
// show it: the time in RFC 3339, before and after as JSON (null when
// there is nothing to show).
type AuditEntryView struct {
	ID        int64           `json:"id"`
	At        string          `json:"at"`
	ActorKind ActorKind       `json:"actor_kind"`
	Actor     string          `json:"actor"`
	Action    AuditAction     `json:"action"`
	Target    string          `json:"target"`
	Reason    string          `json:"reason"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
}

// View returns the entry's JSON view.
func (e AuditEntry) View() AuditEntryView {
	v := AuditEntryView{ID: e.ID, At: e.At.Format(time.RFC3339Nano), ActorKind: e.Actor.Kind, Actor: e.Actor.Name,
		Action: e.Action, Target: e.Target, Reason: e.Reason, Before: e.Before, After: e.After}
	if v.Before == nil {
		v.Before = json.RawMessage("null")
	}
	if v.After == nil {
		v.After = json.RawMessage("null")
	}
	return v
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	ActorKind ActorKind
	Actor     string // the actor's name (OS user, "admin-api", operator)
	Action    AuditAction
	Target    string
	Since     time.Time // entries at or after
	Until     time.Time // entries before
	// Before pages newest first: only entries with a smaller ID. Pass the
	// last ID of one page to get the next; 0 starts at the newest.
	Before int64
	// Limit is how many entries at most: 1–1000, default 50.
	Limit int
}

// AuditLog lists audit entries matching f, newest first. A Limit outside
// 0–1000 is Invalid "invalid_limit".
func (g *Gateway) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 1000")
	}
	var rows []sqlstore.AuditEntry
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		rows, err = tx.AuditEntries(ctx, sqlstore.AuditQuery{ActorKind: string(f.ActorKind), Actor: f.Actor, Action: string(f.Action),
			Target: f.Target, Since: f.Since, Until: f.Until, Before: f.Before, Limit: f.Limit})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, AuditEntry{ID: r.ID, At: r.At, Actor: Actor{Kind: ActorKind(r.ActorKind), Name: r.Actor},
			Action: AuditAction(r.Action), Target: r.Target, Reason: r.Reason, Before: r.Before, After: r.After})
	}
	return out, nil
}

// AuditDays reads a range of Kenya days as the console's and the CLI's
// forms give it, from and to as YYYY-MM-DD (either may be empty), into an
// AuditFilter's Since (the start of from) and Until (the end of to, which
// is included). Errors: Invalid "invalid_date" (not a date, or to before
// from).
func AuditDays(from, to string) (since, until time.Time, err error) {
	if since, err = kenyaDay(from, "from"); err != nil {
		return since, until, err
	}
	if until, err = kenyaDay(to, "to"); err != nil {
		return since, until, err
	}
	if !until.IsZero() {
		until = until.AddDate(0, 0, 1)
		if !since.IsZero() && !since.Before(until) {
			return since, until, lipa.InvalidField("invalid_date", "to", "the last day is before the first day")
		}
	}
	return since, until, nil
}

// checkActor refuses the zero Actor, or one of an unknown kind, for an
// audited action: Invalid "invalid_actor". It is checked before anything
// changes.
func checkActor(a Actor) error {
	switch a.Kind {
	case ActorCLI, ActorAPI, ActorConsole:
		if a.Name != "" {
			return nil
		}
	}
	return lipa.Errorf(lipa.Invalid, "invalid_actor", "an operator action needs who performed it (got %q)", a.String())
}

// recordAuditTx appends one operator action to the audit log inside tx,
// the action's own transaction: the action and its record commit together
// or not at all. before and after are marshalled to JSON (nil values are
// stored as NULL); they must not hold secrets.
func (g *Gateway) recordAuditTx(ctx context.Context, tx *sqlstore.Tx, actor Actor, action AuditAction, target, reason string, before, after any) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	e := &sqlstore.AuditEntry{At: g.clock(), ActorKind: string(actor.Kind), Actor: actor.Name, Action: string(action),
		Target: target, Reason: reason}
	var err error
	if e.Before, err = auditJSON(before); err != nil {
		return err
	}
	if e.After, err = auditJSON(after); err != nil {
		return err
	}
	return tx.InsertAudit(ctx, e)
}

// auditJSON marshals v for the audit log; nil stays nil.
func auditJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit entry: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}
