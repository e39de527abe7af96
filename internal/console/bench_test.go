package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/console"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// BenchmarkConsolePages seeds a database with 1,000,000 payments (or
// LIPA_BENCH_PAYMENTS) of five apps and the intake pool, spread over the
// last 365 days, with callbacks, events and webhook deliveries for the most
// recent, then measures the server time of each console page, on each
// backend:
//
//	LIPA_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  go test -run='^$' -bench=ConsolePages -benchtime=20x -timeout=60m ./internal/console
//
// It reports ms/page. Seeding takes minutes; it is a benchmark, not a test.
func BenchmarkConsolePages(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("LIPA_BENCH_PAYMENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, backend := range sqlstoretest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			databaseURL := sqlstoretest.URL(b, backend)
			db := sqlstoretest.OpenURL(b, databaseURL)
			// Late in the Kenya day, so that "today" holds a full day of
			// payments: the dashboard's worst hour.
			now := gateway.KenyaDay(time.Now()).Add(23*time.Hour + 50*time.Minute).UTC().Truncate(time.Microsecond)
			clock := func() time.Time { return now }
			start := time.Now()
			seed := seedPayments(b, databaseURL, backend, n, now)
			b.Logf("%s: seeded %d payments in %s", backend, n, time.Since(start).Round(time.Second))
			quiet := slog.New(slog.DiscardHandler)
			gw := gateway.New(db, nil, gateway.Config{Logger: quiet, Now: clock})
			ctx := context.Background()
			if _, err := gw.CreateOperator(ctx, gateway.Actor{Kind: gateway.ActorCLI, Name: "bench"}, "boss", lipa.RoleAdmin, "Correct-Horse-Battery-4217"); err != nil {
				b.Fatal(err)
			}
			_, token, err := gw.SignIn(ctx, gateway.Actor{Kind: gateway.ActorConsole, Name: "boss"}, gateway.SignInRequest{Password: "Correct-Horse-Battery-4217"}, gateway.SessionPolicy{})
			if err != nil {
				b.Fatal(err)
			}
			con := console.New(gw, console.Config{Logger: quiet, Now: clock})
			get := func(b *testing.B, srv http.Handler, path string) *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", path, nil)
				req.AddCookie(&http.Cookie{Name: console.CookieName, Value: token.Reveal()})
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: got %d: %s", path, rec.Code, rec.Body.String()[:min(rec.Body.Len(), 300)])
				}
				return rec
			}
			t0 := time.Now()
			get(b, console.New(gw, console.Config{Logger: quiet, Now: clock}), "/admin/")
			b.Logf("%s: the very first dashboard view (14 days computed, the closed ones kept): %s", backend, time.Since(t0).Round(time.Millisecond))
			day := now.AddDate(0, 0, -100).In(lipa.NairobiTime).Format("2006-01-02")
			first := get(b, con, "/admin/payments").Body.String()
			cursor := first[strings.Index(first, "cursor=")+7:]
			cursor = cursor[:strings.IndexAny(cursor, `"&`)]
			pages := []struct{ name, path string }{
				{"dashboard", "/admin/"},
				{"payments", "/admin/payments"},
				{"payments next page", "/admin/payments?cursor=" + cursor},
				{"payments by app", "/admin/payments?app=app3"},
				{"payments by status", "/admin/payments?status=FAILED"},
				{"payments by type", "/admin/payments?type=C2B"},
				{"payments not claimed", "/admin/payments?claimed=false"},
				{"payments of one day", "/admin/payments?from=" + day + "&to=" + day},
				{"payments by app and status", "/admin/payments?app=app3&status=FAILED"},
				{"search receipt", "/admin/payments?q=" + seed.receipt},
				{"search phone", "/admin/payments?q=" + url.QueryEscape("0"+seed.phone[3:])},
				{"search reference", "/admin/payments?q=" + seed.reference},
				{"search CheckoutRequestID", "/admin/payments?q=" + seed.checkout},
				{"search payment id", "/admin/payments?q=" + seed.id},
				{"payment with timeline", "/admin/payments/" + seed.id},
				{"apps", "/admin/apps"},
				{"app", "/admin/apps/app3"},
				{"intake", "/admin/intake"},
				{"webhooks", "/admin/webhooks"},
				{"webhooks failed", "/admin/webhooks?state=failed"},
				{"settings", "/admin/settings"},
				{"review queue", "/admin/review"},
				{"review queue, all items", "/admin/review?state=all"},
				{"audit log", "/admin/audit"},
				{"audit log by door and day", "/admin/audit?kind=console&from=" + day + "&to=" + day},
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					for b.Loop() {
						get(b, con, p.path)
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
				})
			}
			b.Run("dashboard first view in a process", func(b *testing.B) {
				for b.Loop() { // no day in memory: today and yesterday computed, the others read as kept
					get(b, console.New(gw, console.Config{Logger: quiet, Now: clock}), "/admin/")
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			})
			b.Run("CSV of one day", func(b *testing.B) {
				rows := 0
				for b.Loop() {
					rows = strings.Count(get(b, con, "/admin/payments.csv?from="+day+"&to="+day).Body.String(), "\n") - 1
				}
				ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
				b.ReportMetric(ms, "ms/export")
				b.ReportMetric(float64(rows)/ms*1000, "rows/s")
			})
		})
	}
}

// seeded names payments the benchmark looks up.
type seeded struct{ id, receipt, phone, reference, checkout string }

// seedPayments inserts n payments in one transaction with multi-row
// INSERTs, oldest first over the 365 days before now: five apps, 10% C2B
// (a fifth of them unclaimed in the intake pool), 80% SUCCESS (60% of
// those claimed), 18% FAILED with the usual reasons, PENDING in the last
// minutes; and, for the latest 20,000 STK payments, their callback, an
// event and a webhook delivery (one in fifty failed).
func seedPayments(b *testing.B, databaseURL string, backend sqlstore.Backend, n int, now time.Time) seeded {
	b.Helper()
	driver, dsn := "pgx", databaseURL
	if backend == sqlstore.SQLite {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite:")+"?_pragma=busy_timeout(60000)&_time_format=sqlite"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() // when seeding fails; nothing after Commit
	ph := func(i int) string {
		if backend == sqlstore.Postgres {
			return "$" + strconv.Itoa(i)
		}
		return "?"
	}
	exec := func(q string, args ...any) {
		if _, err := tx.Exec(q, args...); err != nil {
			b.Fatalf("%s: %v", q[:min(len(q), 80)], err)
		}
	}
	ts := func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) }
	for i := 1; i <= 5; i++ {
		exec("INSERT INTO apps (id, name, key_hash, key_hint, created_at, updated_at, webhook_url, webhook_secret) VALUES ("+
			ph(1)+", "+ph(2)+", "+ph(3)+", 'lipa_xxxxxx…', "+ph(4)+", "+ph(5)+", 'http://127.0.0.1:9/hook', 'whsec_bench')",
			fmt.Sprintf("app_bench%022d", i), fmt.Sprintf("app%d", i), fmt.Sprintf("hash%d", i), ts(now.AddDate(-1, 0, -1)), ts(now.AddDate(-1, 0, -1)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const cols = 25
	const batch = 400
	reasons := []lipa.FailureReason{lipa.ReasonCancelledByUser, lipa.ReasonCancelledByUser, lipa.ReasonInsufficientFunds, lipa.ReasonWrongPIN,
		lipa.ReasonCustomerUnreachable, lipa.ReasonExpired}
	codes := map[lipa.FailureReason]string{lipa.ReasonCancelledByUser: "1032", lipa.ReasonInsufficientFunds: "1", lipa.ReasonWrongPIN: "2001",
		lipa.ReasonCustomerUnreachable: "1037", lipa.ReasonExpired: "1019"}
	span := 365 * 24 * time.Hour
	var out seeded
	var recent []int // indexes of the latest STK payments, for callbacks
	var rows []any
	flush := func() {
		if len(rows) == 0 {
			return
		}
		var sb strings.Builder
		sb.WriteString(`INSERT INTO payments (id, app_id, payment_type, status, phone_number, amount_cents, currency, reference, account_reference,
			description, shortcode, transaction_type, mpesa_receipt_number, checkout_request_id, merchant_request_id, customer_message,
			result_code, result_desc, failure_reason, resolved_by, claimed, claimed_at, transaction_date, created_at, updated_at) VALUES `)
		for r := 0; r < len(rows)/cols; r++ {
			if r > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for c := range cols {
				if c > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(ph(r*cols + c + 1))
			}
			sb.WriteString(")")
		}
		exec(sb.String(), rows...)
		rows = rows[:0]
	}
	for i := range n {
		created := now.Add(-span + time.Duration(int64(span)/int64(n)*int64(i)))
		id := fmt.Sprintf("pay_bench%017d", i)
		app := any(fmt.Sprintf("app_bench%022d", i%5+1))
		typ, txType := lipa.TypeSTK, "CustomerPayBillOnline"
		phone := fmt.Sprintf("2547%08d", rng.IntN(200000)*37%100000000)
		ref := fmt.Sprintf("ORD%d", i)
		var receipt, checkout any
		status, reason, code, resolved := lipa.StatusSuccess, lipa.FailureReason(""), "0", lipa.ResolvedByCallback
		claimed, claimedAt := false, any(nil)
		x := rng.IntN(100)
		switch {
		case now.Sub(created) < 5*time.Minute:
			status, code, resolved = lipa.StatusPending, "", ""
		case x < 18:
			status, reason = lipa.StatusFailed, reasons[rng.IntN(len(reasons))]
			code = codes[reason]
			if reason == lipa.ReasonExpired {
				resolved = lipa.ResolvedByExpiry
			}
		case x < 20:
			resolved = lipa.ResolvedByQuery
		}
		if i%10 == 0 {
			typ, txType, status, reason, code, resolved = lipa.TypeC2B, "Pay Bill", lipa.StatusSuccess, "", "", lipa.ResolvedByConfirmation
			ref = fmt.Sprintf("INV%d", i)
			if i%50 == 0 {
				app = nil
			}
		} else {
			checkout = fmt.Sprintf("ws_CO_%014d%s", i, phone[3:])
		}
		if status == lipa.StatusSuccess && resolved != lipa.ResolvedByQuery {
			receipt = fmt.Sprintf("U%09s", strings.ToUpper(strconv.FormatInt(int64(i), 36)))
		}
		if status == lipa.StatusSuccess && app != nil && rng.IntN(10) < 6 {
			claimed, claimedAt = true, ts(created.Add(time.Minute))
		}
		rows = append(rows, id, app, string(typ), string(status), phone, int64(100*(10+rng.IntN(5000))), "KES", ref, ref[:min(len(ref), 12)],
			"Payment", "174379", txType, receipt, checkout, "", "", code, "", string(reason), resolved, claimed, claimedAt,
			ts(created.Add(10*time.Second)), ts(created), ts(created.Add(20*time.Second)))
		if len(rows) == cols*batch {
			flush()
		}
		if out.id == "" && i >= n/2 && typ == lipa.TypeSTK && receipt != nil {
			out = seeded{id: id, phone: phone, reference: ref, checkout: checkout.(string), receipt: receipt.(string)}
		}
		if typ == lipa.TypeSTK && status != lipa.StatusPending && i >= n-30_000 {
			recent = append(recent, i)
		}
	}
	flush()
	if out.id == "" {
		b.Fatalf("seeded no successful STK payment in the second half")
	}
	// Callbacks, events and webhook deliveries of the latest STK payments.
	for k, i := range recent[max(0, len(recent)-20_000):] {
		created := now.Add(-span + time.Duration(int64(span)/int64(n)*int64(i)))
		id := fmt.Sprintf("pay_bench%017d", i)
		body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_%014d","ResultCode":0,"ResultDesc":"ok"}}}`, i)
		exec("INSERT INTO inbound_messages (kind, path, source_addr, received_at, body, checkout_request_id, payment_id, outcome) VALUES ('stk_callback', '/api/mpesa/stk-callback/{token}/', '196.201.214.200', "+
			ph(1)+", "+ph(2)+", "+ph(3)+", "+ph(4)+", 'applied')", ts(created.Add(time.Duration(2000+rng.IntN(20000))*time.Millisecond)), []byte(body), fmt.Sprintf("ws_CO_%014d", i), id)
		app := fmt.Sprintf("app_bench%022d", i%5+1)
		var seq int64
		if err := tx.QueryRow("INSERT INTO events (id, app_id, type, payment_id, payload, created_at) VALUES ("+ph(1)+", "+ph(2)+", 'payment.succeeded', "+ph(3)+", "+ph(4)+", "+ph(5)+") RETURNING seq",
			fmt.Sprintf("evt_bench%017d", i), app, id, []byte(`{}`), ts(created.Add(3*time.Second))).Scan(&seq); err != nil {
			b.Fatal(err)
		}
		state := "delivered"
		if k%50 == 0 {
			state = "failed"
		}
		exec("INSERT INTO webhook_deliveries (event_seq, app_id, payment_id, state, attempts, next_attempt_at, created_at) VALUES ("+
			ph(1)+", "+ph(2)+", "+ph(3)+", "+ph(4)+", 1, "+ph(5)+", "+ph(6)+")", seq, app, id, state, ts(created.Add(3*time.Second)), ts(created.Add(3*time.Second)))
		exec("INSERT INTO webhook_attempts (event_seq, attempted_at, url, status_code, latency_ms) VALUES ("+ph(1)+", "+ph(2)+", 'http://127.0.0.1:9/hook', 200, 35)",
			seq, ts(created.Add(4*time.Second)))
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := raw.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return out
}
