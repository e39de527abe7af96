package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestSetWebhookRefusesCredentials: a webhook URL with a user name or
// password in it is Invalid "invalid_webhook_url", its message never
// repeats the password, and the app's webhook stays as it was; a URL
// stored with credentials before is listed with them hidden.
func TestSetWebhookRefusesCredentials(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		db := sqlstoretest.OpenURL(t, databaseURL)
		g := gateway.New(db, nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
		if _, _, err := g.CreateApp(ctx, testOperator, "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := g.SetWebhook(ctx, testOperator, "shop", "https://hooks.example.com/lipa"); err != nil {
			t.Fatalf("SetWebhook without credentials: got %v, want nil", err)
		}
		for _, u := range []string{
			"https://user:s3cretpass@hooks.example.com/lipa",
			"https://user@hooks.example.com/lipa",
			"http://:s3cretpass@hooks.example.com/lipa",
			"https://@hooks.example.com/lipa",
			"user:s3cretpass@hooks.example.com/lipa",
		} {
			_, err := g.SetWebhook(ctx, testOperator, "shop", u)
			if lipa.ErrorKind(err) != lipa.Invalid || lipa.ErrorCode(err) != "invalid_webhook_url" {
				t.Errorf("SetWebhook(%q): got %v, want Invalid invalid_webhook_url", u, err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cretpass") {
				t.Errorf("SetWebhook(%q): the error %q repeats the password", u, err)
			}
		}
		webhookOf := func() string {
			t.Helper()
			apps, err := g.Apps(ctx)
			if err != nil || len(apps) != 1 {
				t.Fatalf("Apps: got %d apps, error %v; want 1", len(apps), err)
			}
			return apps[0].WebhookURL
		}
		if got := webhookOf(); got != "https://hooks.example.com/lipa" {
			t.Errorf("webhook after the refusals: got %q, want the one set before", got)
		}
		// As stored before credentials were refused.
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			app, err := tx.AppByName(ctx, "shop")
			if err != nil {
				return err
			}
			return tx.SetAppWebhook(ctx, app.ID, "https://user:s3cretpass@hooks.example.com/lipa?x=1", "whsec_test", time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := webhookOf(), "https://***@hooks.example.com/lipa?x=1"; got != want {
			t.Errorf("listed webhook stored with credentials: got %q, want %q", got, want)
		}
	})
}

// TestRedactURLUserinfo checks how a URL is shown once credentials are
// hidden.
func TestRedactURLUserinfo(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"https://hooks.example.com/lipa", "https://hooks.example.com/lipa"},
		{"https://hooks.example.com/a@b?c=d@e", "https://hooks.example.com/a@b?c=d@e"},
		{"https://user:pass@hooks.example.com:8443/lipa", "https://***@hooks.example.com:8443/lipa"},
		{"https://user@hooks.example.com/", "https://***@hooks.example.com/"},
		{"user:pass@hooks.example.com/lipa", "(a URL with an @ in it, hidden)"},
		{"https://us er:pa ss@host/", "(a URL with an @ in it, hidden)"},
	} {
		if got := gateway.RedactURLUserinfo(c.in); got != c.want {
			t.Errorf("RedactURLUserinfo(%q): got %q, want %q", c.in, got, c.want)
		}
	}
}
