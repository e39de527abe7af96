// Package sqlstore keeps Lipa's data in SQL: SQLite (modernc.org/sqlite, pure
// Go, the embedded default) or PostgreSQL (pgx). One package, one set of
// queries, and a small dialect value for the few places where the two
// differ. Migrations for both are embedded and applied with goose.
//
// Callers work inside transactions (DB.InTx), or read outside any (DB.Read);
// every method of Tx that reads or writes an app's data takes the app's ID
// and filters on it. On SQLite, statements are prepared once per
// connection, reads use read-only connections beside the one writer, and
// concurrent write transactions are committed in groups (groupCommit). Database
// errors are translated here: no row is a lipa NotFound error, a database
// that cannot be reached or cannot write is a lipa Unavailable error
// ("database_unavailable").
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/lipa-gateway/lipa"
)

//go:embed migrations
var migrations embed.FS

// Backend names a database engine.
type Backend string

// The supported backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// DefaultMaxConns is the PostgreSQL connection pool size Open uses when
// Options.MaxConns is zero, and the default of Lipa's DATABASE_MAX_CONNS.
const DefaultMaxConns = 10

// Options tunes a DB. The zero value is usable.
type Options struct {
	// MaxConns caps the PostgreSQL connection pool (DefaultMaxConns). SQLite always
	// uses one connection: it has one writer, and one connection keeps every
	// transaction serial without "database is locked" retries.
	MaxConns int
	// StatementTimeout bounds every PostgreSQL statement (default 5s), so one
	// slow query cannot hang a request; SQLite waits at most this long for a
	// lock held by another process.
	StatementTimeout time.Duration
	// MustExist opens only a database that is already there, for commands
	// that only read: a SQLite file that does not exist is ErrNoDatabase
	// instead of being created. (Open never creates a PostgreSQL database.)
	MustExist bool
}

// DB is a handle on Lipa's database. It is safe for concurrent use.
type DB struct {
	sql     *sql.DB
	read    *sql.DB // SQLite: the read-only connections of Read; nil on PostgreSQL (Read uses the pool)
	backend Backend
	probe   writeProbe // CheckWritable's last answer

	// SQLite parses a statement each time it is run unless it was
	// prepared: statements are prepared once per connection (see
	// stmtCache). pgx keeps its own per-connection cache on PostgreSQL.
	writeStmts, readStmts *stmtCache

	writer *groupCommit // SQLite: runs every write transaction; nil on PostgreSQL
}

// readConns is how many read-only SQLite connections Read may use at once:
// WAL lets them all read beside the one writer. Each costs about 3 MiB
// (its page cache, limited to 1 MiB, its schema and prepared statements),
// and on two cores a third added no throughput (BENCHMARKS.md), so two.
const readConns = 2

// Open connects to the database named by url: "sqlite:PATH" (PATH a file;
// created when missing, unless opt.MustExist) or "postgres://…" /
// "postgresql://…". It does not apply migrations (see Migrate). The error
// names what is wrong with the URL or the connection.
func Open(ctx context.Context, databaseURL string, opt Options) (*DB, error) {
	if opt.MaxConns <= 0 {
		opt.MaxConns = DefaultMaxConns
	}
	if opt.StatementTimeout <= 0 {
		opt.StatementTimeout = 5 * time.Second
	}
	var db *DB
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
		if path == "" {
			return nil, errors.New("DATABASE_URL: sqlite: needs a file path, as in sqlite:lipa.db")
		}
		q := url.Values{}
		for _, p := range []string{
			"busy_timeout(" + strconv.FormatInt(opt.StatementTimeout.Milliseconds(), 10) + ")",
			"journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)",
			// The undo copies of a group's savepoints (groupCommit) stay
			// in memory instead of a temporary file.
			"temp_store(MEMORY)",
			// Copy the WAL into the database every 8,000 pages (32 MiB)
			// rather than SQLite's 1,000: a checkpoint runs in the commit
			// that crosses the mark, holding the writer, and writes each
			// page once however often it changed since the last one.
			"wal_autocheckpoint(8000)",
		} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		if opt.MustExist {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				abs, _ := filepath.Abs(path)
				return nil, fmt.Errorf("%w: the SQLite file %s does not exist", ErrNoDatabase, abs)
			}
			q.Set("mode", "rw") // SQLite's "open, never create"
		}
		q.Set("_time_format", "sqlite")
		s, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		s.SetMaxOpenConns(1)
		s.SetConnMaxIdleTime(0)
		// Readers: the same file, refusing every write (query_only), with
		// deferred transactions that take no lock a writer waits for.
		q.Del("_txlock")
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "cache_size(-1024)")
		r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		r.SetMaxOpenConns(readConns)
		r.SetMaxIdleConns(readConns)
		r.SetConnMaxIdleTime(0)
		db = &DB{sql: s, read: r, backend: SQLite, writeStmts: newStmtCache(s), readStmts: newStmtCache(r)}
		db.writer = startGroupCommit(db)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		cfg, err := pgx.ParseConfig(databaseURL)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
			cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(opt.StatementTimeout.Milliseconds(), 10)
		}
		cfg.RuntimeParams["timezone"] = "UTC"
		if cfg.ConnectTimeout == 0 {
			// A server that drops packets would otherwise hold each request
			// for the operating system's TCP timeout (minutes).
			cfg.ConnectTimeout = 5 * time.Second
		}
		s := stdlib.OpenDB(*cfg)
		s.SetMaxOpenConns(opt.MaxConns)
		s.SetMaxIdleConns(opt.MaxConns)
		s.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{sql: s, backend: Postgres}
	default:
		return nil, fmt.Errorf("DATABASE_URL %q: want sqlite:PATH or postgres://…", redactURL(databaseURL))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.sql.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", db.backend, err)
	}
	return db, nil
}

// redactURL hides a password in a database URL, for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Backend returns the engine behind db.
func (db *DB) Backend() Backend { return db.backend }

// Pool returns the connection pool, for instrumentation only (its Stats):
// all reads and writes go through InTx and Read.
func (db *DB) Pool() *sql.DB { return db.sql }

// Close closes the connection pool (and SQLite's read connections), once
// the write transactions under way have committed; those still waiting
// fail.
func (db *DB) Close() error {
	if db.writer != nil {
		db.writer.close()
	}
	if db.read != nil {
		db.read.Close()
	}
	return db.sql.Close()
}

// Ping checks that the database answers; when it does not, the error is a
// lipa Unavailable error with code "database_unavailable".
func (db *DB) Ping(ctx context.Context) error { return translate(db.sql.PingContext(ctx)) }

// Migrate applies every embedded migration not yet applied. On PostgreSQL it
// holds a session advisory lock while doing so, so replicas starting at once
// migrate one at a time.
func (db *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.backend))
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.backend == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.sql, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Tx is one database transaction (on SQLite perhaps a savepoint in a
// transaction shared with other requests, see groupCommit), or for Read a
// series of statements on the pool. Its methods are not safe for
// concurrent use; a Tx ends when the function given to InTx or Read
// returns.
type Tx struct {
	tx       *sql.Tx // nil: statements run on q, each on its own (Read)
	q        queryer
	backend  Backend
	stmts    *stmtCache // nil: nothing to prepare (PostgreSQL)
	missed   []string   // statements to prepare once the transaction has ended
	detached bool       // statements ignore the caller's cancellation (groupCommit)
	after    []func()   // run once the transaction has committed
}

// queryer runs statements: a *sql.Tx or a *sql.DB.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// AfterCommit registers f to run once this transaction has committed, after
// COMMIT returned and before InTx returns; it never runs when the
// transaction rolls back. Use it for in-process notices of what the
// transaction wrote (waking a worker, counting a metric), never for work
// that must not be lost: that belongs in the transaction (the outbox).
func (t *Tx) AfterCommit(f func()) { t.after = append(t.after, f) }

// InTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise (fn's error is returned as is). On SQLite the transaction
// takes the write lock at its start (BEGIN IMMEDIATE), and the transactions
// of concurrent calls are committed together (groupCommit): fn's changes
// are still all or nothing, and InTx returns only once they are committed.
// Once fn has started on SQLite, ctx no longer interrupts its statements.
//
// A database that cannot be reached or cannot write (see translate) makes
// InTx return a lipa Unavailable error with code "database_unavailable",
// whichever step failed.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	err := db.inTx(ctx, fn)
	if err != nil {
		err = translate(err)
		if lipa.ErrorKind(err) == lipa.Unavailable {
			db.probe.failed(err)
		}
	}
	return err
}

func (db *DB) inTx(ctx context.Context, fn func(*Tx) error) error {
	if db.writer != nil {
		return db.writer.run(ctx, fn)
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &Tx{tx: tx, q: tx, backend: db.backend}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback() // free the connection before the panic goes on
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range t.after {
		f()
	}
	return nil
}

// Read runs fn, which must only read, outside any transaction, so it
// never waits for a writer nor makes one wait: each of its statements runs
// on its own and sees what was committed when it started (what a statement
// in PostgreSQL's default READ COMMITTED transaction sees), on SQLite on
// one of the read-only connections (WAL lets them read beside the writer;
// a write fails there), on PostgreSQL on the pool. Its errors are InTx's.
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	t := &Tx{q: db.sql, backend: db.backend}
	if db.read != nil {
		t.q, t.stmts = db.read, db.readStmts
	}
	err := fn(t)
	t.stmts.prepare(t.missed)
	if err != nil {
		err = translate(err)
		if lipa.ErrorKind(err) == lipa.Unavailable {
			db.probe.failed(err)
		}
	}
	return err
}

// Lock serialises transactions that touch the same key (a CheckoutRequestID,
// a receipt) until this transaction ends: a PostgreSQL transaction-scoped
// advisory lock. On SQLite every write transaction is already serial, so it
// does nothing. Any key works, even one PostgreSQL could not store as text
// (it is hashed as storableText makes it).
func (t *Tx) Lock(ctx context.Context, key string) error {
	if t.backend != Postgres {
		return nil
	}
	_, err := t.q.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", storableText(key))
	if err != nil {
		return fmt.Errorf("lock %q: %w", key, err)
	}
	return nil
}

// rebound holds queries rebind has rewritten, by their text, at most
// maxStmts of them (Lipa's queries are a fixed set; past the bound a query
// is rewritten each time).
var (
	rebound  sync.Map
	nRebound atomic.Int64
)

// rebind turns the ? placeholders of a query into PostgreSQL's $1, $2, …
// Queries in this package never contain a literal question mark.
func (t *Tx) rebind(q string) string {
	if t.backend != Postgres {
		return q
	}
	if r, ok := rebound.Load(q); ok {
		return r.(string)
	}
	r := rebindPostgres(q)
	if nRebound.Add(1) <= maxStmts {
		rebound.Store(q, r)
	}
	return r
}

func rebindPostgres(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = t.rebind(q)
	if t.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if s := t.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.q.ExecContext(ctx, q, args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = t.rebind(q)
	if t.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.q.QueryContext(ctx, q, args...)
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = t.rebind(q)
	if t.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.q.QueryRowContext(ctx, q, args...)
}

// stmt returns q prepared on this transaction's connection when the cache
// holds it, and otherwise nil (q then runs unprepared this time, and is
// prepared once the transaction has ended).
func (t *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	ps, ok := t.stmts.get(q)
	switch {
	case !ok:
		t.missed = append(t.missed, q)
		return nil
	case ps == nil:
		return nil // could not be prepared: run it as it is
	case t.tx == nil:
		return ps // Read: on any connection of the pool
	}
	return t.tx.StmtContext(ctx, ps)
}

// maxStmts bounds how many distinct statements a stmtCache prepares; Lipa's
// queries are a fixed set (filters combine into a few dozen), so the bound
// is never reached unless a query is built from data, which none is.
const maxStmts = 512

// stmtCache holds statements prepared on one pool: database/sql prepares
// each on a connection the first time it runs there and keeps it, so a
// statement is parsed once per connection instead of each time it runs.
//
// A statement is added after the transaction (or Read) that first ran it
// has ended: preparing takes a connection, and SQLite's writer has only the
// one the transaction holds.
type stmtCache struct {
	pool *sql.DB
	mu   sync.RWMutex
	m    map[string]*sql.Stmt // nil value: preparing failed, run unprepared
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}}
}

func (c *stmtCache) get(q string) (*sql.Stmt, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.m[q]
	return s, ok
}

// prepare adds the statements qs not held yet. A failure is remembered (the
// statement then runs unprepared, as it did before): the transaction that
// ran it has reported any error it has.
func (c *stmtCache) prepare(qs []string) {
	if c == nil {
		return
	}
	for _, q := range qs {
		c.mu.RLock()
		_, ok := c.m[q]
		full := len(c.m) >= maxStmts
		c.mu.RUnlock()
		if ok || full {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := c.pool.PrepareContext(ctx, q)
		cancel()
		if err != nil {
			if ctx.Err() != nil || unavailable(err) || strings.Contains(err.Error(), "database is closed") {
				continue // not the statement's fault: try again another time
			}
			s = nil
		}
		c.mu.Lock()
		if _, ok := c.m[q]; ok && s != nil {
			s.Close() // another transaction prepared it meanwhile
		} else {
			c.m[q] = s
		}
		c.mu.Unlock()
	}
}

// dbTime prepares a time for storage: UTC, microsecond precision (what
// PostgreSQL keeps), and NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// fromNull returns the time scanned from a nullable column, in UTC.
func fromNull(n sql.NullTime) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return n.Time.UTC()
}
