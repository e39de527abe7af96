package main

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// unreadableConfirmation is a C2B confirmation whose TransAmount no one
// can read: Lipa stores it and opens an invalid_amount review item.
func unreadableConfirmation(transID string) string {
	return fmt.Sprintf(`{"TransactionType":"Pay Bill","TransID":%q,"TransTime":"20261201101500","TransAmount":"abc","BusinessShortCode":"174379",`+
		`"BillRefNumber":"INV9","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"254708374149","FirstName":"A"}`, transID)
}

var (
	reviewLinkRE = regexp.MustCompile(`href="/admin/review/(\d+)"`)
	postFormRE   = regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
)

// postForms lists the actions of a page's POST forms, sign-out aside.
func postForms(body string) []string {
	var out []string
	for _, m := range postFormRE.FindAllStringSubmatch(body, -1) {
		if m[1] != "/admin/logout" {
			out = append(out, m[1])
		}
	}
	return out
}

// reviewItemState is an item's state as the gateway has it.
func reviewItemState(t *testing.T, databaseURL, id string) gateway.ReviewState {
	t.Helper()
	var n int64
	fmt.Sscan(id, &n)
	g := gateway.New(sqlstoretest.OpenURL(t, databaseURL), nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
	d, err := g.ReviewItem(context.Background(), n)
	if err != nil {
		t.Fatalf("review item %s: %v", id, err)
	}
	return d.Item.State
}

// TestConsoleReviewQueue: the review queue lists each item with its raw
// payload and why it needs a person; an admin resolves an item with the
// forms that fit it (a reason required, a refused resolution changing
// nothing and saying why), and the resolution is in the audit log and the
// payment's timeline; a viewer sees the items without a form and a POST
// from their session is refused.
func TestConsoleReviewQueue(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		createOperator(t, s.Env, "watcher", "viewer", viewerPassword)
		for _, id := range []string{"UKREVIEW01", "UKREVIEW02"} {
			if r := s.do(t, "POST", "/api/c2b/confirmation/", "", unreadableConfirmation(id)); r.Status != 200 {
				t.Fatalf("C2B confirmation: %d %s", r.Status, r.Raw)
			}
		}
		admin := &consoleClient{t: t, base: s.URL}
		if st := admin.signIn("boss", adminPassword); st != http.StatusSeeOther {
			t.Fatalf("admin sign-in: got %d", st)
		}
		st, body := admin.page("/admin/review")
		text := html.UnescapeString(body)
		for _, want := range []string{"2 items waiting", "invalid amount", `"TransAmount": "abc"`, "UKREVIEW01", "UKREVIEW02", "Why it needs a person", "M-Pesa statement"} {
			if st != 200 || !strings.Contains(text, want) {
				t.Errorf("admin /admin/review: got %d without %q", st, want)
			}
		}
		if forms := postForms(body); len(forms) != 0 {
			t.Errorf("/admin/review: got forms %v, want the resolutions on each item's page only", forms)
		}
		links := reviewLinkRE.FindAllStringSubmatch(body, -1)
		if len(links) < 2 {
			t.Fatalf("/admin/review: got links %v, want one per item", links)
		}
		older, newer := links[len(links)-1][1], links[0][1] // newest first
		item := "/admin/review/" + older

		st, body = admin.page(item)
		if forms := postForms(body); st != 200 || strings.Join(forms, " ") != item+"/create-payment "+item+"/dismiss" {
			t.Fatalf("admin %s: got %d with forms %v, want create-payment and dismiss (no match: no STK callback; no settle: no payment)", item, st, forms)
		}
		if !strings.Contains(html.UnescapeString(body), `"TransID": "UKREVIEW01"`) {
			t.Errorf("admin %s: got no pretty-printed payload", item)
		}

		// Refused resolutions change nothing and say why.
		for _, c := range []struct {
			action string
			form   url.Values
			status int
			says   string
		}{
			{"dismiss", url.Values{"reason": {"  "}}, http.StatusBadRequest, "needs a reason"},
			{"create-payment", url.Values{"reason": {"statement says 250"}}, http.StatusBadRequest, "not a number of shillings"},
			{"create-payment", url.Values{"reason": {"x"}, "amount": {"250"}, "phone": {"12"}}, http.StatusBadRequest, "phone"},
			{"settle", url.Values{"reason": {"x"}, "status": {"FAILED"}}, http.StatusConflict, "concerns no payment"},
			{"match", url.Values{"reason": {"x"}, "payment_id": {"pay_nosuch"}}, http.StatusConflict, "not an unmatched STK callback"},
		} {
			st, body := admin.post(item+"/"+c.action, c.form)
			if st != c.status || !strings.Contains(html.UnescapeString(body), c.says) || !strings.Contains(body, `role="alert"`) {
				t.Errorf("%s %v: got %d %q, want %d saying %q", c.action, c.form, st, cut(body, 120), c.status, c.says)
			}
			if got := reviewItemState(t, databaseURL, older); got != gateway.ReviewOpen {
				t.Fatalf("item after a refused %s: got %s, want open", c.action, got)
			}
		}

		// The resolution goes through as the operator.
		resp := admin.do("POST", item+"/create-payment", url.Values{"reason": {"statement shows KES 250"}, "amount": {"250"}}, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != item+"?notice=payment_created" {
			t.Fatalf("create-payment: got %d to %q, want 303 to the item", resp.StatusCode, resp.Header.Get("Location"))
		}
		st, body = admin.page(item + "?notice=payment_created")
		text = html.UnescapeString(body)
		pid := regexp.MustCompile(`Resulting payment</dt><dd><a class="mono" href="/admin/payments/(pay_[a-z0-9]+)"`).FindStringSubmatch(body)
		if st != 200 || pid == nil || !strings.Contains(text, "payment was created") || !strings.Contains(text, "statement shows KES 250") ||
			!strings.Contains(text, "review.create_payment by boss (console)") || len(postForms(body)) != 0 {
			t.Fatalf("%s after the resolution: got %d %q, want it resolved, the payment, the history and no form", item, st, cut(text, 400))
		}
		if st, body := admin.post(item+"/dismiss", url.Values{"reason": {"again"}}); st != http.StatusConflict || !strings.Contains(body, "already resolved") {
			t.Errorf("dismissing a resolved item: got %d, want 409 saying it is resolved", st)
		}
		st, body = admin.page("/admin/payments/" + pid[1])
		text = html.UnescapeString(body)
		for _, want := range []string{"Review item " + older + " opened: invalid amount", "Operator action review.create_payment by boss (console)",
			`reason "statement shows KES 250"`, `href="/admin/review/` + older + `"`} {
			if st != 200 || !strings.Contains(text, want) {
				t.Errorf("the created payment's timeline: got %d without %q", st, want)
			}
		}
		st, body = admin.page("/admin/audit?" + url.Values{"action": {"review.create_payment"}}.Encode())
		text = html.UnescapeString(body)
		for _, want := range []string{"boss", "review:" + older, "statement shows KES 250", "item.state: \"open\" → \"resolved\""} {
			if st != 200 || !strings.Contains(text, want) {
				t.Errorf("/admin/audit of the resolution: got %d without %q", st, want)
			}
		}
		if st, body := admin.page("/admin/review?state=resolved"); st != 200 || !strings.Contains(body, `href="/admin/review/`+older+`"`) ||
			strings.Contains(body, `href="/admin/review/`+newer+`"`) {
			t.Errorf("/admin/review?state=resolved: got %d, want the resolved item only", st)
		}
		for path, want := range map[string]int{"/admin/review?state=lost": 400, "/admin/review?cursor=x": 400, "/admin/review/abc": 404,
			"/admin/review/999999": 404, "/admin/review/0": 404} {
			if st, _ := admin.page(path); st != want {
				t.Errorf("%s: got %d, want %d", path, st, want)
			}
		}
		if st, _ := admin.post("/admin/review/999999/dismiss", url.Values{"reason": {"x"}}); st != http.StatusNotFound {
			t.Errorf("dismissing no item: got %d, want 404", st)
		}

		// A viewer sees the queue and the items, without a form; a POST
		// from their session is refused and changes nothing.
		viewer := &consoleClient{t: t, base: s.URL}
		if st := viewer.signIn("watcher", viewerPassword); st != http.StatusSeeOther {
			t.Fatalf("viewer sign-in: got %d", st)
		}
		for _, page := range []string{"/admin/review", "/admin/review/" + newer, item, "/admin/audit"} {
			st, body := viewer.page(page)
			if st != 200 || len(postForms(body)) != 0 {
				t.Errorf("viewer %s: got %d with forms %v, want 200 without forms", page, st, postForms(body))
			}
		}
		if _, body := viewer.page("/admin/review/" + newer); !strings.Contains(html.UnescapeString(body), `"TransID": "UKREVIEW02"`) {
			t.Errorf("viewer: the item's page shows no payload")
		}
		for _, action := range []string{"dismiss", "create-payment", "settle", "match"} {
			st, body := viewer.post("/admin/review/"+newer+"/"+action, url.Values{"reason": {"viewer was here"}, "amount": {"1"}})
			if st != http.StatusForbidden || !strings.Contains(body, "viewer") {
				t.Errorf("viewer POST %s: got %d, want 403", action, st)
			}
		}
		if got := reviewItemState(t, databaseURL, newer); got != gateway.ReviewOpen {
			t.Errorf("item after the viewer's POSTs: got %s, want open", got)
		}
	})
}

// TestConsoleReviewSettleAndMatch: an STK payment whose callback does not
// fit it is settled from its item's page (the settle form is there; match
// and create-payment are not), and the payment's timeline and the audit
// log show who did it and why; an unmatched callback's item offers match,
// and a match to a payment that cannot take it is refused with the reason.
func TestConsoleReviewSettleAndMatch(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		key := s.createApp(t, "shop")
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		// The simulator never calls back for this phone.
		push := s.pushOK(t, key, "254700000005", 10, "REV1")
		id, checkout := jsonStr(push.Body, "payment_id"), jsonStr(push.Body, "checkout_request_id")
		s.postCallback(t, lcCallback(checkout, jsonStr(push.Body, "merchant_request_id"), 0, 1, "UKREVSET01", "254700000005"))
		s.postCallback(t, lcCallback("ws_CO_01122026101500123456789", "29115-34620561-1", 0, 10, "UKREVSET02", "254708374149"))

		admin := &consoleClient{t: t, base: s.URL}
		admin.signIn("boss", adminPassword)
		_, body := admin.page("/admin/review")
		links := reviewLinkRE.FindAllStringSubmatch(body, -1)
		if len(links) < 2 {
			t.Fatalf("/admin/review: got links %v, want two items", links)
		}
		unmatched, mismatch := "/admin/review/"+links[0][1], "/admin/review/"+links[len(links)-1][1]
		if _, body := admin.page(mismatch); strings.Join(postForms(body), " ") != mismatch+"/settle "+mismatch+"/dismiss" ||
			!strings.Contains(html.UnescapeString(body), "amount mismatch") {
			t.Fatalf("%s: got forms %v, want settle and dismiss of the amount mismatch", mismatch, postForms(body))
		}
		if _, body := admin.page(unmatched); strings.Join(postForms(body), " ") != unmatched+"/match "+unmatched+"/dismiss" ||
			!strings.Contains(html.UnescapeString(body), "unmatched callback") {
			t.Fatalf("%s: got forms %v, want match and dismiss of the unmatched callback", unmatched, postForms(body))
		}
		st, body := admin.post(unmatched+"/match", url.Values{"reason": {"the push's answer was lost"}, "payment_id": {id}})
		if st != http.StatusConflict || !strings.Contains(html.UnescapeString(body), "only a PENDING STK payment without one can take this callback") {
			t.Errorf("match to a payment with another CheckoutRequestID: got %d %q, want 409 saying why", st, cut(body, 100))
		}
		if st, body := admin.post(mismatch+"/settle", url.Values{"reason": {"x"}, "status": {"SUCCESS"}}); st != http.StatusBadRequest ||
			!strings.Contains(body, "receipt") {
			t.Errorf("settle SUCCESS without a receipt: got %d, want 400 asking for it", st)
		}
		resp := admin.do("POST", mismatch+"/settle", url.Values{"reason": {"statement shows KES 10 paid as UKREVSET01"}, "status": {"SUCCESS"},
			"receipt": {"ukrevset01"}}, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("settle: got %d, want 303", resp.StatusCode)
		}
		if p := s.payment(t, key, id); p["status"] != "SUCCESS" || p["mpesa_receipt_number"] != "UKREVSET01" {
			t.Fatalf("the payment after the settlement: got %v, want SUCCESS with UKREVSET01", p)
		}
		_, body = admin.page("/admin/payments/" + id)
		text := html.UnescapeString(body)
		for _, want := range []string{"opened: amount mismatch", "Operator action review.settle by boss (console)", "statement shows KES 10 paid as UKREVSET01",
			`"status": "SUCCESS"`} {
			if !strings.Contains(text, want) {
				t.Errorf("the payment's timeline: got no %q", want)
			}
		}
		code, out, _ := runCLI(t, s.Env, "audit", "list", "--action", "review.settle")
		if code != 0 || !strings.Contains(out, "console:boss") {
			t.Errorf("lipa audit list --action review.settle: got %d %q, want the console's settlement", code, out)
		}
	})
}

// TestConsoleAuditLog: the audit page shows every operator action from the
// three doors with who, what, the target (linked), and what changed;
// filters by who, door, action, target and Kenya dates; pages newest first
// without gaps or repeats; and nothing on it, nor any request, edits it.
func TestConsoleAuditLog(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		s := startTestService(t, databaseURL, nil)
		createOperator(t, s.Env, "boss", "admin", adminPassword)
		s.createApp(t, "shop")
		if code, _, errOut := runCLI(t, s.Env, "apps", "disable", "shop"); code != 0 {
			t.Fatal(errOut)
		}
		admin := &consoleClient{t: t, base: s.URL}
		admin.signIn("boss", adminPassword)
		if st, _ := admin.post("/admin/apps", url.Values{"name": {"duka"}}); st != 200 {
			t.Fatalf("console: create app: got %d", st)
		}
		// 55 more actions, as the admin API makes them, fill two pages.
		g := gateway.New(sqlstoretest.OpenURL(t, databaseURL), nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
		api := gateway.Actor{Kind: gateway.ActorAPI, Name: "admin-api"}
		for i := range 55 {
			if _, _, err := g.CreateApp(context.Background(), api, fmt.Sprintf("bulk-%02d", i)); err != nil {
				t.Fatal(err)
			}
		}

		st, body := admin.page("/admin/audit")
		text := html.UnescapeString(body)
		if st != 200 || auditRows(body) != 50 || !strings.Contains(body, `rel="next"`) || !strings.Contains(text, "bulk-54") || strings.Contains(text, "bulk-04") {
			t.Fatalf("/admin/audit: got %d with %d rows, want the 50 newest entries and a next page", st, auditRows(body))
		}
		next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(body)
		st, body = admin.page(html.UnescapeString(next[1]))
		text = html.UnescapeString(body)
		for _, want := range []string{"bulk-04", "bulk-00", "operator.create", "operator:boss", "app.disable", "disabled: false → true",
			`href="/admin/apps/shop"`, "app.create", "(cli)", "(console)", "(api)", ">Newest</a>"} {
			if st != 200 || !strings.Contains(text, want) {
				t.Errorf("/admin/audit, second page: got %d without %q", st, want)
			}
		}
		if strings.Contains(text, "bulk-05") || strings.Contains(body, `rel="next"`) {
			t.Errorf("/admin/audit, second page: got an entry of the first page, or yet another page")
		}

		kenya := time.Now().In(time.FixedZone("EAT", 3*3600))
		// From yesterday, so that a run across Kenya's midnight holds too.
		yesterday, today, tomorrow := kenya.AddDate(0, 0, -1).Format("2006-01-02"), kenya.Format("2006-01-02"), kenya.AddDate(0, 0, 1).Format("2006-01-02")
		for _, c := range []struct {
			q         url.Values
			rows      int
			has, hasn string
		}{
			{url.Values{"kind": {"console"}}, 1, "duka", `/admin/apps/shop"`},
			{url.Values{"actor": {"boss"}}, 1, "duka", `/admin/apps/shop"`},
			{url.Values{"kind": {"cli"}}, 4, "operator:boss", "duka"}, // the simulator's demo app too
			{url.Values{"action": {"app.disable"}}, 1, "app:shop", "duka"},
			{url.Values{"target": {"app:shop"}}, 2, "app.create", "duka"},
			{url.Values{"from": {yesterday}, "to": {today}, "kind": {"cli"}}, 4, `/admin/apps/shop"`, "duka"},
			{url.Values{"from": {tomorrow}}, 0, "No entry matches", `/admin/apps/shop"`},
		} {
			st, body := admin.page("/admin/audit?" + c.q.Encode())
			if st != 200 || auditRows(body) != c.rows || !strings.Contains(body, c.has) || strings.Contains(body, c.hasn) {
				t.Errorf("/admin/audit?%s: got %d with %d rows, want %d rows with %q and without %q", c.q.Encode(), st, auditRows(body), c.rows, c.has, c.hasn)
			}
		}
		for _, q := range []string{"from=yesterday", "from=2026-12-02&to=2026-12-01", "kind=telepathy", "cursor=x"} {
			if st, body := admin.page("/admin/audit?" + q); st != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) {
				t.Errorf("/admin/audit?%s: got %d, want 400 saying why", q, st)
			}
		}

		// Never editable: no form on the page, and no request changes it.
		if forms := postForms(body); len(forms) != 0 {
			t.Errorf("/admin/audit: got forms %v, want none", forms)
		}
		before, _ := g.AuditLog(context.Background(), gateway.AuditFilter{Limit: 1000})
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			for _, path := range []string{"/admin/audit", "/admin/audit/1"} {
				resp := admin.do(m, path, url.Values{"reason": {"tidy up"}}, nil)
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s: got %d, want 405 or 404", m, path, resp.StatusCode)
				}
			}
		}
		if after, _ := g.AuditLog(context.Background(), gateway.AuditFilter{Limit: 1000}); len(after) != len(before) {
			t.Errorf("audit entries after the edit attempts: got %d, want %d", len(after), len(before))
		}
	})
}

// auditRows counts the entries of an audit page.
func auditRows(body string) int { return strings.Count(body, `<td data-label="When">`) }
