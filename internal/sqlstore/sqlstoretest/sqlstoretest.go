// Package sqlstoretest gives tests a fresh, migrated Lipa database on each
// backend: a SQLite file in the test's temporary directory, and, when
// LIPA_TEST_POSTGRES_URL names a PostgreSQL server, a schema of its own on
// that server, dropped when the test ends.
//
// Without LIPA_TEST_POSTGRES_URL the PostgreSQL variants skip with a message
// saying so, unless LIPA_TEST_REQUIRE_POSTGRES=1, when they fail instead (CI
// sets it, so no PostgreSQL test is skipped there silently).
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// Backends lists the backends every store and end-to-end test runs on.
var Backends = []sqlstore.Backend{sqlstore.SQLite, sqlstore.Postgres}

// Run runs fn as a subtest once per backend, each with its own fresh
// database URL (see URL).
func Run(t *testing.T, fn func(t *testing.T, databaseURL string)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			fn(t, URL(t, b))
		})
	}
}

// URL returns the URL of a new, empty database on backend b that lives as
// long as the test. On PostgreSQL it is a new schema, selected through the
// URL's search_path, and dropped at cleanup.
func URL(t testing.TB, b sqlstore.Backend) string {
	t.Helper()
	if b == sqlstore.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "lipa.db")
	}
	base := os.Getenv("LIPA_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("LIPA_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal("LIPA_TEST_REQUIRE_POSTGRES=1 but LIPA_TEST_POSTGRES_URL is not set")
		}
		t.Skip("PostgreSQL test skipped: set LIPA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run it")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	defer admin.Close()
	buf := make([]byte, 6)
	rand.Read(buf)
	schema := "lipa_test_" + hex.EncodeToString(buf)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema on %s: %v", base, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		if _, err := a.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("LIPA_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated database at a fresh URL on backend b, closed at
// cleanup.
func Open(t testing.TB, b sqlstore.Backend) *sqlstore.DB {
	t.Helper()
	return OpenURL(t, URL(t, b))
}

// OpenURL opens and migrates the database at databaseURL, closed at cleanup.
func OpenURL(t testing.TB, databaseURL string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), databaseURL, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", databaseURL, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
