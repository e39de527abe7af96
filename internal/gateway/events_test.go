package gateway_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
	"github.com/lipa-gateway/lipa/webhook"
)

// evEvent is one event of the feed with the fields of its payment the
// tests look at.
type evEvent struct {
	webhook.Event
	Pay struct {
		ID      lipa.PaymentID `json:"id"`
		Status  lipa.Status    `json:"status"`
		Claimed bool           `json:"claimed"`
	}
}

// evFeed returns every event of the fixture's app, in order, paging through
// Events as an app would.
func evFeed(t *testing.T, f *fixture) []evEvent {
	t.Helper()
	var out []evEvent
	after := ""
	for range 100 {
		page, more, err := f.g.Events(context.Background(), f.app, after, "2")
		if err != nil {
			t.Fatalf("Events after %q: got error %v, want nil", after, err)
		}
		for _, raw := range page {
			var e evEvent
			if err := json.Unmarshal(raw, &e.Event); err != nil {
				t.Fatalf("event %s: %v", raw, err)
			}
			if err := json.Unmarshal(e.Payment, &e.Pay); err != nil {
				t.Fatalf("event %s: payment: %v", raw, err)
			}
			out = append(out, e)
			after = e.ID
		}
		if !more {
			return out
		}
	}
	t.Fatalf("Events: got has_more after 100 pages, want the end")
	return nil
}

// evWait returns the events of type typ about payment id once there is at
// least one. On PostgreSQL the feed shows an event once every transaction
// older than its own has ended, so it may show up a moment after its change
// committed.
func evWait(t *testing.T, f *fixture, typ string, id lipa.PaymentID) []evEvent {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		got := evOf(evFeed(t, f), typ, id)
		if len(got) > 0 || time.Now().After(end) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// evJSON decodes a JSON object.
func evJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

// evOf returns the events of type typ about payment id.
func evOf(evs []evEvent, typ string, id lipa.PaymentID) []evEvent {
	var out []evEvent
	for _, e := range evs {
		if e.Type == typ && e.Pay.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// evRawDB opens a second connection pool on the fixture's database, for
// the test to act on it behind the gateway's back; closed at cleanup.
func evRawDB(t *testing.T, databaseURL string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if path, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	} else {
		db, err = sql.Open("pgx", databaseURL) // search_path in the URL selects the test's schema
	}
	if err != nil {
		t.Fatalf("open %s: %v", databaseURL, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// evRefuseEvents makes the database refuse every insert into events while
// on (a trigger raising an error), standing in for a crash or a database
// error at the moment the event is written.
func evRefuseEvents(t *testing.T, databaseURL string) (set func(on bool)) {
	t.Helper()
	db := evRawDB(t, databaseURL)
	sqlite := strings.HasPrefix(databaseURL, "sqlite:")
	if !sqlite {
		if _, err := db.Exec(`CREATE FUNCTION evtest_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'event insert refused by the test'; END $$`); err != nil {
			t.Fatalf("create trigger function: %v", err)
		}
	}
	return func(on bool) {
		t.Helper()
		q := "DROP TRIGGER evtest_refuse ON events"
		switch {
		case on && sqlite:
			q = "CREATE TRIGGER evtest_refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'event insert refused by the test'); END"
		case on:
			q = "CREATE TRIGGER evtest_refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION evtest_refuse()"
		case sqlite:
			q = "DROP TRIGGER evtest_refuse"
		}
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// evCallback has the simulator settle p and hands its callback to the
// gateway as Safaricom would.
func evCallback(t *testing.T, f *fixture, p *lipa.Payment) error {
	t.Helper()
	body := f.waitCallback(t, p.CheckoutRequestID)
	return f.g.ReceiveSTKCallback(context.Background(), gateway.Inbound{Path: "/api/mpesa/stk-callback/", SourceAddr: "196.201.214.200:443", Body: body})
}

// evPaid returns a payment of the app that the simulator's callback made
// SUCCESS.
func evPaid(t *testing.T, f *fixture, phone, ref string) *lipa.Payment {
	t.Helper()
	p := f.push(t, phone, "10", ref)
	if err := evCallback(t, f, p); err != nil {
		t.Fatalf("ReceiveSTKCallback: got error %v, want nil", err)
	}
	if p = f.payment(t, p.ID); p.Status != lipa.StatusSuccess {
		t.Fatalf("payment %s: got status %s, want SUCCESS", p.ID, p.Status)
	}
	return p
}

// TestEventOutboxCommitsWithPayment: each payment change and its event
// commit together. When the event cannot be written the change is rolled
// back with it (the callback, claim or C2B confirmation fails and can be
// retried); once the change commits, its event is in the feed.
func TestEventOutboxCommitsWithPayment(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		refuse := evRefuseEvents(t, databaseURL)
		ctx := context.Background()

		t.Run("callback", func(t *testing.T) {
			tests := []struct {
				phone, typ string
				status     lipa.Status
			}{
				{darajasim.PhoneSuccess, gateway.EventPaymentSucceeded, lipa.StatusSuccess},
				{darajasim.PhoneCancelled, gateway.EventPaymentFailed, lipa.StatusFailed},
			}
			for _, tt := range tests {
				t.Run(tt.typ, func(t *testing.T) {
					p := f.push(t, tt.phone, "10", "OUTBOX-"+tt.phone[len(tt.phone)-3:])
					refuse(true)
					if err := evCallback(t, f, p); err == nil {
						t.Errorf("ReceiveSTKCallback with events refused: got nil, want an error")
					}
					refuse(false)
					if got := f.payment(t, p.ID); got.Status != lipa.StatusPending {
						t.Errorf("payment after a callback whose event was refused: got %s, want PENDING (rolled back with the event)", got.Status)
					}
					if got := evOf(evFeed(t, f), tt.typ, p.ID); len(got) != 0 {
						t.Errorf("feed: got %d %s events, want none", len(got), tt.typ)
					}

					if err := evCallback(t, f, p); err != nil {
						t.Fatalf("ReceiveSTKCallback again: got error %v, want nil", err)
					}
					got := evWait(t, f, tt.typ, p.ID)
					if len(got) != 1 || got[0].Pay.Status != tt.status {
						t.Fatalf("feed once the callback committed: got %+v, want one %s event with status %s", got, tt.typ, tt.status)
					}
					want, _ := json.Marshal(lipa.ViewOf(f.payment(t, p.ID)))
					if diff := cmp.Diff(evJSON(t, want), evJSON(t, got[0].Payment)); diff != "" {
						t.Errorf("event's payment differs from the payment as committed (-committed +event):\n%s", diff)
					}
				})
			}
		})

		t.Run("claim", func(t *testing.T) {
			p := evPaid(t, f, "254711000301", "OUTBOX-CLAIM")
			refuse(true)
			if _, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID}); err == nil {
				t.Errorf("Claim with events refused: got nil, want an error")
			}
			refuse(false)
			if got := f.payment(t, p.ID); got.Claimed {
				t.Errorf("payment after a claim whose event was refused: got claimed, want unclaimed (rolled back with the event)")
			}
			if got := evOf(evFeed(t, f), gateway.EventPaymentClaimed, p.ID); len(got) != 0 {
				t.Errorf("feed: got %d payment.claimed events, want none", len(got))
			}
			if _, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID}); err != nil {
				t.Fatalf("Claim again: got error %v, want nil", err)
			}
			got := evWait(t, f, gateway.EventPaymentClaimed, p.ID)
			if len(got) != 1 || !got[0].Pay.Claimed {
				t.Errorf("feed once the claim committed: got %+v, want one payment.claimed with claimed true", got)
			}
		})

		t.Run("c2b confirmation", func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{
				"TransactionType": "Pay Bill", "TransID": "UKOUTBOX01", "TransTime": "20261129101500", "TransAmount": "50.00",
				"BusinessShortCode": darajasim.SandboxShortCode, "BillRefNumber": "OUTBOX-C2B", "InvoiceNumber": "",
				"OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 149", "FirstName": "John",
			})
			in := gateway.Inbound{Path: "/api/c2b/confirmation/", SourceAddr: "196.201.214.200:443", Body: body}
			refuse(true)
			if err := f.g.ReceiveC2BConfirmation(ctx, in); err == nil {
				t.Errorf("ReceiveC2BConfirmation with events refused: got nil, want an error")
			}
			refuse(false)
			if p, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Receipt: "UKOUTBOX01"}); lipa.ErrorKind(err) != lipa.NotFound {
				t.Errorf("Verify after a confirmation whose event was refused: got %+v, %v; want NotFound (rolled back with the event)", p, err)
			}
			if err := f.g.ReceiveC2BConfirmation(ctx, in); err != nil {
				t.Fatalf("ReceiveC2BConfirmation again: got error %v, want nil", err)
			}
			p, err := f.g.Verify(ctx, f.app, gateway.VerifyQuery{Receipt: "UKOUTBOX01"})
			if err != nil {
				t.Fatalf("Verify: got error %v, want the C2B payment", err)
			}
			if got := evWait(t, f, gateway.EventC2BReceived, p.ID); len(got) != 1 {
				t.Errorf("feed once the confirmation committed: got %d c2b.received events, want 1", len(got))
			}
		})
	})
}

// TestEventClaimLosersWriteNoEvent: of many concurrent claims of one
// payment one wins and writes payment.claimed; the losers (409) and every
// other refused claim write nothing.
func TestEventClaimLosersWriteNoEvent(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		ctx := context.Background()
		p := evPaid(t, f, "254711000401", "LOSERS1")

		const n = 12
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: p.ID})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		won, lost := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case lipa.ErrorKind(err) == lipa.Conflict && lipa.ErrorCode(err) == "already_claimed":
				lost++
			default:
				t.Errorf("Claim: got error %v, want nil or Conflict already_claimed", err)
			}
		}
		if won != 1 || lost != n-1 {
			t.Fatalf("claims: got %d won and %d already_claimed, want 1 and %d", won, lost, n-1)
		}
		if got := evWait(t, f, gateway.EventPaymentClaimed, p.ID); len(got) != 1 {
			t.Fatalf("feed: got %d payment.claimed events, want 1 (the winner's)", len(got))
		}

		failed := f.push(t, darajasim.PhoneCancelled, "10", "LOSERS2")
		if err := evCallback(t, f, failed); err != nil {
			t.Fatalf("ReceiveSTKCallback: %v", err)
		}
		unclaimed := evPaid(t, f, "254711000402", "LOSERS3")
		evWait(t, f, gateway.EventPaymentFailed, failed.ID)
		evWait(t, f, gateway.EventPaymentSucceeded, unclaimed.ID)
		tests := []struct {
			name string
			req  gateway.ClaimRequest
			code string
		}{
			{"claimed again", gateway.ClaimRequest{PaymentID: p.ID}, "already_claimed"},
			{"failed payment", gateway.ClaimRequest{PaymentID: failed.ID}, "payment_not_successful"},
			{"wrong amount", gateway.ClaimRequest{PaymentID: unclaimed.ID, Amount: "11"}, "amount_mismatch"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(evFeed(t, f))
				if _, err := f.g.Claim(ctx, f.app, tt.req); lipa.ErrorCode(err) != tt.code {
					t.Fatalf("Claim: got error %v, want code %s", err, tt.code)
				}
				if after := evFeed(t, f); len(after) != before {
					t.Errorf("feed after a refused claim: got %d events, want %d as before (last %+v)", len(after), before, after[len(after)-1])
				}
			})
		}
	})
}

// TestEventsFeedPagesEventsCommittedOutOfOrder: on PostgreSQL a change whose
// event is numbered later must not commit before one numbered earlier (it
// waits), so an app paging the feed with after=<last_id> in between still
// gets both events.
func TestEventsFeedPagesEventsCommittedOutOfOrder(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		if strings.HasPrefix(databaseURL, "sqlite:") {
			t.Skip("SQLite runs one write transaction at a time: events commit in the order they are numbered")
		}
		f := newFixture(t, databaseURL, darajasim.Config{}, gateway.Config{})
		ctx := context.Background()
		first := evPaid(t, f, "254711000501", "ORDER1")
		second := evPaid(t, f, "254711000502", "ORDER2")

		// Hold the first claim's transaction just after its event is
		// inserted (numbered), until the test lets it go.
		db := evRawDB(t, databaseURL)
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(4242, 6)"); err != nil {
			t.Fatal(err)
		}
		released := false
		release := func() {
			if !released {
				released = true
				conn.ExecContext(ctx, "SELECT pg_advisory_unlock(4242, 6)")
			}
		}
		defer release()
		for _, q := range []string{
			`CREATE FUNCTION evtest_hold() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN PERFORM pg_advisory_xact_lock(4242, 6); RETURN NEW; END $$`,
			`CREATE TRIGGER evtest_hold AFTER INSERT ON events FOR EACH ROW
				WHEN (NEW.type = 'payment.claimed' AND NEW.payment_id = '` + string(first.ID) + `') EXECUTE FUNCTION evtest_hold()`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		done := make(chan error, 1)
		go func() {
			_, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: first.ID})
			done <- err
		}()
		end := time.Now().Add(5 * time.Second)
		for {
			var waiting int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND classid = 4242 AND objid = 6`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting == 1 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("first claim: got no transaction waiting after inserting its event, want one")
			}
			time.Sleep(5 * time.Millisecond)
		}

		// The second claim's event must wait for the first to commit (events
		// commit in seq order); meanwhile a reader pages the feed.
		secondDone := make(chan error, 1)
		go func() {
			_, err := f.g.Claim(ctx, f.app, gateway.ClaimRequest{PaymentID: second.ID})
			secondDone <- err
		}()
		page, _, err := f.g.Events(ctx, f.app, "", "500")
		if err != nil {
			t.Fatal(err)
		}
		var last webhook.Event
		json.Unmarshal(page[len(page)-1], &last)
		select {
		case err := <-secondDone:
			t.Fatalf("second claim finished (err %v) while the first, numbered earlier, was still open; want it to wait", err)
		case <-time.After(100 * time.Millisecond):
		}
		release()
		if err := <-done; err != nil {
			t.Fatalf("first claim: got error %v, want nil", err)
		}
		if err := <-secondDone; err != nil {
			t.Fatalf("second claim: got error %v, want nil", err)
		}

		seen := map[string]bool{}
		for _, raw := range page {
			var e webhook.Event
			json.Unmarshal(raw, &e)
			seen[e.ID] = true
		}
		next, _, err := f.g.Events(ctx, f.app, last.ID, "500")
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range next {
			var e webhook.Event
			json.Unmarshal(raw, &e)
			seen[e.ID] = true
		}
		for _, e := range evFeed(t, f) {
			if !seen[e.ID] {
				t.Errorf("paging with after=%s: never got %s about %s, want every event once: it was numbered before the page's last event but committed after the page was read", last.ID, e.Type, e.Pay.ID)
			}
		}
	})
}
