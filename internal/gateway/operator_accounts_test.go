package gateway_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

const testPassword = lipa.Secret("Correct-Horse-Battery-4217")

var cliActor = gateway.Actor{Kind: gateway.ActorCLI, Name: "tester"}

// opsFixture is a gateway without Daraja (as the CLI has it) on a fresh
// database, with a fake clock and its log in a buffer.
type opsFixture struct {
	g     *gateway.Gateway
	clock *fakeClock
	log   *bytes.Buffer
	url   string
}

func newOpsFixture(t *testing.T, databaseURL string) *opsFixture {
	t.Helper()
	f := &opsFixture{clock: &fakeClock{t: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)}, log: &bytes.Buffer{}, url: databaseURL}
	f.g = f.replica(t)
	return f
}

// replica is another gateway on the same database, as another lipa serve
// process would have.
func (f *opsFixture) replica(t *testing.T) *gateway.Gateway {
	return gateway.New(sqlstoretest.OpenURL(t, f.url), nil, gateway.Config{Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.log, nil))})
}

func (f *opsFixture) signIn(t *testing.T, user string, pw lipa.Secret, policy gateway.SessionPolicy) (lipa.Secret, error) {
	t.Helper()
	_, token, err := f.g.SignIn(context.Background(), gateway.Actor{Kind: gateway.ActorConsole, Name: user},
		gateway.SignInRequest{Password: pw, SourceAddr: "127.0.0.1"}, policy)
	return token, err
}

// TestOperatorAccounts: accounts are created with a role and a password of
// at least 12 characters; sign-in takes the right password only, tells an
// unknown username from a wrong password to nobody, and refuses a disabled
// account.
func TestOperatorAccounts(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newOpsFixture(t, databaseURL)
		ctx := context.Background()
		if _, err := f.g.CreateOperator(ctx, cliActor, "boss", lipa.RoleAdmin, testPassword); err != nil {
			t.Fatalf("CreateOperator boss: got error %v, want nil", err)
		}
		if _, err := f.g.CreateOperator(ctx, cliActor, "watcher", lipa.RoleViewer, gateway.NewPassword()); err != nil {
			t.Fatalf("CreateOperator watcher with a generated password: got error %v, want nil", err)
		}
		for _, c := range []struct {
			name, user string
			role       lipa.Role
			pw         lipa.Secret
			code       string
		}{
			{"taken name", "boss", lipa.RoleAdmin, testPassword, "operator_exists"},
			{"upper case name", "Boss2", lipa.RoleAdmin, testPassword, "invalid_username"},
			{"empty name", "", lipa.RoleAdmin, testPassword, "invalid_username"},
			{"unknown role", "clerk", lipa.Role("owner"), testPassword, "invalid_role"},
			{"short password", "clerk", lipa.RoleViewer, "short-pw-11", "invalid_password"},
			{"huge password", "clerk", lipa.RoleViewer, lipa.Secret(strings.Repeat("x", gateway.MaxPasswordLength+1)), "invalid_password"},
		} {
			_, err := f.g.CreateOperator(ctx, cliActor, c.user, c.role, c.pw)
			if got := lipa.ErrorCode(err); got != c.code {
				t.Errorf("CreateOperator %s: got %q (%v), want %q", c.name, got, err, c.code)
			}
		}

		for _, c := range []struct {
			name, user string
			pw         lipa.Secret
			code       string
		}{
			{"right password", "boss", testPassword, ""},
			{"username typed in capitals, with spaces", "  BOSS ", testPassword, ""},
			{"wrong password", "boss", testPassword + "x", "invalid_credentials"},
			{"empty password", "boss", "", "invalid_credentials"},
			{"unknown username", "nobody", testPassword, "invalid_credentials"},
		} {
			token, err := f.signIn(t, c.user, c.pw, gateway.SessionPolicy{})
			if got := codeOrEmpty(err); got != c.code {
				t.Errorf("SignIn %s: got %q (%v), want %q", c.name, got, err, c.code)
			}
			if c.code == "" && token == "" {
				t.Errorf("SignIn %s: got no token", c.name)
			}
		}

		ops, err := f.g.Operators(ctx)
		if err != nil || len(ops) != 2 || ops[0].Username != "boss" || ops[0].Role != lipa.RoleAdmin || ops[1].Role != lipa.RoleViewer {
			t.Fatalf("Operators: got %+v, %v, want boss (admin) and watcher (viewer)", ops, err)
		}
		if ops[0].LastSignInAt.IsZero() || !ops[1].LastSignInAt.IsZero() {
			t.Errorf("Operators: got last sign-in %v and %v, want boss's set and watcher's never", ops[0].LastSignInAt, ops[1].LastSignInAt)
		}

		token, _ := f.signIn(t, "boss", testPassword, gateway.SessionPolicy{})
		if err := f.g.SetOperatorDisabled(ctx, cliActor, "boss", true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Session(ctx, token, gateway.SessionPolicy{}); lipa.ErrorKind(err) != lipa.Unauthorized {
			t.Errorf("session of a disabled operator: got %v, want Unauthorized", err)
		}
		if _, err := f.signIn(t, "boss", testPassword, gateway.SessionPolicy{}); lipa.ErrorCode(err) != "operator_disabled" {
			t.Errorf("SignIn of a disabled operator with the right password: got %v, want operator_disabled", err)
		}
		if _, err := f.signIn(t, "boss", "wrong-password-0", gateway.SessionPolicy{}); lipa.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("SignIn of a disabled operator with a wrong password: got %v, want invalid_credentials", err)
		}
		if err := f.g.SetOperatorDisabled(ctx, cliActor, "boss", false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.signIn(t, "boss", testPassword, gateway.SessionPolicy{}); err != nil {
			t.Errorf("SignIn after enable: got %v, want nil", err)
		}
		if err := f.g.SetOperatorDisabled(ctx, cliActor, "nobody", true); lipa.ErrorCode(err) != "operator_not_found" {
			t.Errorf("SetOperatorDisabled of an unknown operator: got %v, want operator_not_found", err)
		}
	})
}

func codeOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return lipa.ErrorCode(err)
}

// TestPasswordsStoredAsArgon2idOnly: the database holds an argon2id hash,
// never the password, and nothing logged holds it.
func TestPasswordsStoredAsArgon2idOnly(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newOpsFixture(t, databaseURL)
		ctx := context.Background()
		if _, err := f.g.CreateOperator(ctx, cliActor, "boss", lipa.RoleAdmin, testPassword); err != nil {
			t.Fatal(err)
		}
		if err := f.g.SetOperatorPassword(ctx, cliActor, "boss", testPassword+"-2"); err != nil {
			t.Fatal(err)
		}
		f.signIn(t, "boss", testPassword, gateway.SessionPolicy{})
		f.signIn(t, "boss", testPassword+"-2", gateway.SessionPolicy{})
		var hash string
		if err := rawDB(t, databaseURL).QueryRow("SELECT password_hash FROM operators WHERE username = 'boss'").Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, string(testPassword)) {
			t.Errorf("stored password: got %q, want an argon2id PHC string without the password", hash)
		}
		if strings.Contains(f.log.String(), string(testPassword)) {
			t.Errorf("log: got the password in %q", f.log.String())
		}
	})
}

// rawDB opens the test database directly, for what the store does not
// expose.
func rawDB(t *testing.T, databaseURL string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", databaseURL
	if strings.HasPrefix(databaseURL, "sqlite:") {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite:")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSessions: a session lives in the database, so another replica
// serves it; it ends after the idle timeout without requests, at the
// absolute lifetime whatever the activity, at sign-out, and when the
// operator's password changes.
func TestSessions(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		f := newOpsFixture(t, databaseURL)
		ctx := context.Background()
		if _, err := f.g.CreateOperator(ctx, cliActor, "boss", lipa.RoleAdmin, testPassword); err != nil {
			t.Fatal(err)
		}
		other := f.replica(t)
		policy := gateway.SessionPolicy{Idle: 30 * time.Minute, Lifetime: 2 * time.Hour}
		valid := func(g *gateway.Gateway, token lipa.Secret) error {
			_, err := g.Session(ctx, token, policy)
			return err
		}

		token, err := f.signIn(t, "boss", testPassword, policy)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := other.Session(ctx, token, policy); err != nil || s.Operator.Username != "boss" || s.Operator.Role != lipa.RoleAdmin {
			t.Fatalf("session on another replica: got %+v, %v, want boss (admin)", s, err)
		}
		var stored int
		rawDB(t, databaseURL).QueryRow("SELECT COUNT(*) FROM operator_sessions WHERE token_hash = '" + token.Reveal() + "'").Scan(&stored)
		if stored != 0 {
			t.Errorf("operator_sessions: got the token itself stored, want only its hash")
		}

		// Requests every 20 minutes keep it alive until the lifetime ends.
		for range 5 {
			f.clock.Advance(20 * time.Minute)
			if err := valid(other, token); err != nil {
				t.Fatalf("session %v after sign-in with a request every 20 min: got %v, want valid", f.clock.Now().Sub(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)), err)
			}
		}
		f.clock.Advance(20 * time.Minute) // 2 h after sign-in
		if err := valid(f.g, token); lipa.ErrorCode(err) != "session_expired" {
			t.Errorf("session at its absolute lifetime: got %v, want session_expired", err)
		}
		if err := valid(f.g, token); lipa.ErrorCode(err) != "no_session" {
			t.Errorf("session after it expired: got %v, want no_session (removed)", err)
		}

		token, _ = f.signIn(t, "boss", testPassword, policy)
		f.clock.Advance(29 * time.Minute)
		if err := valid(f.g, token); err != nil {
			t.Fatalf("session 29 min idle: got %v, want valid", err)
		}
		f.clock.Advance(30 * time.Minute)
		if err := valid(other, token); lipa.ErrorCode(err) != "session_expired" {
			t.Errorf("session 30 min idle: got %v, want session_expired", err)
		}

		token, _ = f.signIn(t, "boss", testPassword, policy)
		if err := other.SignOut(ctx, gateway.Actor{Kind: gateway.ActorConsole, Name: "boss"}, token); err != nil {
			t.Fatal(err)
		}
		if err := valid(f.g, token); lipa.ErrorKind(err) != lipa.Unauthorized {
			t.Errorf("session after sign-out on another replica: got %v, want Unauthorized", err)
		}

		token, _ = f.signIn(t, "boss", testPassword, policy)
		if err := f.g.SetOperatorPassword(ctx, cliActor, "boss", testPassword+"-new"); err != nil {
			t.Fatal(err)
		}
		if err := valid(f.g, token); lipa.ErrorKind(err) != lipa.Unauthorized {
			t.Errorf("session after a password change: got %v, want Unauthorized", err)
		}
		if err := valid(f.g, "made-up-token"); lipa.ErrorCode(err) != "no_session" {
			t.Errorf("made-up token: got %v, want no_session", err)
		}
		if err := valid(f.g, ""); lipa.ErrorCode(err) != "no_session" {
			t.Errorf("empty token: got %v, want no_session", err)
		}
	})
}
