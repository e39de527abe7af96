package sqlstore_test

import (
	"context"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestAuthEpoch: the auth epoch changes with every change of an app's
// keys or enabled state, made through the store or in plain SQL, and with
// nothing else done to apps.
func TestAuthEpoch(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, _ := seed(t, db)
		ctx := context.Background()
		epoch := func() int64 {
			t.Helper()
			var e int64
			if err := db.Read(ctx, func(tx *sqlstore.Tx) (err error) { e, err = tx.AuthEpoch(ctx); return err }); err != nil {
				t.Fatal(err)
			}
			return e
		}
		inTx := func(fn func(tx *sqlstore.Tx) error) func() error {
			return func() error { return db.InTx(ctx, fn) }
		}
		steps := []struct {
			name    string
			change  func() error
			changed bool
		}{
			{"key used", inTx(func(tx *sqlstore.Tx) error { return tx.TouchApp(ctx, a, t0) }), false},
			{"webhook set", inTx(func(tx *sqlstore.Tx) error {
				return tx.SetAppWebhook(ctx, a, "https://shop.example.com/hook", "whsec_x", t0)
			}), false},
			{"app disabled", inTx(func(tx *sqlstore.Tx) error { return tx.SetAppDisabled(ctx, a, true, t0) }), true},
			{"app enabled", inTx(func(tx *sqlstore.Tx) error { return tx.SetAppDisabled(ctx, a, false, t0) }), true},
			{"key rotated", inTx(func(tx *sqlstore.Tx) error { return tx.SetAppKey(ctx, a, "hash-new", "lipa_yy", t0.Add(1), t0) }), true},
			{"disabled in plain SQL", func() error { return db.Exec(ctx, "UPDATE apps SET disabled = TRUE WHERE id = 'app_b'") }, true},
			{"key changed in plain SQL", func() error { return db.Exec(ctx, "UPDATE apps SET key_hash = 'hash-other' WHERE id = 'app_b'") }, true},
			{"app deleted in plain SQL", func() error { return db.Exec(ctx, "DELETE FROM apps WHERE id = 'app_b'") }, true},
		}
		for _, s := range steps {
			before := epoch()
			if err := s.change(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := epoch() != before; got != s.changed {
				t.Errorf("%s: epoch changed %v, want %v", s.name, got, s.changed)
			}
		}
	})
}
