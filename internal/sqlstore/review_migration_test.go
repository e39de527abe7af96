package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestReviewMigrationBackfills: upgrading a database that holds payloads
// flagged before the review queue existed (migration 00008) turns each
// unmatched, conflicting or malformed callback and confirmation into an
// open item with its reason; applied and rejected ones stay out.
func TestReviewMigrationBackfills(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		db := sqlstoretest.OpenURL(t, databaseURL)
		driver, dsn := "pgx", databaseURL
		if db.Backend() == sqlstore.SQLite {
			driver, dsn = "sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite:")
		}
		raw, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		msgs := []sqlstore.Inbound{
			{Kind: sqlstore.InboundSTKCallback, CheckoutRequestID: "ws_CO_1", Outcome: sqlstore.OutcomeUnmatched, Note: "no payment has this CheckoutRequestID yet"},
			{Kind: sqlstore.InboundSTKCallback, CheckoutRequestID: "ws_CO_2", PaymentID: "pay_2", Outcome: sqlstore.OutcomeConflict, Note: "duplicate receipt: receipt UKX belongs to payment pay_1"},
			{Kind: sqlstore.InboundSTKCallback, CheckoutRequestID: "ws_CO_3", PaymentID: "pay_3", Outcome: sqlstore.OutcomeConflict, Note: "callback amount 1 differs from the payment's 5; not applied"},
			{Kind: sqlstore.InboundC2BConfirmation, TransID: "UKABC", Outcome: sqlstore.OutcomeMalformed, Note: `TransAmount "abc" is not a decimal amount`},
			{Kind: sqlstore.InboundC2BConfirmation, TransID: "UKOK", PaymentID: "pay_4", Outcome: sqlstore.OutcomeApplied},
			{Kind: sqlstore.InboundSTKCallback, Outcome: sqlstore.OutcomeRejected, Note: "wrong token"},
			{Kind: sqlstore.InboundC2BValidation, Outcome: sqlstore.OutcomeMalformed, Note: "not a JSON object"},
		}
		err = db.InTx(ctx, func(tx *sqlstore.Tx) error {
			for i := range msgs {
				msgs[i].Path, msgs[i].SourceAddr, msgs[i].ReceivedAt, msgs[i].Body = "/cb", "196.201.214.200:443", t0, []byte("{}")
				if err := tx.InsertInbound(ctx, &msgs[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Migration 00008's backfill, as an upgrade runs it on these rows
		// (run by hand: later migrations are applied already).
		file, err := os.ReadFile(filepath.Join("migrations", string(db.Backend()), "00008_review_audit.sql"))
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(file), "-- +goose Down")
		_, backfill, ok := strings.Cut(up, "INSERT INTO review_items")
		if !ok {
			t.Fatal("00008_review_audit.sql: no backfill")
		}
		if _, err := raw.ExecContext(ctx, "INSERT INTO review_items"+backfill); err != nil {
			t.Fatalf("backfill: %v", err)
		}
		var items []sqlstore.ReviewItem
		err = db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			items, err = tx.ReviewItems(ctx, sqlstore.ReviewFilter{State: sqlstore.ReviewOpen, Limit: 100})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Reason+" "+string(it.PaymentID)+it.CheckoutRequestID+it.Receipt)
		}
		want := []string{"invalid_amount UKABC", "amount_mismatch pay_3ws_CO_3", "receipt_conflict pay_2ws_CO_2", "unmatched_callback ws_CO_1"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("review items after the upgrade, newest first:\n got %q\nwant %q", got, want)
		}
	})
}
