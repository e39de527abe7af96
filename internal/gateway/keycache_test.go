package gateway_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestKeyCacheFollowsChanges: keys resolved from memory stop working as
// soon as a disable or a rotation made elsewhere (another process on the
// same database: the CLI, another replica) has committed, and a rotated
// key's grace period ends on time although the key is cached.
func TestKeyCacheFollowsChanges(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)}
		newGateway := func(grace time.Duration) *gateway.Gateway {
			return gateway.New(sqlstoretest.OpenURL(t, url), nil, gateway.Config{Now: clock.Now, KeyRotationGrace: grace,
				Logger: slog.New(slog.DiscardHandler)})
		}
		serving := newGateway(0)          // answers the app's requests
		operator := newGateway(time.Hour) // the CLI: another handle on the database
		noGrace := newGateway(0)          // the CLI with LIPA_KEY_ROTATION_GRACE=0
		_, key, err := operator.CreateApp(ctx, testOperator, "shop")
		if err != nil {
			t.Fatal(err)
		}
		var newKey lipa.Secret
		steps := []struct {
			name   string
			change func() error
			key    *lipa.Secret
			want   string // error code; "" accepted
		}{
			{"first use", nil, &key, ""},
			{"cached", nil, &key, ""},
			{"disabled elsewhere", func() error { return operator.SetAppDisabled(ctx, testOperator, "shop", true) }, &key, "app_disabled"},
			{"still disabled", nil, &key, "app_disabled"},
			{"enabled elsewhere", func() error { return operator.SetAppDisabled(ctx, testOperator, "shop", false) }, &key, ""},
			{"rotated elsewhere: the new key", func() (err error) { newKey, _, err = operator.RotateKey(ctx, testOperator, "shop"); return err }, &newKey, ""},
			{"rotated elsewhere: the old key in its grace period", nil, &key, ""},
			{"the old key after its grace period", func() error { clock.Advance(time.Hour + time.Second); return nil }, &key, "invalid_api_key"},
			{"the new key after the old one's grace period", nil, &newKey, ""},
			{"rotated elsewhere without grace: the key before", func() error { _, _, err := noGrace.RotateKey(ctx, testOperator, "shop"); return err }, &newKey, "invalid_api_key"},
		}
		for _, s := range steps {
			if s.change != nil {
				if err := s.change(); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
			}
			_, err := serving.Authenticate(ctx, s.key.Reveal())
			got := ""
			if err != nil {
				got = lipa.ErrorCode(err)
			}
			if got != s.want {
				t.Fatalf("%s: Authenticate got %q (%v), want %q", s.name, got, err, s.want)
			}
		}
	})
}
