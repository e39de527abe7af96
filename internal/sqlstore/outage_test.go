package sqlstore_test

// Tests of a database that cannot be reached or cannot write, on both
// backends, from the store up to Lipa's HTTP answers. They live here, not
// in internal/api, because making SQLite full or read-only on the running
// connection needs the store's test hooks (export_test.go).
//
// How each outage is made, for real:
//   - PostgreSQL goes away: Lipa reaches the shared server through a TCP
//     proxy of the test's own (pgProxy), which the test closes (connections
//     refused, open ones cut) and reopens; the server itself is never
//     stopped.
//   - SQLite's disk fills: PRAGMA max_page_count set to the database's
//     current size makes every write that needs a new page fail with a
//     real SQLITE_FULL, as a full disk does (a test cannot count on
//     mounting a small tmpfs).
//   - SQLite cannot write at all: PRAGMA query_only makes every write fail
//     with SQLITE_READONLY, as a read-only file or file system does.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// outageWait bounds every wait for Lipa to notice that the database is back.
// It is a failure deadline, never an assertion on how long recovery takes.
const outageWait = 20 * time.Second

// TestUnavailableClassification: which database errors mean "out of reach
// or cannot write" (503) and which are bugs or data (their own kinds).
func TestUnavailableClassification(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("begin: %w", refused), true},
		{"connection reset", fmt.Errorf("query: %w", syscall.ECONNRESET), true},
		{"broken pipe", syscall.EPIPE, true},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"database/sql bad connection", driver.ErrBadConn, true},
		{"database/sql connection done", sql.ErrConnDone, true},
		{"pgx connection closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), true},
		{"08006 connection_failure", &pgconn.PgError{Code: "08006"}, true},
		{"08P01 protocol_violation", &pgconn.PgError{Code: "08P01"}, true},
		{"57P01 admin_shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"57P02 crash_shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"57P03 cannot_connect_now", &pgconn.PgError{Code: "57P03"}, true},
		{"53100 disk_full", &pgconn.PgError{Code: "53100"}, true},
		{"53300 too_many_connections", &pgconn.PgError{Code: "53300"}, true},
		{"25006 read_only_sql_transaction", &pgconn.PgError{Code: "25006"}, true},
		{"23505 unique_violation", &pgconn.PgError{Code: "23505"}, false},
		{"57014 query_canceled (statement timeout)", &pgconn.PgError{Code: "57014"}, false},
		{"42P01 undefined_table", &pgconn.PgError{Code: "42P01"}, false},
		{"no rows", sql.ErrNoRows, false},
		{"the caller gave up", fmt.Errorf("query: %w", context.Canceled), false},
		{"a plain error", errors.New("scan payment: converting NULL to string"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sqlstore.Unavailable(c.err); got != c.want {
				t.Errorf("Unavailable(%v): got %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// pgProxy forwards TCP connections to a PostgreSQL server and can go away
// (its port refuses connections, open ones are cut) and come back on the
// same port.
type pgProxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newPGProxy starts a proxy to target (host:port), stopped at cleanup.
func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	p := &pgProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.up(t)
	t.Cleanup(func() { p.down(); p.wg.Wait() })
	return p
}

// up listens again on the proxy's address.
func (p *pgProxy) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; retry briefly if the kernel lags
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy listen on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
}

// down closes the listener and cuts every open connection.
func (p *pgProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// outage is one way the database stops taking writes, and back.
type outage struct {
	name  string
	begin func(t *testing.T)
	end   func(t *testing.T)
	// full is true when only writes that need new space fail (SQLite's
	// max_page_count), so the test must keep writing until one does.
	full bool
	// reads is true when every transaction fails, reads too.
	reads bool
	// gone is true when the database does not even answer a ping.
	gone bool
}

// openOutages opens a migrated database on databaseURL (through a proxy on
// PostgreSQL) and returns it with the outages the backend can have.
func openOutages(t *testing.T, databaseURL string) (*sqlstore.DB, []outage) {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(databaseURL, "sqlite:") {
		db := sqlstoretest.OpenURL(t, databaseURL)
		exec := func(t *testing.T, q string) {
			t.Helper()
			if err := db.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return db, []outage{
			{name: "disk full", full: true,
				begin: func(t *testing.T) { exec(t, "PRAGMA max_page_count = 1") }, // clamped to the current size
				end:   func(t *testing.T) { exec(t, "PRAGMA max_page_count = 1073741823") }},
			// The writer refuses every write; Read's own connections
			// still read.
			{name: "read-only",
				begin: func(t *testing.T) { exec(t, "PRAGMA query_only = 1") },
				end:   func(t *testing.T) { exec(t, "PRAGMA query_only = 0") }},
		}
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	px := newPGProxy(t, u.Host)
	u.Host = px.addr
	db := sqlstoretest.OpenURL(t, u.String())
	return db, []outage{{name: "server gone", reads: true, gone: true,
		begin: func(t *testing.T) { px.down() },
		end:   func(t *testing.T) { px.up(t) }}}
}

// wantUnavailable fails unless err is Unavailable "database_unavailable".
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if lipa.ErrorKind(err) != lipa.Unavailable || lipa.ErrorCode(err) != "database_unavailable" {
		t.Errorf("%s: got %v (kind %s), want Unavailable database_unavailable", what, err, lipa.ErrorKind(err))
	}
}

// TestStoreDatabaseUnavailable: a transaction or probe that meets a
// database out of reach or unable to write fails with Unavailable
// "database_unavailable"; a missing row stays NotFound; and once the
// database is back the same handle works again by itself.
func TestStoreDatabaseUnavailable(t *testing.T) {
	ctx := context.Background()
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		db, outages := openOutages(t, databaseURL)
		seed(t, db)
		for i, o := range outages {
			t.Run(o.name, func(t *testing.T) {
				db.SetFailureHold(time.Nanosecond) // forget the outage before
				time.Sleep(time.Millisecond)
				if err := waitWritable(ctx, db); err != nil {
					t.Fatalf("CheckWritable before the outage: got %v, want nil", err)
				}
				db.SetFailureHold(time.Hour)
				o.begin(t)
				insert := func(n int) error {
					return db.InTx(ctx, func(tx *sqlstore.Tx) error {
						p := lipa.Payment{ID: lipa.PaymentID(fmt.Sprintf("pay_outage_%d_%d", i, n)), AppID: "app_a", Type: lipa.TypeSTK,
							Status: lipa.StatusPending, PhoneNumber: "254708374149", Amount: 1000, Currency: "KES",
							Reference: strings.Repeat("R", 90), AccountReference: "R", Description: "outage", ShortCode: "174379",
							CreatedAt: t0, UpdatedAt: t0}
						return tx.InsertPayment(ctx, &p)
					})
				}
				var err error
				for n := 0; n < 2000 && err == nil; n++ {
					err = insert(n)
					if !o.full && err == nil {
						t.Fatalf("insert during the outage: got nil, want an error")
					}
				}
				wantUnavailable(t, "insert during the outage", err)
				wantUnavailable(t, "CheckWritable after a failed transaction", db.CheckWritable(ctx))
				if o.gone {
					wantUnavailable(t, "Ping", db.Ping(ctx))
				}
				if !o.reads {
					// Reads still work, and a missing row is still NotFound.
					err := db.Read(ctx, func(tx *sqlstore.Tx) error {
						_, err := tx.PaymentByReceipt(ctx, "NOSUCHRCPT")
						return err
					})
					if lipa.ErrorKind(err) != lipa.NotFound {
						t.Errorf("a read during the outage: got %v, want NotFound", err)
					}
				}
				if !o.full {
					// Nothing fails but the probe itself.
					db.SetFailureHold(time.Nanosecond)
					time.Sleep(time.Millisecond)
					wantUnavailable(t, "CheckWritable's own write during the outage", db.CheckWritable(ctx))
				}

				o.end(t)
				db.SetFailureHold(0)
				deadline := time.Now().Add(outageWait)
				for err = insert(100000); err != nil && time.Now().Before(deadline); err = insert(100000) {
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("insert after the outage: got %v, want nil", err)
				}
				if err = waitWritable(ctx, db); err != nil {
					t.Errorf("CheckWritable after the outage: got %v, want nil", err)
				}
			})
		}
	})
}

// waitWritable waits up to outageWait for CheckWritable to answer nil, and
// returns its last answer.
func waitWritable(ctx context.Context, db *sqlstore.DB) error {
	deadline := time.Now().Add(outageWait)
	err := db.CheckWritable(ctx)
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		err = db.CheckWritable(ctx)
	}
	return err
}

// outageService is Lipa's HTTP API over a gateway on db, with a Daraja
// simulator of its own, served on loopback.
type outageService struct {
	url string
	key string
	db  *sqlstore.DB
	gw  *gateway.Gateway
}

func newOutageService(t *testing.T, db *sqlstore.DB) *outageService {
	t.Helper()
	sim := darajasim.New(darajasim.Config{CallbackDelay: time.Hour}) // callbacks are the test's to send
	simSrv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); simSrv.Close() })
	client, err := daraja.New(daraja.Config{BaseURL: simSrv.URL, ConsumerKey: "lipa-test", ConsumerSecret: "lipa-test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	gw := gateway.New(db, client, gateway.Config{ShortCode: darajasim.SandboxShortCode, Passkey: darajasim.SandboxPasskey,
		CallbackURL: "https://pay.example.com/api/stk/callback/", Logger: quiet, PhonePushesPerHour: 1000})
	_, key, err := gw.CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "test"}, "shop")
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	srv := httptest.NewServer(api.New(gw, api.Config{Logger: quiet, Callbacks: api.CallbackGuard{AllowTokenless: true}}))
	t.Cleanup(srv.Close)
	return &outageService{url: srv.URL, key: key.Reveal(), db: db, gw: gw}
}

// answer is one HTTP answer.
type answer struct {
	status     int
	retryAfter string
	code       string // error.code, or ""
	raw        string
}

func (s *outageService) do(t *testing.T, method, path string, body any, key bool) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key {
		req.Header.Set("X-API-KEY", s.key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(raw, &e)
	return answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), code: e.Error.Code, raw: string(raw)}
}

var outageSeq int

func nextID(prefix string) string {
	outageSeq++
	return fmt.Sprintf("%s%06d", prefix, outageSeq)
}

func (s *outageService) push(t *testing.T) answer {
	return s.do(t, "POST", "/api/stk-push/", map[string]any{"phone_number": fmt.Sprintf("2547%08d", 10000000+outageSeq*7), "amount": 10, "reference": nextID("OUT")}, true)
}

func (s *outageService) confirmation(t *testing.T, transID string) answer {
	return s.do(t, "POST", "/api/c2b/confirmation/", map[string]any{"TransactionType": "Pay Bill", "TransID": transID,
		"TransTime": "20261207211500", "TransAmount": "10.00", "BusinessShortCode": "174379", "BillRefNumber": "OUTAGE",
		"MSISDN": "254708374149", "FirstName": "JANE"}, false)
}

func (s *outageService) callback(t *testing.T, checkoutRequestID string) answer {
	return s.do(t, "POST", "/api/mpesa/stk-callback/", map[string]any{"Body": map[string]any{"stkCallback": map[string]any{
		"MerchantRequestID": "10000-2000001-1", "CheckoutRequestID": checkoutRequestID, "ResultCode": 1032, "ResultDesc": "Request cancelled by user"}}}, false)
}

// untilRefused sends requests made by send until one is answered other
// than 200 (at most 500 when the disk is filling, else 1) and returns that
// answer; the 200s it saw are returned too.
func untilRefused(t *testing.T, o outage, send func(n int) answer) (answer, int) {
	t.Helper()
	tries := 1
	if o.full {
		tries = 500
	}
	for n := 0; n < tries; n++ {
		if a := send(n); a.status != http.StatusOK {
			return a, n
		}
	}
	t.Fatalf("%d requests during the outage: all answered 200, want a refusal", tries)
	return answer{}, 0
}

func want503(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable || a.code != "database_unavailable" || a.retryAfter == "" {
		t.Errorf("%s: got %d %q Retry-After %q (%s), want 503 database_unavailable with Retry-After", what, a.status, a.code, a.retryAfter, a.raw)
	}
}

// TestOutageHTTPAnswers: while the database cannot be reached or cannot
// write, apps and Safaricom get 503 database_unavailable with Retry-After
// (never 500, never 200 for a payload not stored), /readyz is 503, and
// once the database is back Lipa serves again without a restart.
func TestOutageHTTPAnswers(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		db, outages := openOutages(t, databaseURL)
		s := newOutageService(t, db)
		if a := s.push(t); a.status != http.StatusOK {
			t.Fatalf("push before any outage: got %d %s, want 200", a.status, a.raw)
		}
		for _, o := range outages {
			t.Run(o.name, func(t *testing.T) {
				if a := s.do(t, "GET", "/readyz", nil, false); a.status != http.StatusOK {
					t.Fatalf("/readyz before the outage: got %d %s, want 200", a.status, a.raw)
				}
				// However slow this machine, /readyz must see the failures
				// below: keep them for the whole test.
				db.SetFailureHold(time.Hour)
				o.begin(t)

				a, _ := untilRefused(t, o, func(int) answer { return s.push(t) })
				want503(t, "STK push", a)
				var stored []string
				a, n := untilRefused(t, o, func(n int) answer {
					id := nextID("OUTC")
					stored = append(stored, id)
					return s.confirmation(t, id)
				})
				stored = stored[:n] // the last one was refused
				if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
					t.Errorf("C2B confirmation: got %d Retry-After %q (%s), want 503 with Retry-After", a.status, a.retryAfter, a.raw)
				}
				a, _ = untilRefused(t, o, func(int) answer { return s.callback(t, nextID("ws_CO_OUTAGE")) })
				if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
					t.Errorf("STK callback: got %d Retry-After %q (%s), want 503 with Retry-After", a.status, a.retryAfter, a.raw)
				}
				if o.reads {
					want503(t, "verify", s.do(t, "GET", "/api/payments/verify/?reference=OUT000001", nil, true))
				} else if a := s.do(t, "GET", "/api/payments/verify/?reference=OUT000001", nil, true); a.status != http.StatusOK {
					t.Errorf("verify while only writes fail: got %d %s, want 200 (reads do not need the writer)", a.status, a.raw)
				}
				a = s.do(t, "GET", "/readyz", nil, false)
				want503(t, "/readyz", a)

				o.end(t)
				db.SetFailureHold(0)
				deadline := time.Now().Add(outageWait)
				for a = s.push(t); a.status != http.StatusOK && time.Now().Before(deadline); a = s.push(t) {
					time.Sleep(100 * time.Millisecond)
				}
				if a.status != http.StatusOK {
					t.Errorf("push after the outage: got %d %s, want 200", a.status, a.raw)
				}
				for a = s.do(t, "GET", "/readyz", nil, false); a.status != http.StatusOK && time.Now().Before(deadline); a = s.do(t, "GET", "/readyz", nil, false) {
					time.Sleep(100 * time.Millisecond)
				}
				if a.status != http.StatusOK {
					t.Errorf("/readyz after the outage: got %d %s, want 200", a.status, a.raw)
				}
				// Every confirmation acknowledged with 200 was stored.
				for _, id := range stored {
					err := db.InTx(context.Background(), func(tx *sqlstore.Tx) error {
						_, err := tx.PaymentByReceipt(context.Background(), id)
						return err
					})
					if err != nil {
						t.Errorf("confirmation %s answered 200 during the outage: got %v, want its payment stored", id, err)
					}
				}
			})
		}
	})
}
