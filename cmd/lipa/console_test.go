package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// consoleClient is a person's browser without JavaScript: cookies kept by
// hand, redirects reported, every POST same-origin unless told otherwise.
type consoleClient struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
	xff    string // X-Forwarded-For to send, for tests behind a trusted proxy
}

func (c *consoleClient) do(method, path string, form url.Values, headers map[string]string) *http.Response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "lipa_session" {
			if ck.MaxAge < 0 || ck.Value == "" {
				c.cookie = nil
			} else {
				c.cookie = ck
			}
		}
	}
	return resp
}

// page returns the status and body of a GET.
func (c *consoleClient) page(path string) (int, string) {
	c.t.Helper()
	resp := c.do("GET", path, nil, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post returns the status and body of a same-origin form POST.
func (c *consoleClient) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	resp := c.do("POST", path, form, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signIn posts the sign-in form and returns the answer's status.
func (c *consoleClient) signIn(user, password string) int {
	c.t.Helper()
	st, _ := c.post("/admin/login", url.Values{"username": {user}, "password": {password}})
	return st
}

// createOperator makes an operator with the CLI, password on stdin.
func createOperator(t *testing.T, env map[string]string, name, role, password string) {
	t.Helper()
	if code, out, errOut := runCLIWithStdin(t, env, password+"\n", "operators", "create", name, "--role", role, "--password-stdin"); code != 0 {
		t.Fatalf("operators create %s: exit %d: %s %s", name, code, out, errOut)
	}
}

// TestConsoleSessionCookieAndHeaders: the session cookie is HttpOnly,
// SameSite=Strict, limited to /admin/, and Secure when configured; console
// pages keep nosniff and no-framing, with a policy that allows no script
// and only the console's own stylesheet.
func TestConsoleSessionCookieAndHeaders(t *testing.T) {
	for _, secure := range []bool{false, true} {
		s := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), map[string]string{"LIPA_ADMIN_SECURE_COOKIES": map[bool]string{true: "true", false: "false"}[secure]})
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		c := &consoleClient{t: t, base: s.URL}
		resp := c.do("POST", "/admin/login", url.Values{"username": {"boss"}, "password": {adminPassword}}, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
			t.Fatalf("sign-in: got %d %s, want 303 to /admin/", resp.StatusCode, resp.Header.Get("Location"))
		}
		set := resp.Header.Get("Set-Cookie")
		for _, want := range []string{"lipa_session=", "Path=/admin/", "HttpOnly", "SameSite=Strict"} {
			if !strings.Contains(set, want) {
				t.Errorf("Set-Cookie %q: want %s", set, want)
			}
		}
		if strings.Contains(set, "Secure") != secure {
			t.Errorf("Set-Cookie %q with LIPA_ADMIN_SECURE_COOKIES=%t: got Secure %t", set, secure, !secure)
		}
		resp = c.do("GET", "/admin/", nil, nil)
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") ||
			strings.Contains(csp, "script-src") || !strings.Contains(csp, "frame-ancestors 'none'") || h.Get("Cache-Control") != "no-store" {
			t.Errorf("dashboard headers: got %d %v, want nosniff, DENY, no-store and a CSP without scripts", resp.StatusCode, h)
		}
		if st, css := c.page("/admin/static/console.css"); st != 200 || !strings.Contains(css, "--ink") {
			t.Errorf("stylesheet: got %d", st)
		}
	}
}

// TestConsoleViewerChangesNothing: every action of the console answers a
// viewer 403 and changes nothing; the pages show a viewer no action form.
func TestConsoleViewerChangesNothing(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		s.createApp(t, "shop")
		if code, _, errOut := runCLI(t, s.Env, "apps", "set-webhook", "shop", "http://127.0.0.1:9/hook"); code != 0 {
			t.Fatal(errOut)
		}
		createOperator(t, s.Env, "watcher", "viewer", viewerPassword)
		v := &consoleClient{t: t, base: s.URL}
		if st := v.signIn("watcher", viewerPassword); st != http.StatusSeeOther {
			t.Fatalf("viewer sign-in: got %d", st)
		}
		_, before, _ := runCLI(t, s.Env, "apps", "list", "--json")
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/admin/apps", url.Values{"name": {"viewer-made"}}},
			{"/admin/apps/shop/rotate-key", url.Values{}},
			{"/admin/apps/shop/disable", url.Values{}},
			{"/admin/apps/shop/webhook", url.Values{"url": {"https://evil.example/hook"}}},
			{"/admin/apps/shop/test-event", url.Values{}},
			{"/admin/webhooks/redeliver", url.Values{"app": {"shop"}, "failed": {"1"}}},
			{"/admin/webhooks/resume", url.Values{"app": {"shop"}}},
		} {
			if st, body := v.post(c.path, c.form); st != http.StatusForbidden || !strings.Contains(body, "viewer") {
				t.Errorf("viewer POST %s: got %d, want 403 saying viewers change nothing", c.path, st)
			}
		}
		_, after, _ := runCLI(t, s.Env, "apps", "list", "--json")
		if after != before {
			t.Errorf("apps after the viewer's POSTs: got %s, want %s", after, before)
		}
		form := regexp.MustCompile(`<form method="post" action="([^"]+)"`)
		for _, page := range []string{"/admin/", "/admin/apps", "/admin/apps/shop", "/admin/webhooks", "/admin/payments", "/admin/intake", "/admin/settings"} {
			st, body := v.page(page)
			for _, m := range form.FindAllStringSubmatch(body, -1) {
				if m[1] != "/admin/logout" {
					t.Errorf("viewer %s: got a form posting to %s, want only sign-out", page, m[1])
				}
			}
			if st != 200 {
				t.Errorf("viewer %s: got %d, want 200", page, st)
			}
		}
	})
}

// TestConsoleCrossSiteRefused: a form posted from another site is refused
// before it is read, also the sign-in and sign-out forms.
func TestConsoleCrossSiteRefused(t *testing.T) {
	s := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), nil)
	s.createApp(t, "shop")
	createOperator(t, s.Env, "boss", "admin", adminPassword)
	c := &consoleClient{t: t, base: s.URL}
	c.signIn("boss", adminPassword)
	_, before, _ := runCLI(t, s.Env, "apps", "list", "--json")
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example", "Sec-Fetch-Site": ""},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"},
	} {
		for _, path := range []string{"/admin/apps/shop/disable", "/admin/logout", "/admin/login"} {
			resp := c.do("POST", path, url.Values{"username": {"boss"}, "password": {adminPassword}}, h)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %v: got %d, want 403", path, h, resp.StatusCode)
			}
		}
	}
	if st, _ := c.page("/admin/"); st != 200 {
		t.Errorf("the session after a cross-site sign-out: got %d, want it alive (200)", st)
	}
	if _, after, _ := runCLI(t, s.Env, "apps", "list", "--json"); after != before {
		t.Errorf("apps after cross-site POSTs: got %s, want %s", after, before)
	}
}

// TestConsoleSignInLimits: after 10 failed sign-ins a source address is
// refused (429) even with the right password; so is an account after 10
// failures from any addresses.
func TestConsoleSignInLimits(t *testing.T) {
	s := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), map[string]string{"LIPA_TRUSTED_PROXIES": "127.0.0.1"})
	createOperator(t, s.Env, "boss", "admin", adminPassword)
	createOperator(t, s.Env, "clerk", "viewer", viewerPassword)
	from := func(ip string) *consoleClient { return &consoleClient{t: t, base: s.URL, xff: ip} }

	for i := range 10 {
		if st := from("10.0.0.1").signIn("nobody", "wrong-password-"+string(rune('a'+i))); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, st)
		}
	}
	if st := from("10.0.0.1").signIn("boss", adminPassword); st != http.StatusTooManyRequests {
		t.Errorf("right password after 10 failures from the address: got %d, want 429", st)
	}
	if st := from("10.0.0.2").signIn("boss", adminPassword); st != http.StatusSeeOther {
		t.Errorf("right password from another address: got %d, want 303", st)
	}

	for i := range 10 {
		from("10.1.0."+string(rune('1'+i%9))).signIn("clerk", "wrong-password-x")
	}
	if st := from("10.2.0.1").signIn("clerk", viewerPassword); st != http.StatusTooManyRequests {
		t.Errorf("right password after 10 failures on the account: got %d, want 429", st)
	}
	log, _ := os.ReadFile(s.LogFile)
	if strings.Contains(string(log), adminPassword) || strings.Contains(string(log), viewerPassword) {
		t.Errorf("log: got an operator's password")
	}
}

// TestConsoleOnItsOwnAddress: with LIPA_ADMIN_ADDR the console is served
// there and not on the main listener; LIPA_ADMIN_ALLOWED_IPS refuses other
// sources.
func TestConsoleOnItsOwnAddress(t *testing.T) {
	s := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), map[string]string{"LIPA_ADMIN_ADDR": "127.0.0.1:0"})
	createOperator(t, s.Env, "boss", "admin", adminPassword)
	if s.srv.AdminURL == "" || s.srv.AdminURL == s.URL {
		t.Fatalf("console address: got %q, want a listener of its own", s.srv.AdminURL)
	}
	main := &consoleClient{t: t, base: s.URL}
	if st, body := main.page("/admin/login"); st != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("main listener /admin/login: got %d %q, want the API's 404", st, cut(body, 100))
	}
	own := &consoleClient{t: t, base: s.srv.AdminURL}
	if st := own.signIn("boss", adminPassword); st != http.StatusSeeOther {
		t.Fatalf("sign-in on the console's address: got %d", st)
	}
	if st, _ := own.page("/admin/"); st != 200 {
		t.Errorf("dashboard on the console's address: got %d", st)
	}
	if resp := own.do("GET", "/", nil, nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/admin/" {
		t.Errorf("/ on the console's address: got %d %s, want a redirect to /admin/", resp.StatusCode, resp.Header.Get("Location"))
	}

	fenced := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), map[string]string{"LIPA_ADMIN_ALLOWED_IPS": "10.0.0.0/8"})
	c := &consoleClient{t: t, base: fenced.URL}
	if st, _ := c.page("/admin/login"); st != http.StatusForbidden {
		t.Errorf("console from outside LIPA_ADMIN_ALLOWED_IPS: got %d, want 403", st)
	}
	if st, _ := c.page("/healthz"); st != 200 {
		t.Errorf("/healthz with LIPA_ADMIN_ALLOWED_IPS: got %d, want 200", st)
	}

	off := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), map[string]string{"LIPA_ADMIN_ADDR": "off"})
	if st, _ := (&consoleClient{t: t, base: off.URL}).page("/admin/login"); st != http.StatusNotFound {
		t.Errorf("console with LIPA_ADMIN_ADDR=off: got %d, want 404", st)
	}
}

// TestConsoleConfig: the console's settings are checked at start, naming
// the variable.
func TestConsoleConfig(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"LIPA_ADMIN_ADDR", "nowhere"},
		{"LIPA_ADMIN_ALLOWED_IPS", "10.0.0.0/33"},
		{"LIPA_ADMIN_SECURE_COOKIES", "yes please"},
		{"LIPA_ADMIN_SESSION_IDLE", "soon"},
		{"LIPA_ADMIN_SESSION_IDLE", "0s"},
		{"LIPA_ADMIN_SESSION_LIFETIME", "1m"}, // shorter than the 30m idle timeout
	} {
		if _, err := loadConfig(lookupIn(map[string]string{c.name: c.value}), ""); err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: got %v, want an error naming it", c.name, c.value, err)
		}
	}
	cfg, err := loadConfig(lookupIn(map[string]string{}), "")
	if err != nil || cfg.Console.SessionIdle.String() != "30m0s" || cfg.Console.SessionLifetime.String() != "12h0m0s" || cfg.Console.Addr != "" {
		t.Errorf("defaults: got %+v, %v, want idle 30m, lifetime 12h, on LISTEN_ADDR", cfg.Console, err)
	}
}

// TestSettingsPageShowsEveryVariable: every variable the configuration
// reads (named in the comments of Config and consoleConfig) is on the
// Settings page, and no secret's value is.
func TestSettingsPageShowsEveryVariable(t *testing.T) {
	var names []string
	re := regexp.MustCompile(`//\s*((?:MPESA|LIPA|DATABASE|LISTEN|LOG)_[A-Z_]+):`)
	quoted := regexp.MustCompile(`"((?:MPESA|LIPA|DATABASE|LISTEN|LOG)_[A-Z0-9_]+)"`)
	for _, file := range []string{"config.go", "console.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			names = append(names, m[1])
		}
		if file == "config.go" { // every name it reads or mentions
			for _, m := range quoted.FindAllStringSubmatch(string(src), -1) {
				names = append(names, m[1])
			}
		}
	}
	env := map[string]string{"MPESA_CONSUMER_SECRET": "cs-Sekrit-123", "LIPA_ADMIN_KEY": "adm-Sekrit-1234567890", "MPESA_PASSKEY": "pk-Sekrit-1",
		"LIPA_CALLBACK_TOKEN": "tok-Sekrit-abcdefghij", "DATABASE_URL": "postgres://lipa:db-Sekrit@db.example:5432/lipa"}
	cfg, err := loadConfig(lookupIn(env), "")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, s := range settingValues(cfg) {
		shown[s.Name] = true
		if strings.Contains(s.Value, "Sekrit") {
			t.Errorf("setting %s: got %q, want the secret hidden", s.Name, s.Value)
		}
	}
	for _, n := range names {
		if !shown[n] {
			t.Errorf("variable %s is read but not on the Settings page", n)
		}
	}
	if len(names) < 30 {
		t.Errorf("found %d variables in the comments, want them all (the pattern may be wrong)", len(names))
	}
}

// TestOperatorsCLI: operators are created with a password from stdin or a
// generated one printed once, listed, disabled (and refused at sign-in),
// enabled, and given a new password.
func TestOperatorsCLI(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		code, out, _ := runCLIWithStdin(t, s.Env, "", "operators", "create", "clerk", "--role", "viewer", "--json")
		var made struct{ Username, Role, Password string }
		if code != 0 || json.Unmarshal([]byte(out), &made) != nil || made.Username != "clerk" || made.Role != "viewer" || len(made.Password) < 20 {
			t.Fatalf("operators create --json without a password: got %d %q, want the generated password once", code, out)
		}
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"operators", "create", "x1"}, 2},                                     // no role
			{[]string{"operators", "create", "x1", "--role", "owner"}, 1},                  // unknown role
			{[]string{"operators", "create", "boss", "--role", "admin"}, 1},                // taken
			{[]string{"operators", "create", "x2", "--role", "admin", "--bogus"}, 2},       // unknown flag
			{[]string{"operators", "disable", "nobody"}, 1},                                // unknown operator
			{[]string{"operators"}, 2},                                                     // no subcommand
			{[]string{"operators", "set-password", "boss", "--password-stdin"}, 2},         // empty stdin
			{[]string{"operators", "create", "x3", "--role", "viewer", "--json"}, 0},       // generated
			{[]string{"operators", "list", "extra"}, 2},                                    // stray argument
			{[]string{"operators", "enable", "boss", "--role", "admin"}, 2},                // flag that does not apply
			{[]string{"operators", "create", "Upper", "--role", "viewer"}, 1},              // bad name
			{[]string{"operators", "create", "x4", "--role=admin", "--password-stdin"}, 2}, // empty stdin
		} {
			got, _, errOut := runCLIWithStdin(t, s.Env, "", c.args...)
			if got != c.code {
				t.Errorf("lipa %s: got exit %d (%s), want %d", strings.Join(c.args, " "), got, errOut, c.code)
			}
		}
		c := &consoleClient{t: t, base: s.URL}
		if st := c.signIn("clerk", made.Password); st != http.StatusSeeOther {
			t.Fatalf("sign-in with the generated password: got %d", st)
		}
		if code, _, _ := runCLI(t, s.Env, "operators", "disable", "clerk"); code != 0 {
			t.Fatal("disable")
		}
		if st, _ := c.page("/admin/"); st != http.StatusSeeOther {
			t.Errorf("a disabled operator's session: got %d, want the sign-in redirect", st)
		}
		if st := c.signIn("clerk", made.Password); st != http.StatusUnauthorized {
			t.Errorf("sign-in of a disabled operator: got %d, want 401", st)
		}
		runCLI(t, s.Env, "operators", "enable", "clerk")
		if code, out, _ := runCLIWithStdin(t, s.Env, "Brand-New-Password-77\r\n", "operators", "set-password", "clerk", "--password-stdin"); code != 0 || strings.Contains(out, "Brand-New") {
			t.Fatalf("set-password: got %d %q", code, out)
		}
		if st := c.signIn("clerk", made.Password); st != http.StatusUnauthorized {
			t.Errorf("sign-in with the old password: got %d, want 401", st)
		}
		if st := c.signIn("clerk", "Brand-New-Password-77"); st != http.StatusSeeOther {
			t.Errorf("sign-in with the new password: got %d, want 303", st)
		}
		code, out, _ = runCLI(t, s.Env, "operators", "list", "--json")
		var list []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 || list[0]["username"] != "boss" || list[1]["last_sign_in_at"] == nil {
			t.Errorf("operators list --json: got %d %s", code, out)
		}
		if code, out, _ := runCLI(t, s.Env, "operators", "list"); code != 0 || !strings.Contains(out, "clerk") || !strings.Contains(out, "viewer") {
			t.Errorf("operators list: got %d %q", code, out)
		}
	})
}

// TestPaymentsCLIAndCSV: `lipa payments list|show` search as the console
// does; the console's CSV takes the same filters and defuses cells a
// spreadsheet would run as formulas.
func TestPaymentsCLIAndCSV(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		key := s.createApp(t, "shop")
		push := s.pushOK(t, key, "0708374149", 10, "CLI1")
		id := jsonStr(push.Body, "payment_id")
		p := s.waitStatus(t, key, id, "SUCCESS")
		receipt := jsonStr(p, "mpesa_receipt_number")
		conf := `{"TransactionType":"Pay Bill","TransID":"UKF0RMULA1","TransTime":"20261201101500","TransAmount":"100.00","BusinessShortCode":"174379",
			"BillRefNumber":"=HYPERLINK(\"http://evil.example\")","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"254708374149","FirstName":"A"}`
		if r := s.do(t, "POST", "/api/c2b/confirmation/", "", conf); r.Status != 200 {
			t.Fatalf("C2B confirmation: %d %s", r.Status, r.Raw)
		}

		code, out, errOut := runCLI(t, s.Env, "payments", "show", id)
		for _, want := range []string{receipt, "STK callback from Safaricom", "MpesaReceiptNumber", "Daraja accepted the STK push"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("payments show: got %d, no %q in %q (%s)", code, want, cut(out, 300), errOut)
			}
		}
		code, out, _ = runCLI(t, s.Env, "payments", "show", id, "--json")
		var shown struct {
			Payment  map[string]any   `json:"payment"`
			Timeline []map[string]any `json:"timeline"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.Payment["id"] != id || len(shown.Timeline) < 3 {
			t.Errorf("payments show --json: got %d %s", code, cut(out, 200))
		}
		for _, c := range []struct {
			args []string
			want []string
			not  []string
		}{
			{[]string{"payments", "list"}, []string{id, "UKF0RMULA1"}, nil},
			{[]string{"payments", "list", "--q", receipt}, []string{id}, []string{"UKF0RMULA1"}},
			{[]string{"payments", "list", "--q", "+254 708 374 149", "--type", "C2B"}, []string{"UKF0RMULA1"}, []string{id}},
			{[]string{"payments", "list", "--app", "shop", "--status", "SUCCESS"}, []string{id}, []string{"UKF0RMULA1"}},
		} {
			code, out, errOut := runCLI(t, s.Env, c.args...)
			for _, w := range c.want {
				if code != 0 || !strings.Contains(out, w) {
					t.Errorf("lipa %s: got %d %q (%s), want %s", strings.Join(c.args, " "), code, cut(out, 200), errOut, w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("lipa %s: got %s, want it left out", strings.Join(c.args, " "), w)
				}
			}
		}
		if code, _, errOut := runCLI(t, s.Env, "payments", "list", "--status", "PAID"); code != 1 || !strings.Contains(errOut, "status") {
			t.Errorf("payments list --status PAID: got %d %q, want 1 naming status", code, errOut)
		}
		if code, _, _ := runCLI(t, s.Env, "payments", "show"); code != 2 {
			t.Errorf("payments show without an id: got %d, want 2", code)
		}

		createOperator(t, s.Env, "boss", "admin", adminPassword)
		c := &consoleClient{t: t, base: s.URL}
		c.signIn("boss", adminPassword)
		resp := c.do("GET", "/admin/payments.csv?type=C2B", nil, nil)
		rows, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(rows) != 2 {
			t.Fatalf("CSV of C2B payments: got %d %s, %d rows, %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(rows), err)
		}
		ref := rows[1][slices.Index(rows[0], "reference")]
		if ref != `'=HYPERLINK("http://evil.example")` {
			t.Errorf("CSV reference cell: got %q, want it prefixed with an apostrophe", ref)
		}
		if st, body := c.page("/admin/payments.csv?status=PAID"); st != http.StatusBadRequest || !strings.Contains(body, "status") {
			t.Errorf("CSV with a bad filter: got %d, want 400 naming status", st)
		}
		if st, body := c.page("/admin/payments?from=yesterday"); st != http.StatusBadRequest || !strings.Contains(body, "not a date") {
			t.Errorf("payments page with a bad date: got %d, want 400 with the form and the message", st)
		}
	})
}

// TestConsoleRefusesBadText: a NUL byte or invalid UTF-8 in the address or
// a form is a 400, never a database error (PostgreSQL refuses such text).
func TestConsoleRefusesBadText(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		anon := &consoleClient{t: t, base: s.URL}
		if st, _ := anon.post("/admin/login", url.Values{"username": {"bo\x00ss"}, "password": {adminPassword}}); st != http.StatusBadRequest {
			t.Errorf("sign-in with a NUL in the username: got %d, want 400", st)
		}
		c := &consoleClient{t: t, base: s.URL}
		c.signIn("boss", adminPassword)
		for _, path := range []string{"/admin/payments?q=%00", "/admin/payments?q=%ff%fe", "/admin/payments.csv?app=%00", "/admin/webhooks?app=%c3"} {
			if st, _ := c.page(path); st != http.StatusBadRequest {
				t.Errorf("GET %s: got %d, want 400", path, st)
			}
		}
		if st, _ := c.post("/admin/apps", url.Values{"name": {"sh\x00p"}}); st != http.StatusBadRequest {
			t.Errorf("create an app named with a NUL: got %d, want 400", st)
		}
	})
}
