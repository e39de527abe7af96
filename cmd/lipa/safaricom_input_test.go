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
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestNewCallbackTokenHasNoRefusedWord: `lipa callback-token` and the
// simulator's generated token never hold a word Safaricom refuses in
// callback URLs (about 2 in 1,000 random draws would), and keep their
// shape. 20,000 samples would show some forty such words if the check
// were missing.
func TestNewCallbackTokenHasNoRefusedWord(t *testing.T) {
	seen := map[string]bool{}
	for range 20000 {
		tok := newCallbackToken()
		if w := daraja.RefusedURLWord(tok); w != "" {
			t.Fatalf("newCallbackToken: got %q, which contains %q", tok, w)
		}
		if !callbackTokenRE.MatchString(tok) || len(tok) != 32 {
			t.Fatalf("newCallbackToken: got %q, want 32 URL-safe characters", tok)
		}
		if seen[tok] {
			t.Fatalf("newCallbackToken: %q drawn twice", tok)
		}
		seen[tok] = true
	}
	code, stdout, _ := runCLI(t, map[string]string{}, "callback-token")
	if tok := strings.TrimSpace(stdout); code != 0 || !callbackTokenRE.MatchString(tok) || daraja.RefusedURLWord(tok) != "" {
		t.Errorf("lipa callback-token: got exit %d, %q; want 0 and a clean token", code, stdout)
	}
}

// sandboxEnv is a sandbox configuration against a fake Daraja at baseURL,
// with the given callback token.
func sandboxEnv(t *testing.T, baseURL, token string) map[string]string {
	return map[string]string{
		"MPESA_ENVIRONMENT": "sandbox", "MPESA_BASE_URL": baseURL,
		"MPESA_CONSUMER_KEY": "ck", "MPESA_CONSUMER_SECRET": "cs", "MPESA_SHORTCODE": "174379",
		"MPESA_PASSKEY":      "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
		"MPESA_CALLBACK_URL": "https://pay.example.com/api/stk/callback/", "LIPA_CALLBACK_TOKEN": token,
		"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "lipa.db"), "LOG_FILE": filepath.Join(t.TempDir(), "payments.log"),
		"LISTEN_ADDR": "127.0.0.1:0",
	}
}

// fakeDaraja answers OAuth and C2B URL registration like Daraja and counts
// the registrations it receives.
func fakeDaraja(t *testing.T) (url string, registrations *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "registerurl") {
			n.Add(1)
			io.WriteString(w, `{"OriginatorCoversationID":"1-2-3","ResponseCode":"0","ResponseDescription":"Success"}`)
			return
		}
		io.WriteString(w, `{"access_token":"faketoken0123456789","expires_in":"3599"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestRefusedWordsInCallbackURLs: a LIPA_CALLBACK_TOKEN holding a word
// Safaricom refuses stops `lipa serve` and `lipa c2b register` with an
// error naming the word (never the token), and C2B URLs holding one are not
// registered; nothing reaches Daraja. Clean settings register.
func TestRefusedWordsInCallbackURLs(t *testing.T) {
	base, registrations := fakeDaraja(t)
	const badToken = "q7SqlZ0123456789abcdefghijklmnop"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantWord string // "" for success
	}{
		{"serve, token with Sql", []string{"serve"}, map[string]string{"LIPA_CALLBACK_TOKEN": badToken}, "sql"},
		{"serve, token with QUERY", []string{"serve"}, map[string]string{"LIPA_CALLBACK_TOKEN": "abcQUERYdef0123456789xyz"}, "query"},
		{"c2b register, token with Sql", []string{"c2b", "register"}, map[string]string{"LIPA_CALLBACK_TOKEN": badToken}, "sql"},
		{"c2b register, token with exe", []string{"c2b", "register"}, map[string]string{"LIPA_CALLBACK_TOKEN": "abcexe0123456789xyzXYZ"}, "exe"},
		{"c2b register, host with mpesa", []string{"c2b", "register"},
			map[string]string{"MPESA_CALLBACK_URL": "https://mpesa.example.com/api/stk/callback/"}, "mpesa"},
		{"c2b register, host with Safaricom", []string{"c2b", "register"},
			map[string]string{"MPESA_CALLBACK_URL": "https://pay.Safaricom-shop.example.com/api/stk/callback/"}, "safaricom"},
		{"c2b register, clean", []string{"c2b", "register"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sandboxEnv(t, base, "cleanTok0123456789abcdefghijKLMN")
			maps.Copy(env, tt.env)
			before := registrations.Load()
			code, stdout, stderr := runCLI(t, env, tt.args...)
			sent := registrations.Load() - before
			if tt.wantWord == "" {
				if code != 0 || sent != 1 {
					t.Fatalf("got exit %d, %d registrations (%s%s); want 0 and 1", code, sent, stdout, stderr)
				}
				return
			}
			said := strings.ToLower(stdout + stderr)
			token := strings.ToLower(env["LIPA_CALLBACK_TOKEN"])
			if code == 0 || sent != 0 || !strings.Contains(strings.ReplaceAll(said, token, ""), `"`+tt.wantWord+`"`) || strings.Contains(said, token) {
				t.Errorf("got exit %d, %d registrations, %q; want a failure naming %q (not the token) and nothing sent", code, sent, stdout+stderr, tt.wantWord)
			}
		})
	}
}

// TestStartupWarnsAboutCallbackURLWords: `lipa serve` with an
// MPESA_CALLBACK_URL holding a refused word starts, and logs one warning
// naming the word; without one it logs none.
func TestStartupWarnsAboutCallbackURLWords(t *testing.T) {
	for _, c := range []struct{ url, word string }{
		{"http://127.0.0.1:9/api/mpesa/stk-callback/", "mpesa"},
		{"http://127.0.0.1:9/api/stk/callback/", ""},
	} {
		s := startTestService(t, sqlstoretest.URL(t, sqlstore.SQLite), map[string]string{"MPESA_CALLBACK_URL": c.url})
		log, err := os.ReadFile(s.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		var warnings []string
		for _, line := range bytes.Split(log, []byte("\n")) {
			var rec struct{ Level, Msg, Word string }
			if json.Unmarshal(line, &rec) == nil && rec.Level == "WARN" && strings.Contains(rec.Msg, "MPESA_CALLBACK_URL") {
				warnings = append(warnings, rec.Word)
			}
		}
		switch {
		case c.word == "" && len(warnings) != 0:
			t.Errorf("MPESA_CALLBACK_URL %s: got warnings %q, want none", c.url, warnings)
		case c.word != "" && (len(warnings) != 1 || warnings[0] != c.word):
			t.Errorf("MPESA_CALLBACK_URL %s: got warnings naming %q, want one naming %q", c.url, warnings, c.word)
		}
	}
}

// TestReadmeCallbackURLsHaveNoRefusedWord: the README's MPESA_CALLBACK_URL
// examples, which operators copy, use a path Safaricom accepts.
func TestReadmeCallbackURLsHaveNoRefusedWord(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	urls := regexp.MustCompile(`MPESA_CALLBACK_URL=(\S+)`).FindAllStringSubmatch(string(readme), -1)
	if len(urls) == 0 {
		t.Fatal("README.md has no MPESA_CALLBACK_URL= example")
	}
	for _, u := range urls {
		if w := daraja.RefusedURLWord(u[1]); w != "" {
			t.Errorf("README.md example MPESA_CALLBACK_URL=%s contains %q", u[1], w)
		}
	}
}

// TestSimulatorModeCallbackPath: in simulator mode Lipa gives Daraja the
// STK callback path without "mpesa", and the simulator's callbacks land
// there and settle the push.
func TestSimulatorModeCallbackPath(t *testing.T) {
	s := startTestService(t, sqlstoretest.URL(t, sqlstore.SQLite), nil)
	key := s.createApp(t, "shop")
	c := s.appClient(t, key)
	waitPayment(t, c, pushOK(t, c, "254708374149", 10, "PATH1").PaymentID, client.StatusSuccess)
	var msgs []sqlstore.Inbound
	err := s.srv.db.InTx(context.Background(), func(tx *sqlstore.Tx) (err error) {
		msgs, err = tx.InboundMessages(context.Background(), sqlstore.InboundSTKCallback, "", 1)
		return err
	})
	if err != nil || len(msgs) != 1 || msgs[0].Path != "/api/stk/callback/{token}/" {
		t.Errorf("the simulator's STK callback: got %+v (err %v), want one stored with path /api/stk/callback/{token}/", msgs, err)
	}
}

// TestCallbackPhoneOptionalSetting: LIPA_CALLBACK_PHONE_OPTIONAL is off by
// default, reaches the gateway when on, and a value that is not a boolean
// stops start-up naming the variable.
func TestCallbackPhoneOptionalSetting(t *testing.T) {
	for _, c := range []struct {
		value   string // "" for unset
		want    bool
		wantErr bool
	}{{"", false, false}, {"true", true, false}, {"false", false, false}, {"yes", false, true}} {
		env := map[string]string{}
		if c.value != "" {
			env["LIPA_CALLBACK_PHONE_OPTIONAL"] = c.value
		}
		cfg, err := loadConfig(lookupIn(env), "")
		if c.wantErr {
			if err == nil || !strings.Contains(err.Error(), "LIPA_CALLBACK_PHONE_OPTIONAL") {
				t.Errorf("LIPA_CALLBACK_PHONE_OPTIONAL=%q: got %v, want an error naming it", c.value, err)
			}
			continue
		}
		if err != nil || cfg.PhoneOptional != c.want || gatewayConfig(cfg, "", nil).CallbackPhoneOptional != c.want {
			t.Errorf("LIPA_CALLBACK_PHONE_OPTIONAL=%q: got %v (err %v), want %v in the gateway's configuration", c.value, cfg.PhoneOptional, err, c.want)
		}
	}
}
