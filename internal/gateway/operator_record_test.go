package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// auditTrail returns "actor action target" of every audit entry, oldest
// first.
func auditTrail(t *testing.T, g *gateway.Gateway, f gateway.AuditFilter) ([]string, []gateway.AuditEntry) {
	t.Helper()
	f.Limit = 1000
	es, err := g.AuditLog(context.Background(), f)
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	slices.Reverse(es)
	var out []string
	for _, e := range es {
		out = append(out, e.Actor.String()+" "+string(e.Action)+" "+e.Target)
	}
	return out, es
}

// TestOperatorAccountActionsAudited: creating, disabling, enabling an
// operator and setting their password are audit entries naming who did it,
// never with the password or its hash; without an actor nothing changes.
func TestOperatorAccountActionsAudited(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		const pw = "Correct-Horse-Battery-4217"
		if _, err := f.g.CreateOperator(ctx, gateway.Actor{}, "nobody", lipa.RoleViewer, pw); lipa.ErrorCode(err) != "invalid_actor" {
			t.Fatalf("CreateOperator without an actor: got %v, want invalid_actor", err)
		}
		if ops, _ := f.g.Operators(ctx); len(ops) != 0 {
			t.Fatalf("operators after a refused creation: got %+v, want none", ops)
		}
		if _, err := f.g.CreateOperator(ctx, cliActor, "amina", lipa.RoleAdmin, pw); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() error{
			func() error { return f.g.SetOperatorDisabled(ctx, cliActor, "amina", true) },
			func() error { return f.g.SetOperatorDisabled(ctx, cliActor, "amina", false) },
			func() error { return f.g.SetOperatorPassword(ctx, cliActor, "amina", pw+"-2") },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		for _, err := range []error{f.g.SetOperatorDisabled(ctx, gateway.Actor{}, "amina", true), f.g.SetOperatorPassword(ctx, gateway.Actor{}, "amina", pw+"-3")} {
			if lipa.ErrorCode(err) != "invalid_actor" {
				t.Errorf("operator change without an actor: got %v, want invalid_actor", err)
			}
		}
		got, es := auditTrail(t, f.g, gateway.AuditFilter{Target: "operator:amina"})
		want := []string{"cli:tester operator.create operator:amina", "cli:tester operator.disable operator:amina",
			"cli:tester operator.enable operator:amina", "cli:tester operator.set_password operator:amina"}
		if !slices.Equal(got, want) {
			t.Fatalf("audit of operator actions, oldest first:\n got %q\nwant %q", got, want)
		}
		for _, e := range es {
			for _, doc := range []json.RawMessage{e.Before, e.After} {
				if s := string(doc); strings.Contains(s, "Correct-Horse") || strings.Contains(s, "argon2") || strings.Contains(s, "password") {
					t.Errorf("%s: got %s, want no password nor hash", e.Action, s)
				}
			}
		}
		var disabled struct {
			Disabled      bool   `json:"disabled"`
			Role          string `json:"role"`
			SessionsEnded *int   `json:"sessions_ended"`
		}
		if err := json.Unmarshal(es[1].After, &disabled); err != nil || !disabled.Disabled || disabled.Role != "admin" || disabled.SessionsEnded == nil {
			t.Errorf("operator.disable after: got %s, want disabled, the role and the sessions ended", es[1].After)
		}
		if !strings.Contains(string(es[1].Before), `"disabled":false`) {
			t.Errorf("operator.disable before: got %s, want disabled false", es[1].Before)
		}
	})
}

// TestWebhookActionsAudited: sending a test event (with how the webhook
// answered) and resuming a webhook are audit entries, like the other
// actions on an app.
func TestWebhookActionsAudited(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
		t.Cleanup(hook.Close)
		if _, err := f.g.SetWebhook(ctx, testOperator, "shop", hook.URL); err != nil {
			t.Fatal(err)
		}
		res, err := f.g.SendTestEvent(ctx, consoleActor, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ResumeWebhook(ctx, consoleActor, "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.SendTestEvent(ctx, gateway.Actor{}, "shop"); lipa.ErrorCode(err) != "invalid_actor" {
			t.Errorf("SendTestEvent without an actor: got %v, want invalid_actor", err)
		}
		if _, err := f.g.ResumeWebhook(ctx, gateway.Actor{}, "shop"); lipa.ErrorCode(err) != "invalid_actor" {
			t.Errorf("ResumeWebhook without an actor: got %v, want invalid_actor", err)
		}
		got, es := auditTrail(t, f.g, gateway.AuditFilter{Target: "app:shop", ActorKind: gateway.ActorConsole})
		if want := []string{"console:boss webhook.test app:shop", "console:boss webhook.resume app:shop"}; !slices.Equal(got, want) {
			t.Fatalf("audit of the console's webhook actions: got %q, want %q", got, want)
		}
		var sent struct {
			EventID    string `json:"event_id"`
			StatusCode int    `json:"status_code"`
			Error      string `json:"error"`
		}
		if err := json.Unmarshal(es[0].After, &sent); err != nil || sent.EventID != res.EventID || sent.StatusCode != http.StatusTeapot || sent.Error == "" {
			t.Errorf("webhook.test after: got %s, want event %s answered 418 with its error", es[0].After, res.EventID)
		}
		if !strings.Contains(string(es[1].After), `"webhook_paused":false`) || strings.Contains(string(es[1].After), "whsec_") {
			t.Errorf("webhook.resume after: got %s, want the app not paused, without its secret", es[1].After)
		}
	})
}

// TestPaymentsExportAudited: an export of payments is an audit entry with
// its filters and how many rows went out, also when it is cut short; a
// refused filter exports nothing and records nothing.
func TestPaymentsExportAudited(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})
		for _, id := range []string{"UKEXPRT001", "UKEXPRT002", "UKEXPRT003"} {
			f.confirm(t, c2bConfirmation(t, id, nil))
		}
		if _, err := f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{Type: "c2b"}, func(*lipa.Payment) error { return nil }); err != nil {
			t.Fatal(err)
		}
		stop := errors.New("client went away")
		n := 0
		if _, err := f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{}, func(*lipa.Payment) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		}); !errors.Is(err, stop) {
			t.Fatalf("ExportPayments cut short: got %v, want the writer's error", err)
		}
		if _, err := f.g.ExportPayments(ctx, consoleActor, gateway.PaymentQuery{From: "yesterday"}, func(*lipa.Payment) error { return nil }); lipa.ErrorCode(err) != "invalid_date" {
			t.Errorf("ExportPayments with a bad date: got %v, want invalid_date", err)
		}
		if _, err := f.g.ExportPayments(ctx, gateway.Actor{}, gateway.PaymentQuery{}, func(*lipa.Payment) error { return nil }); lipa.ErrorCode(err) != "invalid_actor" {
			t.Errorf("ExportPayments without an actor: got %v, want invalid_actor", err)
		}
		got, es := auditTrail(t, f.g, gateway.AuditFilter{Action: gateway.AuditPaymentsExport})
		if want := []string{"console:boss payments.export payments", "console:boss payments.export payments"}; !slices.Equal(got, want) {
			t.Fatalf("audit of exports: got %q, want %q", got, want)
		}
		type export struct {
			Rows     int               `json:"rows"`
			Complete bool              `json:"complete"`
			Filters  map[string]string `json:"filters"`
		}
		var whole, cut export
		json.Unmarshal(es[0].After, &whole)
		json.Unmarshal(es[1].After, &cut)
		if whole.Rows != 3 || !whole.Complete || whole.Filters["type"] != "c2b" {
			t.Errorf("the whole export: got %s, want 3 rows, complete, type c2b", es[0].After)
		}
		if cut.Rows != 1 || cut.Complete {
			t.Errorf("the export cut short: got %s, want 1 row, not complete", es[1].After)
		}
	})
}

// TestTimelineShowsOperatorActions: a payment's timeline shows the review
// items about it and the operators' resolutions naming it, from the audit
// log, each with who, the reason and the review item; another payment's
// timeline shows none of them.
func TestTimelineShowsOperatorActions(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		f := newFixture(t, databaseURL, darajasim.Config{CallbackDelay: time.Hour}, gateway.Config{})

		// A confirmation with an unreadable amount, made a payment by an
		// operator.
		f.confirm(t, c2bConfirmation(t, "UKTLINE001", map[string]any{"TransAmount": "abc"}))
		it := f.oneOpenItem(t, gateway.ReviewInvalidAmount)
		f.clock.Advance(time.Minute)
		res, err := f.g.ResolveCreatePayment(ctx, consoleActor, it.ID, gateway.Correction{Amount: "250"}, "statement shows KES 250")
		if err != nil {
			t.Fatal(err)
		}
		// A push whose callback's receipt is another payment's, settled by
		// an operator.
		p := f.push(t, "254711000501", "10", "TLSET1")
		f.callback(t, stkCallback(t, p, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKTLINE001"}))
		conflict := f.oneOpenItem(t, gateway.ReviewReceiptConflict)
		f.clock.Advance(time.Minute)
		if _, err := f.g.ResolveSettle(ctx, testOperator, conflict.ID, gateway.Settlement{Status: lipa.StatusFailed}, "customer says the prompt never came"); err != nil {
			t.Fatal(err)
		}
		other := f.push(t, "254711000502", "10", "TLOTHER")
		f.callback(t, stkCallback(t, other, "stk-callback-success.json", map[string]any{"MpesaReceiptNumber": "UKTLOTHER1"}))

		for _, c := range []struct {
			name     string
			id       lipa.PaymentID
			want     []string // kind: title of the review and operator entries, in order
			reviewID int64
			reason   string
			actor    gateway.Actor
		}{
			{"created from a confirmation", res.Payment.ID, []string{"review: opened: invalid amount", "operator: review.create_payment"}, it.ID,
				"statement shows KES 250", consoleActor},
			{"settled by an operator", p.ID, []string{"review: opened: receipt conflict", "operator: review.settle"}, conflict.ID,
				"customer says the prompt never came", testOperator},
			{"untouched", other.ID, nil, 0, "", gateway.Actor{}},
		} {
			d, err := f.g.PaymentDetail(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, e := range d.Timeline {
				if i > 0 && e.At.Before(d.Timeline[i-1].At) {
					t.Errorf("%s: entry %d (%s) is older than the one above it", c.name, i, e.Title)
				}
				switch e.Kind {
				case gateway.TimelineReview:
					_, what, _ := strings.Cut(e.Title, " ")
					_, what, _ = strings.Cut(what, " ")
					_, what, _ = strings.Cut(what, " ")
					got = append(got, "review: "+what)
					if e.ReviewID != c.reviewID {
						t.Errorf("%s: review entry %q: got item %d, want %d", c.name, e.Title, e.ReviewID, c.reviewID)
					}
				case gateway.TimelineOperator:
					action, _, _ := strings.Cut(strings.TrimPrefix(e.Title, "Operator action "), " ")
					got = append(got, "operator: "+action)
					if e.ReviewID != c.reviewID || e.Actor != c.actor || !strings.Contains(e.Detail, c.reason) ||
						!strings.Contains(e.Body, `"before"`) || !strings.Contains(e.Body, `"after"`) {
						t.Errorf("%s: operator entry: got %+v, want item %d by %v with the reason %q and the documents", c.name, e, c.reviewID, c.actor, c.reason)
					}
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: review and operator entries: got %q, want %q", c.name, got, c.want)
			}
		}
	})
}

// TestAuditDays: the console's date range is Kenya days, the last one
// included.
func TestAuditDays(t *testing.T) {
	for _, c := range []struct {
		from, to     string
		since, until string // RFC 3339, "" for zero
		code         string
	}{
		{"", "", "", "", ""},
		{"2026-12-01", "", "2026-11-30T21:00:00Z", "", ""},
		{"", "2026-12-01", "", "2026-12-01T21:00:00Z", ""},
		{"2026-12-01", "2026-12-01", "2026-11-30T21:00:00Z", "2026-12-01T21:00:00Z", ""},
		{"2026-12-02", "2026-12-01", "", "", "invalid_date"},
		{"1/12/2026", "", "", "", "invalid_date"},
		{"", "tomorrow", "", "", "invalid_date"},
	} {
		since, until, err := gateway.AuditDays(c.from, c.to)
		if c.code != "" {
			if lipa.ErrorCode(err) != c.code {
				t.Errorf("AuditDays(%q, %q): got %v, want %s", c.from, c.to, err, c.code)
			}
			continue
		}
		str := func(x time.Time) string {
			if x.IsZero() {
				return ""
			}
			return x.UTC().Format(time.RFC3339)
		}
		if err != nil || str(since) != c.since || str(until) != c.until {
			t.Errorf("AuditDays(%q, %q): got %s, %s, %v; want %s, %s", c.from, c.to, str(since), str(until), err, c.since, c.until)
		}
	}
}
