package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The minimal server is the yardstick of `lipa bench`: the least work any
// service can do for each of Lipa's request shapes, one prepared statement
// per request over net/http, on the same database engine. Its receipts are
// "M" and nine digits.
const (
	minimalVerifySQL = "SELECT id, status, amount_cents, claimed FROM payments WHERE receipt = $1"
	minimalClaimSQL  = "UPDATE payments SET claimed = TRUE, claimed_at = $1, claimed_by = $2 WHERE receipt = $3 AND status = 'SUCCESS' AND claimed = FALSE"
	minimalIngestSQL = "INSERT INTO inbound (received_at, body) VALUES ($1, $2)"
)

// minimalStore runs the minimal server's three statements.
type minimalStore interface {
	verify(ctx context.Context, receipt string) (id, status string, amount int64, claimed bool, err error)
	claim(ctx context.Context, receipt, by string, now time.Time) (bool, error)
	ingest(ctx context.Context, body []byte, now time.Time) error
	close()
}

// cmdBenchMinimal runs `lipa bench minimal-server`, which `lipa bench`
// starts as a process of its own: it creates its tables (SQLite: a new
// file; PostgreSQL: the schema --schema, dropped on exit), seeds --rows
// SUCCESS payments, prints "listening URL" and serves until ctx ends.
func cmdBenchMinimal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench minimal-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "sqlite:PATH (a new file) or postgres://…")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	rows := fs.Int("rows", 300_000, "SUCCESS payments to seed (receipts M000000000 …)")
	schema := fs.String("schema", "lipa_bench_minimal", "PostgreSQL: the schema to create (and drop on exit)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	var st minimalStore
	var err error
	switch {
	case strings.HasPrefix(*dbURL, "sqlite:"):
		st, err = openMinimalSQLite(ctx, strings.TrimPrefix(*dbURL, "sqlite:"), *rows)
	case strings.HasPrefix(*dbURL, "postgres://"), strings.HasPrefix(*dbURL, "postgresql://"):
		if !minimalSchemaRE.MatchString(*schema) {
			return usageError("bench minimal-server: --schema must be lower-case letters, digits and _")
		}
		st, err = openMinimalPostgres(ctx, *dbURL, *schema, *rows)
	default:
		return usageError("bench minimal-server: --database-url must be sqlite:PATH or postgres://…")
	}
	if err != nil {
		return err
	}
	defer st.close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	srv := &http.Server{Handler: minimalHandler(st), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintln(stdout, "listening", "http://"+ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// minimalHandler serves GET /verify?receipt=, POST /claim {"receipt"} and
// POST /ingest (any body, stored as is), each with one statement, and GET
// /healthz.
func minimalHandler(st minimalStore) http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		id, status, amount, claimed, err := st.verify(r.Context(), r.URL.Query().Get("receipt"))
		switch {
		case errors.Is(err, sql.ErrNoRows), errors.Is(err, pgx.ErrNoRows):
			writeJSON(w, 404, map[string]string{"error": "payment_not_found"})
		case err != nil:
			writeJSON(w, 500, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, 200, map[string]any{"payment_id": id, "status": status, "amount": amount, "claimed": claimed, "paid": status == "SUCCESS"})
		}
	})
	mux.HandleFunc("POST /claim", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Receipt string `json:"receipt"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		ok, err := st.claim(r.Context(), req.Receipt, r.Header.Get("X-API-KEY"), time.Now().UTC())
		switch {
		case err != nil:
			writeJSON(w, 500, map[string]string{"error": err.Error()})
		case !ok:
			writeJSON(w, 409, map[string]string{"error": "already_claimed"})
		default:
			writeJSON(w, 200, map[string]any{"receipt": req.Receipt, "claimed": true})
		}
	})
	mux.HandleFunc("POST /ingest", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = st.ingest(r.Context(), body, time.Now().UTC())
		}
		if err != nil {
			writeJSON(w, 500, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]any{"ResultCode": 0, "ResultDesc": "Accepted"})
	})
	return mux
}

// minimalSQLite is the minimal server on SQLite: WAL, synchronous=NORMAL,
// a pool of reading connections and one writing connection (SQLite has one
// writer), each statement prepared once per connection.
type minimalSQLite struct {
	read, write                       *sql.DB
	verifyStmt, claimStmt, ingestStmt *sql.Stmt
}

func openMinimalSQLite(ctx context.Context, path string, rows int) (*minimalSQLite, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	s := &minimalSQLite{write: write}
	schema := []string{
		`CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, receipt TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
			amount_cents INTEGER NOT NULL, claimed BOOLEAN NOT NULL DEFAULT FALSE, claimed_at TIMESTAMP, claimed_by TEXT)`,
		`CREATE TABLE IF NOT EXISTS inbound (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TIMESTAMP NOT NULL, body BLOB NOT NULL)`,
	}
	for _, stmt := range schema {
		if _, err := write.ExecContext(ctx, stmt); err != nil {
			write.Close()
			return nil, fmt.Errorf("minimal server schema: %w", err)
		}
	}
	tx, err := write.BeginTx(ctx, nil)
	if err != nil {
		write.Close()
		return nil, err
	}
	ins, err := tx.PrepareContext(ctx, "INSERT INTO payments (id, receipt, status, amount_cents) VALUES (?, ?, 'SUCCESS', 1000) ON CONFLICT DO NOTHING")
	if err == nil {
		for i := range rows {
			if _, err = ins.ExecContext(ctx, fmt.Sprintf("pay_m%09d", i), fmt.Sprintf("M%09d", i)); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback()
	}
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("minimal server seed: %w", err)
	}
	if s.read, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		write.Close()
		return nil, err
	}
	n := 2 * runtime.GOMAXPROCS(0)
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	s.read.SetConnMaxIdleTime(0)
	sqliteQ := func(q string) string { // $n → ?
		for i := 3; i >= 1; i-- {
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), "?")
		}
		return q
	}
	if s.verifyStmt, err = s.read.PrepareContext(ctx, sqliteQ(minimalVerifySQL)); err == nil {
		if s.claimStmt, err = write.PrepareContext(ctx, sqliteQ(minimalClaimSQL)); err == nil {
			s.ingestStmt, err = write.PrepareContext(ctx, sqliteQ(minimalIngestSQL))
		}
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *minimalSQLite) verify(ctx context.Context, receipt string) (id, status string, amount int64, claimed bool, err error) {
	err = s.verifyStmt.QueryRowContext(ctx, receipt).Scan(&id, &status, &amount, &claimed)
	return
}

func (s *minimalSQLite) claim(ctx context.Context, receipt, by string, now time.Time) (bool, error) {
	res, err := s.claimStmt.ExecContext(ctx, now, by, receipt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *minimalSQLite) ingest(ctx context.Context, body []byte, now time.Time) error {
	_, err := s.ingestStmt.ExecContext(ctx, now, body)
	return err
}

func (s *minimalSQLite) close() {
	if s.read != nil {
		s.read.Close()
	}
	s.write.Close()
}

// minimalSchemaRE is what a --schema may be: it is written into SQL.
var minimalSchemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// minimalPostgres is the minimal server on PostgreSQL: a pgx pool, one
// statement per request (pgx prepares each once per connection), in a
// schema of its own, which close drops.
type minimalPostgres struct {
	pool   *pgxpool.Pool
	schema string
}

func openMinimalPostgres(ctx context.Context, dbURL, schema string, rows int) (*minimalPostgres, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 10 // Lipa's default DATABASE_MAX_CONNS
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	setup := []string{
		"DROP SCHEMA IF EXISTS " + schema + " CASCADE",
		"CREATE SCHEMA " + schema,
		`CREATE TABLE payments (id TEXT PRIMARY KEY, receipt TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
			amount_cents BIGINT NOT NULL, claimed BOOLEAN NOT NULL DEFAULT FALSE, claimed_at TIMESTAMPTZ, claimed_by TEXT)`,
		"CREATE TABLE inbound (id BIGSERIAL PRIMARY KEY, received_at TIMESTAMPTZ NOT NULL, body BYTEA NOT NULL)",
		`INSERT INTO payments (id, receipt, status, amount_cents)
			SELECT 'pay_m' || lpad(i::text, 9, '0'), 'M' || lpad(i::text, 9, '0'), 'SUCCESS', 1000 FROM generate_series(0, $1::int - 1) AS i`,
		"ANALYZE payments",
	}
	for i, stmt := range setup {
		var args []any
		if i == 4 {
			args = []any{rows}
		}
		if _, err := pool.Exec(ctx, stmt, args...); err != nil {
			pool.Close()
			return nil, fmt.Errorf("minimal server schema: %w", err)
		}
	}
	return &minimalPostgres{pool: pool, schema: schema}, nil
}

func (s *minimalPostgres) verify(ctx context.Context, receipt string) (id, status string, amount int64, claimed bool, err error) {
	err = s.pool.QueryRow(ctx, minimalVerifySQL, receipt).Scan(&id, &status, &amount, &claimed)
	return
}

func (s *minimalPostgres) claim(ctx context.Context, receipt, by string, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, minimalClaimSQL, now, by, receipt)
	return tag.RowsAffected() == 1, err
}

func (s *minimalPostgres) ingest(ctx context.Context, body []byte, now time.Time) error {
	_, err := s.pool.Exec(ctx, minimalIngestSQL, now, body)
	return err
}

func (s *minimalPostgres) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+s.schema+" CASCADE")
	s.pool.Close()
}
