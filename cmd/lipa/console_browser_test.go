package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The console tests drive a real headless Chromium (Debian's chromium
// package) through the DevTools protocol. When it cannot start they fail:
// install it with `apt-get install -y chromium` (.ci/run does), or name
// another binary in LIPA_TEST_CHROMIUM.

// chromiumPath finds the browser the console tests drive.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LIPA_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no chromium on PATH: the console tests need a real browser; install Debian's chromium (apt-get install -y chromium) or set LIPA_TEST_CHROMIUM")
	return ""
}

// startChromium starts a headless Chromium with a fresh profile, stopped at
// cleanup, and returns the context of its first tab.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; its context must be the one the
	// browser lives in (a shorter one would stop the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v (the console tests need a working headless Chromium; they do not skip)", err)
	}
	return ctx
}

// artefacts returns the folder screenshots go to: $LIPA_TEST_ARTEFACTS or
// testdata/artefacts (ignored by git), then the test's name.
func artefacts(t *testing.T) string {
	t.Helper()
	root := os.Getenv("LIPA_TEST_ARTEFACTS")
	if root == "" {
		root = filepath.Join("testdata", "artefacts")
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artefacts folder: %v", err)
	}
	return dir
}

// tab is a browser tab with cookies of its own (a separate browser
// context), as one person's browser.
type tab struct {
	t      *testing.T
	ctx    context.Context
	who    string
	shots  string
	nshots *atomic.Int64
}

func newTab(t *testing.T, root context.Context, who, shots string, n *atomic.Int64) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab, for the tab's lifetime
		t.Fatalf("%s: open a browser tab: %v", who, err)
	}
	return &tab{t: t, ctx: ctx, who: who, shots: shots, nshots: n}
}

// step bounds one browser action, so that a page that never loads fails
// the test instead of hanging it.
func (b *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 30*time.Second)
}

// open loads url and returns the HTTP status of the page (after
// redirects).
func (b *tab) open(u string) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		b.t.Fatalf("%s: open %s: %v", b.who, u, err)
	}
	return resp.Status
}

// submit clicks the element (a form's button) and waits for the page it
// leads to; it returns that page's HTTP status.
func (b *tab) submit(sel string) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: click %s: %v", b.who, sel, err)
	}
	return resp.Status
}

// typeIn types v into the field.
func (b *tab) typeIn(sel, v string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), v)); err != nil {
		b.t.Fatalf("%s: type into %s: %v", b.who, sel, err)
	}
}

// js evaluates an expression in the page.
func js[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: evaluate %s: %v", b.who, expr, err)
	}
	return v
}

// text is everything the page shows, as the person reads it.
func (b *tab) text() string { return js[string](b, "document.body.innerText") }

// source is the page's whole text, hidden parts included.
func (b *tab) source() string { return js[string](b, "document.documentElement.outerHTML") }

// location is the page's URL.
func (b *tab) location() string { return js[string](b, "location.href") }

// actionForms counts the page's forms that POST something other than a
// sign-out.
func (b *tab) actionForms() int {
	return js[int](b, `Array.from(document.querySelectorAll('form')).filter(f => f.method === 'post' && !f.action.endsWith('/admin/logout')).length`)
}

// shot writes a full-page screenshot to the artefacts folder.
func (b *tab) shot(name string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("%s: screenshot %s: %v", b.who, name, err)
		return
	}
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s-%s.png", b.nshots.Add(1), b.who, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("write %s: %v", path, err)
	}
}

// sessionCookie returns the tab's console session cookie for origin.
func (b *tab) sessionCookie(origin string) *http.Cookie {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/admin/"}})
	if err != nil {
		b.t.Fatalf("%s: cookies: %v", b.who, err)
	}
	for _, c := range res.Cookies {
		if c.Name == "lipa_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/admin/" {
				b.t.Errorf("%s: session cookie: got HttpOnly %t SameSite %q path %q, want HttpOnly, Strict, /admin/", b.who, c.HTTPOnly, c.SameSite, c.Path)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	b.t.Fatalf("%s: got no lipa_session cookie, want one after sign-in", b.who)
	return nil
}

// download clicks a link that downloads a file, and returns the file.
func (b *tab) download(sel string) []byte {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	dir := b.t.TempDir()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	id := chromedp.FromContext(ctx).BrowserContextID
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: id, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		b.t.Fatalf("%s: allow downloads: %v", b.who, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("%s: click %s: %v", b.who, sel, err)
	}
	for ev, err := range progress {
		if err != nil {
			b.t.Fatalf("%s: download from %s: %v", b.who, sel, err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				b.t.Fatalf("%s: read the download: %v", b.who, err)
			}
			return data
		case browser.DownloadProgressStateCanceled:
			b.t.Fatalf("%s: download from %s was cancelled", b.who, sel)
		}
	}
	return nil
}

// signIn fills the sign-in form at base and returns the page it leads to.
func (b *tab) signIn(base, user, password string) {
	b.t.Helper()
	if st := b.open(base + "/admin/"); st != http.StatusOK || !strings.Contains(b.location(), "/admin/login") {
		b.t.Fatalf("%s: /admin/ without a session: got %d at %s, want the sign-in page", b.who, st, b.location())
	}
	b.shot("sign-in")
	b.typeIn("#username", user)
	b.typeIn("#password", password)
	if st := b.submit("form[action='/admin/login'] button[type=submit]"); st != http.StatusOK {
		b.t.Fatalf("%s: sign-in: got HTTP %d, want 200 (the dashboard)", b.who, st)
	}
	if loc := b.location(); !strings.HasSuffix(loc, "/admin/") || !strings.Contains(b.text(), "Dashboard") {
		b.t.Fatalf("%s: after sign-in: got %s %q, want the dashboard", b.who, loc, cut(b.text(), 200))
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// consoleRig is a running Lipa for the console flows: one or more base
// URLs (replicas on one database), and the CLI.
type consoleRig struct {
	urls []string
	// cli runs a lipa command with stdin and returns its exit code and
	// output.
	cli func(t *testing.T, stdin string, args ...string) (int, string, string)
}

// url is the base URL of replica i (round robin).
func (r consoleRig) url(i int) string { return r.urls[i%len(r.urls)] }

// postAPI sends an app's JSON request to the API.
func postAPI(t *testing.T, method, u, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// noRedirects is an HTTP client that reports redirects instead of following
// them.
var noRedirects = &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// appState is `lipa apps list --json` without the last use, to compare
// before and after a refused request.
func appState(t *testing.T, rig consoleRig) string {
	t.Helper()
	code, out, errOut := rig.cli(t, "", "apps", "list", "--json")
	if code != 0 {
		t.Fatalf("lipa apps list --json: exit %d: %s", code, errOut)
	}
	var apps []map[string]any
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		t.Fatalf("lipa apps list --json: %v", err)
	}
	for _, a := range apps {
		delete(a, "last_used_at")
	}
	b, _ := json.Marshal(apps)
	return string(b)
}

var keyRE = regexp.MustCompile(`lipa_[a-z2-7]{20,}`)

const (
	adminPassword  = "Correct-Horse-Battery-4217"
	viewerPassword = "Staple-Lantern-Quartz-9031"
)

// consoleFlows runs the operators' flows in a real browser against rig,
// moving between its replicas: sign in; the dashboard; create an app and
// read its key once; a payment through the app API found by receipt and by
// phone; its timeline with the raw callback; the CSV export; a review item
// resolved with a reason, then found in the payment's timeline and the
// audit log; a viewer with no action buttons (no resolution form either)
// whose crafted POSTs are refused; a cross-site POST refused; sign-out
// ending the session everywhere.
func consoleFlows(t *testing.T, rig consoleRig) {
	root := startChromium(t)
	shots, n := artefacts(t), &atomic.Int64{}
	for _, op := range []struct{ name, role, pw string }{{"boss", "admin", adminPassword}, {"watcher", "viewer", viewerPassword}} {
		code, out, errOut := rig.cli(t, op.pw+"\n", "operators", "create", op.name, "--role", op.role, "--password-stdin")
		if code != 0 || strings.Contains(out+errOut, op.pw) {
			t.Fatalf("lipa operators create %s: got exit %d, output %q %q, want 0 without the password", op.name, code, out, errOut)
		}
	}

	admin := newTab(t, root, "admin", shots, n)
	admin.signIn(rig.url(0), "boss", adminPassword)
	admin.shot("dashboard")
	adminCookie := admin.sessionCookie(rig.url(0))
	if len(rig.urls) > 1 {
		// The session lives in the database: another replica serves it.
		if st := admin.open(rig.url(1) + "/admin/"); st != http.StatusOK || strings.Contains(admin.location(), "login") || !strings.Contains(admin.text(), "Dashboard") {
			t.Fatalf("admin: the dashboard on another replica: got %d at %s, want it without signing in again", st, admin.location())
		}
		admin.shot("dashboard-other-replica")
	}

	// Create an app; its key shows once.
	admin.open(rig.url(0) + "/admin/apps")
	admin.typeIn("#new-app-name", "duka")
	if st := admin.submit("form[action='/admin/apps'] button[type=submit]"); st != http.StatusOK {
		t.Fatalf("admin: create app: got HTTP %d, want 200", st)
	}
	key := keyRE.FindString(admin.text())
	if key == "" {
		t.Fatalf("admin: the page after creating an app: got %q, want its API key", cut(admin.text(), 300))
	}
	admin.shot("app-created-key-once")
	answered := admin.location()
	for _, u := range []string{answered, rig.url(1) + "/admin/apps", rig.url(0) + "/admin/apps/duka"} {
		admin.open(u)
		if src := admin.source(); strings.Contains(src, key) || !strings.Contains(src, "duka") {
			t.Fatalf("admin: %s after the creation: got the key again (or no app), want the app without its key", u)
		}
	}
	admin.shot("app-page")

	// A payment through the app API, settled by the simulator's callback.
	st, push := postAPI(t, "POST", rig.url(1)+"/api/stk-push/", key, map[string]any{"phone_number": "254708374149", "amount": 10, "reference": "CONS1", "description": "Console"})
	if st != http.StatusOK {
		t.Fatalf("app API: STK push: got %d %v", st, push)
	}
	id, _ := push["payment_id"].(string)
	var p map[string]any
	for end := time.Now().Add(15 * time.Second); ; {
		_, p = postAPI(t, "GET", rig.url(0)+"/api/payments/"+id+"/", key, nil)
		if p["status"] == "SUCCESS" || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	receipt, _ := p["mpesa_receipt_number"].(string)
	checkout, _ := p["checkout_request_id"].(string)
	if p["status"] != "SUCCESS" || receipt == "" {
		t.Fatalf("app API: payment %s: got %v, want SUCCESS with a receipt", id, p)
	}

	// Find it by receipt and by phone, in the search box.
	for i, q := range []string{receipt, "0708374149"} {
		admin.open(rig.url(i) + "/admin/payments")
		admin.typeIn("#q", q)
		if st := admin.submit("form[action='/admin/payments'] button[type=submit]"); st != http.StatusOK {
			t.Fatalf("admin: search %q: got HTTP %d", q, st)
		}
		if got := js[int](admin, fmt.Sprintf(`document.querySelectorAll('a[href="/admin/payments/%s"]').length`, id)); got != 1 {
			t.Fatalf("admin: search %q: got %d links to %s, want 1 (page %q)", q, got, id, cut(admin.text(), 400))
		}
		admin.shot("payments-search-" + []string{"receipt", "phone"}[i])
	}

	// Its timeline shows the raw callback.
	if st := admin.submit(fmt.Sprintf(`a[href="/admin/payments/%s"]`, id)); st != http.StatusOK {
		t.Fatalf("admin: open the payment: got HTTP %d", st)
	}
	tl := admin.text()
	for _, want := range []string{"STK callback from Safaricom", "MpesaReceiptNumber", receipt, checkout, "Daraja accepted the STK push", "STK push requested by app duka"} {
		if !strings.Contains(tl, want) {
			t.Errorf("admin: the payment's timeline: got no %q in %q", want, cut(tl, 600))
		}
	}
	admin.shot("payment-timeline")

	// The CSV export of the filtered list, downloaded by the browser.
	admin.open(rig.url(1) + "/admin/payments?" + url.Values{"q": {receipt}}.Encode())
	rows, err := csv.NewReader(bytes.NewReader(admin.download("a[href^='/admin/payments.csv']"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "id" || rows[1][0] != id || !strings.Contains(strings.Join(rows[1], ","), receipt) {
		t.Fatalf("admin: CSV export: got %v (%v), want a header and the payment's row", rows, err)
	}
	rows, err = csv.NewReader(bytes.NewReader(admin.download("a[href^='/admin/payments.csv']"))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("admin: CSV export again: got %d rows, %v", len(rows), err)
	}

	// The other pages, for the record.
	for _, page := range []string{"intake", "webhooks", "settings"} {
		if st := admin.open(rig.url(0) + "/admin/" + page); st != http.StatusOK {
			t.Errorf("admin: /admin/%s: got HTTP %d, want 200", page, st)
		}
		admin.shot(page)
	}
	if src := admin.source(); strings.Contains(src, "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919") || !strings.Contains(src, "/api/stk/callback/") {
		t.Errorf("admin: settings: got the passkey shown, or no callback URL")
	}

	// Two C2B confirmations nobody can read (TransAmount "abc") wait in
	// the review queue; the admin makes a payment of the first with the
	// amount from the statement, and a reason.
	for _, transID := range []string{"UKBROWSE01", "UKBROWSE02"} {
		resp, err := http.Post(rig.url(1)+"/api/c2b/confirmation/", "application/json", strings.NewReader(unreadableConfirmation(transID)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("C2B confirmation %s: got HTTP %d, want 200", transID, resp.StatusCode)
		}
	}
	admin.open(rig.url(0) + "/admin/review")
	if q := admin.text(); !strings.Contains(q, "UKBROWSE01") || !strings.Contains(q, "invalid amount") || !strings.Contains(q, "Why it needs a person") {
		t.Fatalf("admin: the review queue: got %q, want both items with why they need a person", cut(q, 600))
	}
	admin.shot("review-queue")
	items := reviewLinkRE.FindAllStringSubmatch(admin.source(), -1)
	if len(items) < 2 {
		t.Fatalf("admin: the review queue: got links %v, want one per item", items)
	}
	first, second := items[len(items)-1][1], items[0][1] // newest first
	if st := admin.submit(`a[href="/admin/review/` + first + `"]`); st != http.StatusOK || !strings.Contains(admin.text(), `"TransAmount": "abc"`) {
		t.Fatalf("admin: review item %s: got HTTP %d %q, want its raw payload", first, st, cut(admin.text(), 300))
	}
	admin.shot("review-item")
	admin.typeIn("#create-amount", "250")
	admin.typeIn("#create-reason", "M-Pesa statement shows KES 250 from 0708374149")
	if st := admin.submit("form[action$='/create-payment'] button[type=submit]"); st != http.StatusOK {
		t.Fatalf("admin: create the payment of review item %s: got HTTP %d", first, st)
	}
	if got := admin.text(); !strings.Contains(got, "resolved") || !strings.Contains(got, "M-Pesa statement shows KES 250") || admin.actionForms() != 0 {
		t.Fatalf("admin: review item %s after the resolution: got %q, want it resolved with the reason and no form", first, cut(got, 500))
	}
	admin.shot("review-item-resolved")
	if st := admin.submit(`a[href^="/admin/payments/pay_"]`); st != http.StatusOK || !strings.Contains(admin.text(), "Operator action review.create_payment by boss") {
		t.Errorf("admin: the created payment's timeline: got HTTP %d %q, want the operator's action", st, cut(admin.text(), 500))
	}
	admin.shot("payment-timeline-operator-action")
	admin.open(rig.url(1) + "/admin/audit")
	admin.typeIn("#action", "review.create_payment")
	if st := admin.submit("form[action='/admin/audit'] button[type=submit]"); st != http.StatusOK {
		t.Fatalf("admin: filter the audit log: got HTTP %d", st)
	}
	if got := admin.text(); !strings.Contains(got, "review:"+first) || !strings.Contains(got, "M-Pesa statement shows KES 250") || !strings.Contains(got, "boss") {
		t.Errorf("admin: the audit log: got %q, want the resolution with who and why", cut(got, 600))
	}
	admin.shot("audit-log")

	// A viewer sees the same pages without a single action, and a POST
	// crafted with their session is refused and changes nothing.
	viewer := newTab(t, root, "viewer", shots, n)
	viewer.signIn(rig.url(1), "watcher", viewerPassword)
	for _, page := range []string{"/admin/apps", "/admin/apps/duka", "/admin/webhooks", "/admin/payments/" + id, "/admin/"} {
		if st := viewer.open(rig.url(0) + page); st != http.StatusOK {
			t.Fatalf("viewer: %s: got HTTP %d, want 200", page, st)
		}
		if n := viewer.actionForms(); n != 0 {
			t.Errorf("viewer: %s: got %d action forms, want none", page, n)
		}
	}
	viewer.open(rig.url(0) + "/admin/apps/duka")
	viewer.shot("app-page-no-actions")
	for _, page := range []string{"/admin/review", "/admin/review/" + second, "/admin/review/" + first, "/admin/audit"} {
		if st := viewer.open(rig.url(1) + page); st != http.StatusOK {
			t.Fatalf("viewer: %s: got HTTP %d, want 200", page, st)
		}
		if n := viewer.actionForms(); n != 0 {
			t.Errorf("viewer: %s: got %d forms, want no resolution form", page, n)
		}
	}
	viewer.open(rig.url(1) + "/admin/review/" + second)
	if !strings.Contains(viewer.text(), "UKBROWSE02") {
		t.Errorf("viewer: review item %s: got %q, want its payload", second, cut(viewer.text(), 300))
	}
	viewer.shot("review-item-no-forms")

	// On a phone's screen every page fits its width: nothing to scroll
	// sideways.
	func() {
		ctx, cancel := viewer.step()
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
			t.Fatalf("viewer: phone viewport: %v", err)
		}
	}()
	for _, page := range []string{"/admin/", "/admin/payments", "/admin/payments/" + id, "/admin/apps", "/admin/webhooks", "/admin/settings",
		"/admin/review", "/admin/review/" + first, "/admin/audit"} {
		viewer.open(rig.url(1) + page)
		if w := js[int](viewer, "document.documentElement.scrollWidth - window.innerWidth"); w > 1 {
			t.Errorf("viewer on a phone: %s is %d px wider than the screen, want it to fit", page, w)
		}
		viewer.shot("phone" + strings.ReplaceAll(strings.TrimSuffix(page, "/"), "/", "-"))
	}
	admin.open(rig.url(0) + "/admin/apps/duka")
	if n := admin.actionForms(); n < 3 {
		t.Errorf("admin: /admin/apps/duka: got %d action forms, want rotate, disable and webhook", n)
	}
	viewerCookie := viewer.sessionCookie(rig.url(1))
	before := appState(t, rig)
	for _, action := range []string{"/admin/apps/duka/disable", "/admin/apps/duka/rotate-key", "/admin/apps"} {
		req, _ := http.NewRequest("POST", rig.url(0)+action, strings.NewReader(url.Values{"name": {"viewer-made"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", rig.url(0))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(viewerCookie)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer: crafted POST %s: got %d, want 403", action, resp.StatusCode)
		}
	}
	if after := appState(t, rig); after != before {
		t.Errorf("apps after the viewer's POSTs: got %s, want %s", after, before)
	}
	for _, action := range []string{"dismiss", "create-payment"} {
		req, _ := http.NewRequest("POST", rig.url(1)+"/admin/review/"+second+"/"+action,
			strings.NewReader(url.Values{"reason": {"viewer was here"}, "amount": {"1"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", rig.url(1))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(viewerCookie)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer: crafted POST %s of review item %s: got %d, want 403", action, second, resp.StatusCode)
		}
	}
	if code, out, _ := rig.cli(t, "", "review", "list", "--json"); code != 0 || !strings.Contains(out, "UKBROWSE02") || strings.Contains(out, "viewer was here") {
		t.Errorf("review item %s after the viewer's POSTs: got %d %s, want it still open", second, code, cut(out, 300))
	}

	// A page on another site posts the admin's "disable" form: refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>Win</title><form method="post" action="%s/admin/apps/duka/disable"><button type="submit" id="win">Claim your prize</button></form>`, rig.url(0))
	}))
	t.Cleanup(evil.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(evil.URL, "http://"))
	admin.open("http://localhost:" + port + "/") // another site than 127.0.0.1
	if st := admin.submit("#win"); st != http.StatusForbidden {
		t.Errorf("admin: a cross-site POST of the disable form: got HTTP %d, want 403", st)
	}
	admin.shot("cross-site-refused")
	if after := appState(t, rig); after != before {
		t.Errorf("apps after the cross-site POST: got %s, want %s", after, before)
	}

	// Sign-out ends the session on every replica.
	admin.open(rig.url(1) + "/admin/")
	if st := admin.submit("form[action='/admin/logout'] button"); st != http.StatusOK || !strings.Contains(admin.location(), "/admin/login") {
		t.Fatalf("admin: sign out: got %d at %s, want the sign-in page", st, admin.location())
	}
	admin.shot("signed-out")
	for i := range rig.urls {
		admin.open(rig.url(i) + "/admin/")
		if !strings.Contains(admin.location(), "/admin/login") {
			t.Errorf("admin: /admin/ on replica %d after sign-out: got %s, want the sign-in page", i, admin.location())
		}
		req, _ := http.NewRequest("GET", rig.url(i)+"/admin/", nil)
		req.AddCookie(adminCookie)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/admin/login") {
			t.Errorf("the old session cookie on replica %d after sign-out: got %d %s, want a redirect to sign in", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestConsoleInBrowser runs the operators' flows in Chromium against one
// Lipa, on SQLite.
func TestConsoleInBrowser(t *testing.T) {
	s := startTestService(t, "sqlite:"+filepath.Join(t.TempDir(), "lipa.db"), nil)
	consoleFlows(t, consoleRig{urls: []string{s.URL}, cli: func(t *testing.T, stdin string, args ...string) (int, string, string) {
		return runCLIWithStdin(t, s.Env, stdin, args...)
	}})
}

// runCLIWithStdin runs a lipa command in-process with env and stdin.
func runCLIWithStdin(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	if len(args) > 0 && args[0] == "operators" {
		cfg, err := loadConfig(lookupIn(env), "")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cmdOperators(ctx, cfg, args[1:], strings.NewReader(stdin), &out); err != nil {
			if _, ok := err.(usageError); ok {
				return 2, out.String(), err.Error()
			}
			return 1, out.String(), err.Error()
		}
		return 0, out.String(), ""
	}
	return runCLI(t, env, args...)
}
