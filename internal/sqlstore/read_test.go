package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestReadBesideWriter: a Read runs while a write transaction is open (it
// neither waits for the writer nor sees what the writer has not committed)
// and sees a write as soon as it has committed.
func TestReadBesideWriter(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, _ := seed(t, db)
		ctx := context.Background()
		insert(t, db, lipa.Payment{ID: "pay_old", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending, PhoneNumber: "254708374149", Amount: lipa.Shillings(10)})

		inside, release := make(chan struct{}), make(chan struct{})
		wrote := make(chan error, 1)
		go func() {
			wrote <- db.InTx(ctx, func(tx *sqlstore.Tx) error {
				p := &lipa.Payment{ID: "pay_new", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending, PhoneNumber: "254708374149",
					Amount: lipa.Shillings(20), Currency: "KES", CreatedAt: t0, UpdatedAt: t0}
				if err := tx.InsertPayment(ctx, p); err != nil {
					return err
				}
				close(inside)
				<-release
				return nil
			})
		}()
		<-inside
		read := make(chan error, 1)
		go func() {
			read <- db.Read(ctx, func(tx *sqlstore.Tx) error {
				if _, err := tx.PaymentForApp(ctx, a, "pay_old"); err != nil {
					return err
				}
				if _, err := tx.PaymentByID(ctx, "pay_new"); lipa.ErrorKind(err) != lipa.NotFound {
					t.Errorf("Read of the uncommitted payment: got %v, want NotFound", err)
				}
				return nil
			})
		}()
		select {
		case err := <-read:
			if err != nil {
				t.Fatalf("Read beside the writer: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second): // a failure deadline, not a measurement
			close(release)
			t.Fatal("Read waited for the open write transaction; want it to read beside it")
		}
		close(release)
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		err := db.Read(ctx, func(tx *sqlstore.Tx) error {
			p, err := tx.PaymentForApp(ctx, a, "pay_new")
			if err == nil && p.Amount != lipa.Shillings(20) {
				t.Errorf("committed payment read back: got amount %s, want 20", p.Amount)
			}
			return err
		})
		if err != nil {
			t.Fatalf("Read after the commit: got %v, want the new payment", err)
		}
	})
}

// TestReadRefusesWrites: SQLite's read connections refuse writes, so a
// write put in a Read by mistake fails instead of bypassing the writer.
// (On PostgreSQL a Read's statements run on the pool; that Read only reads
// is its caller's contract.)
func TestReadRefusesWrites(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	a, _ := seed(t, db)
	ctx := context.Background()
	err := db.Read(ctx, func(tx *sqlstore.Tx) error {
		return tx.InsertPayment(ctx, &lipa.Payment{ID: "pay_x", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending,
			PhoneNumber: "254708374149", Amount: lipa.Shillings(10), Currency: "KES", CreatedAt: t0, UpdatedAt: t0})
	})
	if err == nil {
		t.Fatal("insert in a Read: got nil, want an error")
	}
	if err := db.Read(ctx, func(tx *sqlstore.Tx) error { _, err := tx.PaymentByID(ctx, "pay_x"); return err }); lipa.ErrorKind(err) != lipa.NotFound {
		t.Fatalf("payment inserted in a Read: got %v, want NotFound", err)
	}
}

// TestStatementsPreparedOnce: on SQLite a statement is prepared once its
// first transaction has ended and is then reused, by writers and readers,
// with the same results.
func TestStatementsPreparedOnce(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	a, _ := seed(t, db)
	ctx := context.Background()
	insert(t, db, lipa.Payment{ID: "pay_1", AppID: a, Type: lipa.TypeC2B, Status: lipa.StatusSuccess, PhoneNumber: "254708374149",
		Amount: lipa.Shillings(10), MpesaReceiptNumber: "UKT1AB2CD3"})
	for _, run := range []struct {
		name string
		do   func(ctx context.Context, fn func(*sqlstore.Tx) error) error
	}{{"InTx", db.InTx}, {"Read", db.Read}} {
		var got []lipa.PaymentID
		for range 3 {
			err := run.do(ctx, func(tx *sqlstore.Tx) error {
				p, err := tx.BestPayment(ctx, sqlstore.Lookup{App: a, Receipt: "UKT1AB2CD3"}, sqlstore.Rank{})
				if err == nil {
					got = append(got, p.ID)
				}
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", run.name, err)
			}
		}
		if len(got) != 3 || got[0] != "pay_1" || got[1] != "pay_1" || got[2] != "pay_1" {
			t.Errorf("%s, three times: got %v, want pay_1 each time", run.name, got)
		}
	}
	write, read := db.PreparedStatements()
	if write == 0 || read == 0 {
		t.Fatalf("prepared statements: got %d on the writer and %d on the readers, want some on each", write, read)
	}
}
