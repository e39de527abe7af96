package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestAuditTrailOfOperatorCommands checks that every operator command that
// changes an app leaves a JSON line in LOG_FILE naming the action, the app
// and the operator, and never the key it printed.
func TestAuditTrailOfOperatorCommands(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		logFile := filepath.Join(t.TempDir(), "payments.log")
		env := map[string]string{"DATABASE_URL": databaseURL, "LOG_FILE": logFile}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		var printed []string
		for _, args := range [][]string{
			{"apps", "create", "shop"},
			{"apps", "rotate-key", "shop"},
			{"apps", "disable", "shop"},
			{"apps", "enable", "shop"},
			{"apps", "set-webhook", "shop", "https://shop.example.com/hook"},
		} {
			var stdout, stderr bytes.Buffer
			if rc := run(context.Background(), args, lookup, &stdout, &stderr); rc != 0 {
				t.Fatalf("lipa %s: exit %d: %s", strings.Join(args, " "), rc, stderr.String())
			}
			printed = append(printed, stdout.String())
		}
		raw, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if rec["source"] != "cli" || rec["operator"] == "" || rec["app"] != "shop" {
				t.Errorf("got audit line %v, want source cli, an operator and app shop", rec)
			}
			msgs = append(msgs, rec["msg"].(string))
		}
		want := "app created|app key rotated|app updated|app updated|webhook set"
		if got := strings.Join(msgs, "|"); got != want {
			t.Errorf("got audit messages %q, want %q", got, want)
		}
		for _, out := range printed {
			for _, f := range strings.Fields(out) {
				if (strings.HasPrefix(f, "lipa_") || strings.HasPrefix(f, "whsec_")) && strings.Contains(string(raw), f) {
					t.Errorf("the log holds a secret the command printed: %s…", f[:8])
				}
			}
		}
	})
}
