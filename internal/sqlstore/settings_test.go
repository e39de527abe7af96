package sqlstore_test

import (
	"context"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

func TestPutSettingReplaces(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		ctx := context.Background()
		for _, v := range []string{"http://127.0.0.1:1111", "http://127.0.0.1:2222"} {
			if err := db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.PutSetting(ctx, "simulator_url", v) }); err != nil {
				t.Fatalf("PutSetting %q: %v", v, err)
			}
			var got string
			err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
				got, err = tx.Setting(ctx, "simulator_url")
				return err
			})
			if err != nil || got != v {
				t.Fatalf("Setting after PutSetting %q: got %q, %v; want %q", v, got, err, v)
			}
		}
	})
}
