package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// reviewCLISetup returns the environment of a fresh database and a gateway
// on it standing in for a running lipa serve that received Safaricom's
// payloads.
func reviewCLISetup(t *testing.T, databaseURL string) (map[string]string, *gateway.Gateway) {
	t.Helper()
	env := map[string]string{"DATABASE_URL": databaseURL, "LOG_FILE": filepath.Join(t.TempDir(), "payments.log")}
	gw := gateway.New(sqlstoretest.OpenURL(t, databaseURL), nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
	return env, gw
}

func reviewConfirm(t *testing.T, gw *gateway.Gateway, body string) {
	t.Helper()
	if err := gw.ReceiveC2BConfirmation(context.Background(), gateway.Inbound{Path: "/api/c2b/confirmation/", SourceAddr: "196.201.214.200:443", Body: []byte(body)}); err != nil {
		t.Fatalf("ReceiveC2BConfirmation: %v", err)
	}
}

func reviewConfirmation(transID, amount, msisdn string) string {
	return fmt.Sprintf(`{"TransactionType":"Pay Bill","TransID":%q,"TransTime":"20261129101500","TransAmount":%q,"BusinessShortCode":"174379",`+
		`"BillRefNumber":"INV5","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":%q,"FirstName":"JANE"}`, transID, amount, msisdn)
}

// TestReviewCommands: `lipa review list --json` lists open items with their
// identifiers; `show` prints the stored payload and, escaped, nothing a
// terminal would act on; resolutions refuse to run without --reason and,
// with one, are audited under the operating-system user (`lipa audit
// list`).
func TestReviewCommands(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		env, gw := reviewCLISetup(t, databaseURL)
		reviewConfirm(t, gw, reviewConfirmation("UKCLI00001", "abc", "254708374149"))
		reviewConfirm(t, gw, reviewConfirmation("UKCLI00002", "10.00", ""))
		reviewConfirm(t, gw, `{"TransID":"UKCLI\u001b[2J3","TransAmount":"10","BusinessShortCode":"174379","MSISDN":"254708374149"}`)

		code, stdout, stderr := runCLI(t, env, "review", "list", "--json")
		if code != 0 {
			t.Fatalf("lipa review list --json: exit %d, stderr %q", code, stderr)
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(stdout), &items); err != nil || len(items) != 3 {
			t.Fatalf("lipa review list --json: got %q (%v), want a JSON array of 3 items", stdout, err)
		}
		ids := map[string]string{}
		for _, it := range items {
			ids[fmt.Sprint(it["receipt"])] = fmt.Sprint(it["id"])
		}
		amountItem, phoneItem := ids["UKCLI00001"], ids["UKCLI00002"]
		if amountItem == "" || phoneItem == "" {
			t.Fatalf("lipa review list --json: got %s, want items naming UKCLI00001 and UKCLI00002", stdout)
		}

		code, stdout, _ = runCLI(t, env, "review", "list")
		if code != 0 || strings.ContainsRune(stdout, 0x1b) || !strings.Contains(stdout, `UKCLI\x1b[2J3`) || !strings.Contains(stdout, "missing_fields") {
			t.Errorf("lipa review list: got exit %d\n%s\nwant a table with the escape character shown escaped", code, stdout)
		}
		code, stdout, _ = runCLI(t, env, "review", "show", amountItem)
		if code != 0 || !strings.Contains(stdout, `"TransAmount": "abc"`) || !strings.Contains(stdout, "invalid_amount") {
			t.Errorf("lipa review show %s: got exit %d\n%s\nwant the item and its payload pretty-printed", amountItem, code, stdout)
		}

		for _, args := range [][]string{
			{"review", "dismiss", amountItem},
			{"review", "dismiss", amountItem, "--reason", " "},
			{"review", "create-payment", phoneItem, "--phone", "0708374149"},
			{"review", "settle", amountItem, "--status", "FAILED"},
			{"review", "match", amountItem, "pay_x"},
		} {
			if code, _, stderr := runCLI(t, env, args...); code != 2 || !strings.Contains(stderr, "--reason") {
				t.Errorf("lipa %s: got exit %d (stderr %q), want 2 asking for --reason", strings.Join(args, " "), code, stderr)
			}
		}
		code, stdout, stderr = runCLI(t, env, "review", "create-payment", phoneItem, "--phone", "0708374149", "--reason", "payer called with the number")
		if code != 0 || !strings.Contains(stdout, "payment_created") {
			t.Fatalf("lipa review create-payment: got exit %d (%q, %q), want the payment created", code, stdout, stderr)
		}
		code, _, stderr = runCLI(t, env, "review", "dismiss", amountItem, "--reason", "a test payment of abc shillings")
		if code != 0 {
			t.Fatalf("lipa review dismiss --reason: got exit %d (%q), want 0", code, stderr)
		}
		code, _, stderr = runCLI(t, env, "review", "dismiss", amountItem, "--reason", "again")
		if code != 1 || !strings.Contains(stderr, "review_item_resolved") {
			t.Errorf("second dismissal: got exit %d (%q), want 1 review_item_resolved", code, stderr)
		}
		code, stdout, _ = runCLI(t, env, "review", "show", amountItem)
		who := cliActor().String()
		if code != 0 || !strings.Contains(stdout, "a test payment of abc shillings") || !strings.Contains(stdout, who) {
			t.Errorf("lipa review show after the dismissal: got exit %d\n%s\nwant the reason and %s in its history", code, stdout, who)
		}
		code, stdout, _ = runCLI(t, env, "review", "list", "--json")
		if code != 0 || strings.Contains(stdout, "UKCLI00001") || strings.Contains(stdout, "UKCLI00002") {
			t.Errorf("open items after the resolutions: got %s, want only the third", stdout)
		}

		code, stdout, stderr = runCLI(t, env, "audit", "list", "--json")
		var entries []map[string]any
		if code != 0 || json.Unmarshal([]byte(stdout), &entries) != nil || len(entries) != 2 {
			t.Fatalf("lipa audit list --json: got exit %d %q (%q), want 2 entries", code, stdout, stderr)
		}
		if entries[0]["action"] != "review.dismiss" || entries[0]["actor"] != cliActor().Name || entries[0]["actor_kind"] != "cli" ||
			entries[0]["reason"] != "a test payment of abc shillings" || entries[1]["action"] != "review.create_payment" {
			t.Errorf("audit entries: got %v, want the dismissal then the create-payment, by %s", entries, who)
		}
		code, stdout, _ = runCLI(t, env, "audit", "list", "--action", "review.create_payment")
		if code != 0 || !strings.Contains(stdout, "review:"+phoneItem) || strings.Contains(stdout, "review.dismiss") {
			t.Errorf("lipa audit list --action review.create_payment: got exit %d\n%s", code, stdout)
		}
	})
}

// TestAuditTrailInDatabase: the app commands record who ran them in the
// audit log, besides LOG_FILE.
func TestAuditTrailInDatabase(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		env, _ := reviewCLISetup(t, databaseURL)
		for _, args := range [][]string{
			{"apps", "create", "shop"},
			{"apps", "rotate-key", "shop"},
			{"apps", "disable", "shop"},
			{"apps", "enable", "shop"},
			{"apps", "set-webhook", "shop", "https://shop.example.com/hook"},
			{"webhooks", "redeliver", "--app", "shop", "--failed"},
		} {
			if code, _, stderr := runCLI(t, env, args...); code != 0 {
				t.Fatalf("lipa %s: exit %d: %s", strings.Join(args, " "), code, stderr)
			}
		}
		code, stdout, stderr := runCLI(t, env, "audit", "list", "--json", "--target", "app:shop")
		var entries []map[string]any
		if code != 0 || json.Unmarshal([]byte(stdout), &entries) != nil {
			t.Fatalf("lipa audit list: exit %d %q %q", code, stdout, stderr)
		}
		var got []string
		for _, e := range entries {
			if e["actor"] != cliActor().Name || e["actor_kind"] != "cli" {
				t.Errorf("entry %v: want actor %s", e, cliActor())
			}
			got = append(got, fmt.Sprint(e["action"]))
		}
		want := "webhook.redeliver app.set_webhook app.enable app.disable app.rotate_key app.create"
		if strings.Join(got, " ") != want {
			t.Errorf("audited actions, newest first: got %q, want %q", strings.Join(got, " "), want)
		}
		if strings.Contains(stdout, "whsec_") || strings.Contains(stdout, "lipa_") && !strings.Contains(stdout, "…") {
			t.Errorf("lipa audit list shows a secret: %s", stdout)
		}
	})
}
