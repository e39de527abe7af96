package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestTypedConflicts: the store's conflicts carry typed causes that the
// gateway decides on (a taken app name, a receipt that is another
// payment's, with that payment's ID), whatever their client-facing codes.
func TestTypedConflicts(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		db := sqlstoretest.OpenURL(t, databaseURL)
		a, _ := seed(t, db)
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			return tx.CreateApp(ctx, &lipa.App{ID: "app_c", Name: "shop", CreatedAt: t0, UpdatedAt: t0}, "hash-c", "lipa_cc")
		})
		if !errors.Is(err, sqlstore.ErrAppExists) || lipa.ErrorKind(err) != lipa.Conflict {
			t.Errorf("CreateApp of a taken name: got %v, want a Conflict wrapping ErrAppExists", err)
		}
		insert(t, db, lipa.Payment{ID: "pay_1", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusSuccess, Amount: lipa.Shillings(5), MpesaReceiptNumber: "UKT1AB2CD3"})
		insert(t, db, lipa.Payment{ID: "pay_2", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending, Amount: lipa.Shillings(5)})
		err = db.InTx(ctx, func(tx *sqlstore.Tx) error {
			p, err := tx.PaymentByID(ctx, "pay_2")
			if err != nil {
				return err
			}
			p.Status, p.MpesaReceiptNumber = lipa.StatusSuccess, "UKT1AB2CD3"
			return tx.UpdatePayment(ctx, p)
		})
		var taken *sqlstore.ReceiptTakenError
		if !errors.As(err, &taken) || taken.PaymentID != "pay_1" || taken.Receipt != "UKT1AB2CD3" || lipa.ErrorKind(err) != lipa.Conflict {
			t.Errorf("UpdatePayment with another payment's receipt: got %v, want a Conflict wrapping ReceiptTakenError{UKT1AB2CD3, pay_1}", err)
		}
	})
}
