package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// roTables counts the tables in the database at databaseURL: in a SQLite
// file (which must exist), or in the PostgreSQL schema the URL's
// search_path selects.
func roTables(t *testing.T, databaseURL string) int {
	t.Helper()
	driver, dsn, q := "sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite:")+"?mode=ro", "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	var args []any
	if strings.HasPrefix(databaseURL, "postgres") {
		u, err := url.Parse(databaseURL)
		if err != nil {
			t.Fatal(err)
		}
		driver, dsn, q = "pgx", databaseURL, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1"
		args = append(args, u.Query().Get("search_path"))
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("count tables: %v", err)
	}
	return n
}

// TestReadOnlyCommandsCreateNothing: `apps list`, `webhooks list` and
// `callbacks unmatched` where there is no database fail with a message
// naming the DATABASE_URL they looked at, and leave no database file, no
// schema and no log file behind (they used to create an empty lipa.db and
// then say the app did not exist). On a database behind this build's
// migrations they ask for `lipa migrate`; on a current one they work, still
// without a log file.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	commands := [][]string{
		{"apps", "list"}, {"apps", "list", "--json"},
		{"webhooks", "list", "--app", "shop"}, {"webhooks", "list", "--app", "shop", "--json"},
		{"callbacks", "unmatched"}, {"callbacks", "unmatched", "--json"},
		{"review", "list"}, {"review", "list", "--json"}, {"audit", "list"}, {"audit", "list", "--json"},
	}
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		logFile := filepath.Join(t.TempDir(), "payments.log")
		env := map[string]string{"DATABASE_URL": databaseURL, "LOG_FILE": logFile}
		sqlitePath := ""
		if p, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
			sqlitePath = p
		}
		noneLeft := func(what string) {
			t.Helper()
			if _, err := os.Stat(logFile); !os.IsNotExist(err) {
				t.Errorf("%s: got a log file %s, want none", what, logFile)
			}
			if sqlitePath != "" {
				if m, _ := filepath.Glob(sqlitePath + "*"); len(m) != 0 {
					t.Errorf("%s: got %v, want no database file", what, m)
				}
			} else if n := roTables(t, databaseURL); n != 0 {
				t.Errorf("%s: got %d tables in the schema, want none", what, n)
			}
		}
		for _, args := range commands {
			code, stdout, stderr := runCLI(t, env, args...)
			what := "lipa " + strings.Join(args, " ")
			if code != 1 || !strings.Contains(stderr, "DATABASE_URL="+redactDatabaseURL(databaseURL)) || !strings.Contains(stderr, "no Lipa database") {
				t.Errorf("%s with no database: got exit %d, stderr %q; want 1 and a message naming DATABASE_URL=%s", what, code, stderr, databaseURL)
			}
			if stdout != "" {
				t.Errorf("%s with no database: got stdout %q, want none", what, stdout)
			}
			noneLeft(what)
		}

		if code, _, stderr := runCLI(t, env, "migrate"); code != 0 {
			t.Fatalf("lipa migrate: got exit %d (%s), want 0", code, stderr)
		}
		// One migration short, as after upgrading the binary.
		db := sqlstoretest.OpenURL(t, databaseURL) // migrates: a no-op now
		have, want, err := db.SchemaVersion(context.Background())
		if err != nil || have != want || want < 1 {
			t.Fatalf("SchemaVersion after migrate: got %d, %d, %v; want equal and positive", have, want, err)
		}
		raw := openRaw(t, databaseURL)
		hide := func(from, to int64) {
			t.Helper()
			q := "UPDATE goose_db_version SET version_id = " + strconv.FormatInt(to, 10) + " WHERE version_id = " + strconv.FormatInt(from, 10)
			if _, err := raw.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		hide(want, -want) // the newest migration looks unapplied
		code, _, stderr := runCLI(t, env, "apps", "list")
		if code != 1 || !strings.Contains(stderr, "lipa migrate") {
			t.Errorf("lipa apps list on a database one migration behind: got exit %d, stderr %q; want 1 asking for lipa migrate", code, stderr)
		}
		hide(-want, want)
		// The app the listed webhooks belong to, made without the CLI (which
		// would write the log).
		if _, _, err := gateway.New(db, nil, gateway.Config{Logger: slog.New(slog.DiscardHandler)}).CreateApp(context.Background(), gateway.Actor{Kind: gateway.ActorCLI, Name: "test"}, "shop"); err != nil {
			t.Fatal(err)
		}
		for _, args := range commands {
			if code, stdout, stderr := runCLI(t, env, args...); code != 0 {
				t.Errorf("lipa %s on a migrated database: got exit %d (stdout %q, stderr %q), want 0", strings.Join(args, " "), code, stdout, stderr)
			}
		}
		if _, err := os.Stat(logFile); !os.IsNotExist(err) {
			t.Errorf("read-only commands on a migrated database: got a log file, want none")
		}
	})
}

// openRaw opens databaseURL with database/sql directly, closed at cleanup.
func openRaw(t *testing.T, databaseURL string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite:")
	if strings.HasPrefix(databaseURL, "postgres") {
		driver, dsn = "pgx", databaseURL
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTerminalSafe checks what CLI tables print of text from outside.
func TestTerminalSafe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"ws_CO_191220191020363925", "ws_CO_191220191020363925"},
		{"Request cancelled by user", "Request cancelled by user"},
		{"Malipo ya dukani – asante", "Malipo ya dukani – asante"},
		{"ws_CO_\x1b[2J", `"ws_CO_\x1b[2J"`},
		{"x\x1b]0;title\a", `"x\x1b]0;title\a"`},
		{"two\tcolumns", `"two\tcolumns"`},
		{"line\r\nbreak", `"line\r\nbreak"`},
		{"del\x7f", `"del\x7f"`},
		{"nul\x00", `"nul\x00"`},
		{"c1 \u009b31m", `"c1 \u009b31m"`},
		{"bidi \u202egnp.exe", `"bidi \u202egnp.exe"`},
		{"bad \xff utf-8", `"bad \xff utf-8"`},
	} {
		if got := terminalSafe(c.in); got != c.want {
			t.Errorf("terminalSafe(%q): got %s, want %s", c.in, got, c.want)
		}
	}
}

// TestCallbacksUnmatchedEscapesControlCharacters: an unmatched callback
// whose CheckoutRequestID and ResultDesc hold terminal escape sequences is
// listed by `lipa callbacks unmatched` with them escaped, never raw.
func TestCallbacksUnmatchedEscapesControlCharacters(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		raw, err := os.ReadFile(filepath.Join(darajaFixtures, "stk-callback-cancelled-1032.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cb map[string]map[string]map[string]any
		if err := json.Unmarshal(raw, &cb); err != nil {
			t.Fatal(err)
		}
		cb["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_\x1b[2J\aCTRL1\x1b[1A"
		cb["Body"]["stkCallback"]["ResultDesc"] = "cancelled\x1b]0;owned\a\r\n\x7f"
		r := svc.do(t, "POST", "/api/mpesa/stk-callback/", "", cb)
		wantStatus(t, "POST /api/mpesa/stk-callback/", r, 200)
		deadline := time.Now().Add(e2eWaitTimeout)
		for {
			code, stdout, stderr := runCLI(t, svc.Env, "callbacks", "unmatched")
			if code != 0 {
				t.Fatalf("lipa callbacks unmatched: got exit %d (%s), want 0", code, stderr)
			}
			if strings.Contains(stdout, "CTRL1") {
				for i, b := range []byte(stdout) {
					if (b < 0x20 && b != '\n') || b == 0x7f {
						t.Fatalf("lipa callbacks unmatched: got byte %#x at %d of %q, want no control characters but line ends", b, i, stdout)
					}
				}
				if !strings.Contains(stdout, `"ws_CO_\x1b[2J\aCTRL1\x1b[1A"`) || !strings.Contains(stdout, `\x1b]0;owned\a\r\n\x7f"`) {
					t.Errorf("lipa callbacks unmatched: got %q, want the ID and the result escaped", stdout)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lipa callbacks unmatched: got %q, want the stored callback", stdout)
			}
			time.Sleep(e2ePollInterval)
		}
	})
}

// TestAppsWebhookCredentialsNeverShown: `lipa apps set-webhook` refuses a
// URL with a user name and password, and neither its error nor `apps
// list` (table or JSON) nor the log ever shows the password, also for a URL
// stored before they were refused.
func TestAppsWebhookCredentialsNeverShown(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		logFile := filepath.Join(t.TempDir(), "payments.log")
		env := map[string]string{"DATABASE_URL": databaseURL, "LOG_FILE": logFile}
		if code, _, stderr := runCLI(t, env, "apps", "create", "shop"); code != 0 {
			t.Fatalf("lipa apps create shop: got exit %d (%s), want 0", code, stderr)
		}
		code, stdout, stderr := runCLI(t, env, "apps", "set-webhook", "shop", "https://user:s3cretpass@hooks.example.com/lipa")
		if code != 1 || !strings.Contains(stderr, "invalid_webhook_url") || strings.Contains(stdout+stderr, "s3cretpass") {
			t.Errorf("lipa apps set-webhook with credentials: got exit %d, stdout %q, stderr %q; want 1, invalid_webhook_url, no password", code, stdout, stderr)
		}
		// As stored before they were refused.
		if _, err := openRaw(t, databaseURL).Exec("UPDATE apps SET webhook_url = 'https://user:s3cretpass@hooks.example.com/lipa' WHERE name = 'shop'"); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"apps", "list"}, {"apps", "list", "--json"}} {
			code, stdout, stderr := runCLI(t, env, args...)
			if code != 0 || strings.Contains(stdout+stderr, "s3cretpass") || strings.Contains(stdout, "user:") || !strings.Contains(stdout, "https://***@hooks.example.com/lipa") {
				t.Errorf("lipa %s: got exit %d, stdout %q; want 0 and the URL as https://***@hooks.example.com/lipa", strings.Join(args, " "), code, stdout)
			}
		}
		if log, _ := os.ReadFile(logFile); strings.Contains(string(log), "s3cretpass") {
			t.Errorf("LOG_FILE: got the password in %q", log)
		}
	})
}
