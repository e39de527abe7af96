package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// Settings of the Daraja the doctor tests play (a darajasim over HTTP that
// accepts only these credentials) and of a Lipa set up to agree with it.
const (
	doctorKey    = "doctorConsumerKey"
	doctorSecret = "doctorConsumerSecret"
	doctorToken  = "doctorTok0123456789abcdefghijKLMN"
	// doctorHost stands for a public address: TEST-NET-3 (RFC 5737) is
	// not routed, but nothing but its documentation status sets it apart,
	// and an IP literal keeps the tests off the network's DNS.
	doctorHost = "203.0.113.10"
)

// doctorSim serves a simulator that, like Daraja, accepts only
// doctorKey/doctorSecret and shortcode 174379 with the sandbox passkey,
// and whose clock (and Date header) is now. It returns its base URL.
func doctorSim(t *testing.T, now func() time.Time) string {
	t.Helper()
	sim := darajasim.New(darajasim.Config{ConsumerKey: doctorKey, ConsumerSecret: doctorSecret,
		ShortCodes: map[string]lipa.Secret{darajasim.SandboxShortCode: darajasim.SandboxPasskey}, Now: now})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return srv.URL
}

// doctorEnv is a sandbox configuration that agrees with the Daraja at
// simURL and uses the database at databaseURL: every check passes but
// c2b-registered (nothing was registered yet).
func doctorEnv(t *testing.T, databaseURL, simURL string) map[string]string {
	return map[string]string{
		"MPESA_ENVIRONMENT": "sandbox", "MPESA_BASE_URL": simURL, "MPESA_TIMEOUT": "10s",
		"MPESA_CONSUMER_KEY": doctorKey, "MPESA_CONSUMER_SECRET": doctorSecret,
		"MPESA_SHORTCODE": darajasim.SandboxShortCode, "MPESA_PASSKEY": darajasim.SandboxPasskey.Reveal(),
		"MPESA_CALLBACK_URL": "https://" + doctorHost + "/api/stk/callback/", "LIPA_CALLBACK_TOKEN": doctorToken,
		"DATABASE_URL": databaseURL, "LOG_FILE": filepath.Join(t.TempDir(), "payments.log"),
	}
}

// runDoctor runs `lipa doctor --json` in-process and returns its exit
// status and findings; stderr must stay empty.
func runDoctor(t *testing.T, env map[string]string, args ...string) (int, []finding) {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, append([]string{"doctor", "--json"}, args...)...)
	if stderr != "" {
		t.Errorf("lipa doctor --json: got stderr %q, want none", stderr)
	}
	var fs []finding
	if err := json.Unmarshal([]byte(stdout), &fs); err != nil {
		t.Fatalf("lipa doctor --json: got %q, want a JSON array of findings: %v", stdout, err)
	}
	return code, fs
}

// statusOf returns the worst status of check's findings (fail, warn, ok,
// skip) and their messages joined, or "" when there is none.
func statusOf(fs []finding, check string) (status, string) {
	var got status
	var msgs []string
	rank := map[status]int{statusSkip: 1, statusOK: 2, statusWarn: 3, statusFail: 4}
	for _, f := range fs {
		if f.Check != check {
			continue
		}
		msgs = append(msgs, f.Message+" "+f.Fix)
		if rank[f.Status] > rank[got] {
			got = f.Status
		}
	}
	return got, strings.Join(msgs, " | ")
}

// TestDoctor runs `lipa doctor` against the simulator over HTTP with a
// good sandbox setup and with one thing wrong at a time, and checks what
// each check says and the exit status.
func TestDoctor(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		sqlstoretest.OpenURL(t, databaseURL) // migrated, as `lipa serve` leaves it
		sim := doctorSim(t, time.Now)
		skewed := doctorSim(t, func() time.Time { return time.Now().Add(5 * time.Minute) })
		good := map[string]status{
			checkConfig: statusOK, checkDatabase: statusOK, checkOAuth: statusOK, checkClock: statusOK, checkPasskey: statusOK,
			checkTxnType: statusOK, checkCallbackURL: statusOK, checkC2BURLs: statusOK, checkC2BRegistered: statusWarn,
		}
		for _, c := range []struct {
			name    string
			env     map[string]string // over doctorEnv; "<unset>" removes
			code    int
			check   string // the check that must report it ("" for the good setup)
			status  status
			mention string // words its findings must hold
			c2b     status // what c2b-urls must say ("" for anything): the C2B URLs share the callback URL's scheme, host and token only
		}{
			{name: "a good setup", code: 0},
			{name: "wrong consumer secret", env: map[string]string{"MPESA_CONSUMER_SECRET": "notTheSecret"}, code: 1,
				check: checkOAuth, status: statusFail, mention: "MPESA_CONSUMER_SECRET"},
			{name: "wrong passkey", env: map[string]string{"MPESA_PASSKEY": "0123456789abcdef0123456789abcdef"}, code: 1,
				check: checkPasskey, status: statusFail, mention: "Wrong credentials"},
			{name: "shortcode not on M-Pesa Express", env: map[string]string{"MPESA_SHORTCODE": "600123"}, code: 1,
				check: checkPasskey, status: statusFail, mention: "Merchant does not exist"},
			{name: "Daraja not reachable", env: map[string]string{"MPESA_BASE_URL": "http://127.0.0.1:1"}, code: 1,
				check: checkOAuth, status: statusFail, mention: "MPESA_BASE_URL"},
			{name: "clock five minutes behind Daraja's", env: map[string]string{"MPESA_BASE_URL": skewed}, code: 1,
				check: checkClock, status: statusFail, mention: "behind"},
			{name: "http callback URL in production", env: map[string]string{"MPESA_ENVIRONMENT": "production", "MPESA_CALLBACK_URL": "http://" + doctorHost + "/api/stk/callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "uses http", c2b: statusFail},
			{name: "callback URL with mpesa", env: map[string]string{"MPESA_CALLBACK_URL": "https://" + doctorHost + "/api/mpesa/stk-callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: `"mpesa"`, c2b: statusOK},
			{name: "callback URL without the token", env: map[string]string{"LIPA_CALLBACK_TOKEN": "<unset>", "MPESA_ALLOW_TOKENLESS_CALLBACKS": "true"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "secret token", c2b: statusFail},
			{name: "callback URL holding the token already", env: map[string]string{"MPESA_CALLBACK_URL": "https://" + doctorHost + "/api/stk/callback/" + doctorToken + "/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "already holds LIPA_CALLBACK_TOKEN"},
			{name: "callback URL on another path", env: map[string]string{"MPESA_CALLBACK_URL": "https://" + doctorHost + "/payments/callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "/api/stk/callback/"},
			{name: "callback URL with a query", env: map[string]string{"MPESA_CALLBACK_URL": "https://" + doctorHost + "/api/stk/callback/?shop=1"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "query", c2b: statusOK},
			{name: "callback URL on a private IP", env: map[string]string{"MPESA_CALLBACK_URL": "https://10.20.30.40/api/stk/callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "private", c2b: statusFail},
			{name: "callback URL on a link-local IP", env: map[string]string{"MPESA_CALLBACK_URL": "https://169.254.10.20/api/stk/callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "link-local"},
			{name: "callback host resolving to loopback", env: map[string]string{"MPESA_CALLBACK_URL": "https://localhost/api/stk/callback/"}, code: 1,
				check: checkCallbackURL, status: statusFail, mention: "loopback"},
			{name: "callback URL behind a path prefix", env: map[string]string{"MPESA_CALLBACK_URL": "https://" + doctorHost + "/lipa/api/stk/callback/"}, code: 0,
				check: checkC2BURLs, status: statusWarn, mention: "/lipa"},
			{name: "a till with its store number twice", env: map[string]string{"MPESA_TRANSACTION_TYPE": "CustomerBuyGoodsOnline", "MPESA_PARTY_B": "174379"}, code: 0,
				check: checkTxnType, status: statusWarn, mention: "store or head-office"},
			{name: "a setting that does not parse", env: map[string]string{"LIPA_RECONCILE_AFTER": "soon"}, code: 1,
				check: checkConfig, status: statusFail, mention: "LIPA_RECONCILE_AFTER"},
		} {
			t.Run(c.name, func(t *testing.T) {
				env := doctorEnv(t, databaseURL, sim)
				for k, v := range c.env {
					if v == "<unset>" {
						delete(env, k)
					} else {
						env[k] = v
					}
				}
				code, fs := runDoctor(t, env)
				if code != c.code {
					t.Errorf("exit status: got %d, want %d; findings %+v", code, c.code, fs)
				}
				if c.check == "" {
					for check, want := range good {
						if got, msg := statusOf(fs, check); got != want {
							t.Errorf("%s: got %q (%s), want %q", check, got, msg, want)
						}
					}
					return
				}
				got, msg := statusOf(fs, c.check)
				if got != c.status || !strings.Contains(msg, c.mention) {
					t.Errorf("%s: got %q %q, want %q mentioning %q", c.check, got, msg, c.status, c.mention)
				}
				if got, msg := statusOf(fs, checkC2BURLs); c.c2b != "" && got != c.c2b {
					t.Errorf("%s: got %q %q, want %q", checkC2BURLs, got, msg, c.c2b)
				}
				for _, f := range fs {
					if strings.Contains(f.Message+f.Fix, doctorToken) || strings.Contains(f.Message+f.Fix, doctorSecret) {
						t.Errorf("finding %+v shows the callback token or the consumer secret", f)
					}
				}
			})
		}
	})
}

// TestDoctorConfigListsEveryWrongSetting: each wrong setting is its own
// fail line naming it, not only the first one.
func TestDoctorConfigListsEveryWrongSetting(t *testing.T) {
	env := doctorEnv(t, sqlstoretest.URL(t, sqlstore.SQLite), doctorSim(t, time.Now))
	maps.Copy(env, map[string]string{"MPESA_TIMEOUT": "0s", "LIPA_WEBHOOK_BACKOFF": "a while", "MPESA_C2B_VERSION": "v3", "LIPA_CALLBACK_TOKEN": "short"})
	code, fs := runDoctor(t, env)
	var named []string
	for _, f := range fs {
		if f.Check == checkConfig && f.Status == statusFail {
			named = append(named, strings.Fields(f.Message)[0])
		}
	}
	slices.Sort(named)
	want := []string{"LIPA_CALLBACK_TOKEN", "LIPA_WEBHOOK_BACKOFF", "MPESA_C2B_VERSION", "MPESA_TIMEOUT"}
	if code != 1 || !slices.Equal(named, want) {
		t.Errorf("got exit %d, config failures naming %v; want 1 and %v", code, named, want)
	}
}

// TestDoctorDatabase: the database check opens what is there without
// creating anything, and tells a current schema, one behind, none yet and
// a database that does not answer apart.
func TestDoctorDatabase(t *testing.T) {
	sim := doctorSim(t, time.Now)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		env := doctorEnv(t, databaseURL, sim)

		code, fs := runDoctor(t, env)
		if got, msg := statusOf(fs, checkDatabase); got != statusWarn || !strings.Contains(msg, "lipa migrate") || code != 0 {
			t.Errorf("no database yet: got exit %d, %q %q; want 0 and a warning suggesting lipa migrate", code, got, msg)
		}
		if p, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("lipa doctor created %s, want nothing created", p)
			}
		} else if n := roTables(t, databaseURL); n != 0 {
			t.Errorf("lipa doctor created %d tables, want none", n)
		}

		db := sqlstoretest.OpenURL(t, databaseURL)
		_, want, err := db.SchemaVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if code, fs := runDoctor(t, env); code != 0 {
			t.Errorf("current schema: got exit %d (%+v), want 0", code, fs)
		} else if got, msg := statusOf(fs, checkDatabase); got != statusOK {
			t.Errorf("current schema: got %q %q, want ok", got, msg)
		}

		raw := openRaw(t, databaseURL)
		move := func(from, to int64) {
			t.Helper()
			if _, err := raw.Exec("UPDATE goose_db_version SET version_id = " + strconv.FormatInt(to, 10) + " WHERE version_id = " + strconv.FormatInt(from, 10)); err != nil {
				t.Fatal(err)
			}
		}
		move(want, -want) // the newest migration looks unapplied, as after installing a newer lipa
		code, fs = runDoctor(t, env)
		move(-want, want)
		if got, msg := statusOf(fs, checkDatabase); got != statusFail || !strings.Contains(msg, "lipa migrate") || code != 1 {
			t.Errorf("one migration behind: got exit %d, %q %q; want 1 and a failure asking for lipa migrate", code, got, msg)
		}

		down := maps.Clone(env)
		if p, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
			junk := filepath.Join(filepath.Dir(p), "not-a-database.db")
			if err := os.WriteFile(junk, bytes.Repeat([]byte("not SQLite "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			down["DATABASE_URL"] = "sqlite:" + junk
		} else {
			down["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/test?sslmode=disable"
		}
		code, fs = runDoctor(t, down)
		if got, msg := statusOf(fs, checkDatabase); got != statusFail || !strings.Contains(msg, "does not answer") || code != 1 {
			t.Errorf("database that does not answer: got exit %d, %q %q; want 1 and a failure", code, got, msg)
		}
		if got, _ := statusOf(fs, checkC2BRegistered); got != statusSkip {
			t.Errorf("c2b-registered without a database: got %q, want skip", got)
		}
	})
}

// TestDoctorC2BRegistration: `lipa c2b register` records what it
// registered, and the doctor compares that record with the URLs Lipa
// would register now (Daraja cannot be asked).
func TestDoctorC2BRegistration(t *testing.T) {
	sim := doctorSim(t, time.Now)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		env := doctorEnv(t, databaseURL, sim)
		if code, stdout, stderr := runCLI(t, env, "c2b", "register"); code != 0 || strings.Contains(stdout, "could not record") {
			t.Fatalf("lipa c2b register: got exit %d, %q %q; want 0, recorded", code, stdout, stderr)
		}
		code, fs := runDoctor(t, env)
		if got, msg := statusOf(fs, checkC2BRegistered); got != statusOK || code != 0 {
			t.Errorf("after c2b register: got exit %d, %q %q; want 0 and ok", code, got, msg)
		}
		for _, c := range []struct{ name, key, value, mention string }{
			{"a new token", "LIPA_CALLBACK_TOKEN", "newDoctorTok0123456789abcdefghij", "older LIPA_CALLBACK_TOKEN"},
			{"another host", "MPESA_CALLBACK_URL", "https://198.51.100.7/api/stk/callback/", "198.51.100.7"},
			{"another shortcode", "MPESA_SHORTCODE", "600123", "shortcode 174379, now 600123"},
		} {
			changed := maps.Clone(env)
			changed[c.key] = c.value
			_, fs := runDoctor(t, changed)
			if got, msg := statusOf(fs, checkC2BRegistered); got != statusFail || !strings.Contains(msg, c.mention) {
				t.Errorf("%s since the registration: got %q %q, want a failure mentioning %q", c.name, got, msg, c.mention)
			}
		}
	})
}

// TestDoctorSimulatorMode: with no configuration but a database `lipa
// serve` made, every check passes or says why it does not apply, so a new
// user's first `lipa doctor` exits 0; the Daraja checks ran against a
// built-in simulator.
func TestDoctorSimulatorMode(t *testing.T) {
	databaseURL := sqlstoretest.URL(t, sqlstore.SQLite)
	startTestService(t, databaseURL, nil) // migrates and stores the simulator's callback token
	code, fs := runDoctor(t, map[string]string{"DATABASE_URL": databaseURL})
	if code != 0 {
		t.Errorf("got exit %d, want 0: %+v", code, fs)
	}
	for _, f := range fs {
		if f.Status == statusFail || f.Status == statusWarn {
			t.Errorf("got %+v, want ok or skip", f)
		}
	}
	if got, msg := statusOf(fs, checkPasskey); got != statusOK || !strings.Contains(msg, "built-in simulator") {
		t.Errorf("stk-passkey: got %q %q, want ok from the built-in simulator", got, msg)
	}
}

// TestDoctorOutput: --json prints exactly an array of {check, status,
// message, fix} with known statuses; the text report is one line per
// finding, each failure with its fix, then a count; --strict fails on
// warnings; a stray argument is a usage error.
func TestDoctorOutput(t *testing.T) {
	env := doctorEnv(t, sqlstoretest.URL(t, sqlstore.SQLite), doctorSim(t, time.Now))
	env["MPESA_CALLBACK_URL"] = "https://10.20.30.40/api/stk/callback/"

	_, stdout, _ := runCLI(t, env, "doctor", "--json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw) == 0 {
		t.Fatalf("--json: got %q (%v), want a non-empty JSON array", stdout, err)
	}
	for _, f := range raw {
		keys := slices.Sorted(maps.Keys(f))
		st, _ := f["status"].(string)
		if !slices.Equal(keys, []string{"check", "fix", "message", "status"}) || !slices.Contains([]string{"ok", "warn", "fail", "skip"}, st) {
			t.Errorf("--json element %v: want exactly check, status (ok|warn|fail|skip), message, fix", f)
		}
		for _, k := range keys {
			if _, ok := f[k].(string); !ok {
				t.Errorf("--json element %v: %s is not a string", f, k)
			}
		}
	}

	code, stdout, stderr := runCLI(t, env, "doctor")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 1 || stderr != "" || len(lines) != len(raw)+2 {
		t.Fatalf("text: got exit %d, %d lines, stderr %q; want 1, %d findings + blank + count, no stderr:\n%s", code, len(lines), stderr, len(raw), stdout)
	}
	for _, l := range lines[:len(raw)] {
		if strings.HasPrefix(l, "FAIL ") && !strings.Contains(l, " Fix: ") {
			t.Errorf("text: %q fails without saying what to do", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "fail") {
		t.Errorf("text: last line %q, want the count", lines[len(lines)-1])
	}

	env = doctorEnv(t, sqlstoretest.URL(t, sqlstore.SQLite), doctorSim(t, time.Now))
	sqlstoretest.OpenURL(t, env["DATABASE_URL"])
	if code, _, _ := runCLI(t, env, "doctor"); code != 0 {
		t.Errorf("good setup with a warning (no C2B registration): got exit %d, want 0", code)
	}
	if code, _, _ := runCLI(t, env, "doctor", "--strict"); code != 1 {
		t.Errorf("--strict with a warning: got exit %d, want 1", code)
	}
	if code, _, stderr := runCLI(t, env, "doctor", "extra"); code != 2 || !strings.Contains(stderr, "usage") {
		t.Errorf("stray argument: got exit %d, %q; want 2 and the usage", code, stderr)
	}
}

// TestDoctorBinary runs the built lipa binary's doctor against the
// simulator: the report goes to stdout, the exit status says whether a
// check failed.
func TestDoctorBinary(t *testing.T) {
	bin := buildLipa(t)
	databaseURL := sqlstoretest.URL(t, sqlstore.SQLite)
	sqlstoretest.OpenURL(t, databaseURL)
	dir := t.TempDir() // no .env here
	for _, c := range []struct {
		name   string
		secret string
		code   int
	}{{"good credentials", doctorSecret, 0}, {"wrong consumer secret", "notTheSecret", 1}} {
		t.Run(c.name, func(t *testing.T) {
			env := doctorEnv(t, databaseURL, doctorSim(t, time.Now))
			env["MPESA_CONSUMER_SECRET"] = c.secret
			cmd := exec.Command(bin, "doctor", "--json")
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			var fs []finding
			if jerr := json.Unmarshal(stdout.Bytes(), &fs); jerr != nil || code != c.code || stderr.Len() != 0 {
				t.Fatalf("lipa doctor --json: got exit %d (%v), stdout %q, stderr %q; want %d, JSON findings, no stderr", code, err, stdout.String(), stderr.String(), c.code)
			}
			want := statusOK
			if c.code != 0 {
				want = statusFail
			}
			if got, msg := statusOf(fs, checkOAuth); got != want {
				t.Errorf("daraja-oauth: got %q %q, want %q", got, msg, want)
			}
		})
	}
}

// TestDoctorTextIsTerminalSafe: Daraja's words reach the report quoted
// when they hold control characters, so an answer from outside Lipa cannot
// drive the operator's terminal.
func TestDoctorTextIsTerminalSafe(t *testing.T) {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"requestId":"1-2-3","errorCode":"400.008.01","errorMessage":"Invalid Authentication passed\u001b[2J\u001b]0;owned\u0007"}`)
	}))
	t.Cleanup(fake.Close)
	env := doctorEnv(t, sqlstoretest.URL(t, sqlstore.SQLite), fake.URL)
	code, stdout, _ := runCLI(t, env, "doctor")
	if code != 1 || !strings.Contains(stdout, "400.008.01") || strings.ContainsAny(stdout, "\x1b\x07") {
		t.Errorf("got exit %d, report %q; want 1, Daraja's answer named, no control characters", code, stdout)
	}
}
