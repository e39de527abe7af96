package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// holdWriter runs a write transaction on db that waits until release is
// closed, and returns once it is running, so that the transactions started
// next queue up behind it (and are then committed as one group).
func holdWriter(t *testing.T, db *sqlstore.DB) (release func(), done <-chan error) {
	t.Helper()
	running, free := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- db.InTx(context.Background(), func(tx *sqlstore.Tx) error {
			close(running)
			<-free
			return nil
		})
	}()
	<-running
	return func() { close(free) }, errc
}

// waitQueued waits until n write transactions wait for the writer.
func waitQueued(t *testing.T, db *sqlstore.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a failure deadline, not a measurement
	for {
		q, _ := db.QueuedWrites()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d write transactions waiting, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitKeepsEachTransactionApart: SQLite write transactions that
// wait together are committed in one group, and still each is all or
// nothing on its own: one that fails or panics leaves no trace and its
// error (or panic) reaches its own caller only; the others commit.
func TestGroupCommitKeepsEachTransactionApart(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	a, _ := seed(t, db)
	ctx := context.Background()
	release, held := holdWriter(t, db)
	_, groupsBefore := db.QueuedWrites()

	const n = 30
	refused := errors.New("refused by the caller")
	type outcome struct {
		err      error
		panicked any
	}
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() { outcomes[i].panicked = recover() }()
			outcomes[i].err = db.InTx(ctx, func(tx *sqlstore.Tx) error {
				p := &lipa.Payment{ID: lipa.PaymentID(fmt.Sprintf("pay_g%02d", i)), AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending,
					PhoneNumber: "254708374149", Amount: lipa.Shillings(int64(i + 1)), Currency: "KES", CreatedAt: t0, UpdatedAt: t0}
				if err := tx.InsertPayment(ctx, p); err != nil {
					return err
				}
				switch i % 5 {
				case 1:
					return refused
				case 2:
					panic(fmt.Sprintf("panic in transaction %d", i))
				case 3: // a second insert of the same payment: a statement that fails
					return tx.InsertPayment(ctx, p)
				}
				return nil
			})
		})
	}
	waitQueued(t, db, n)
	release()
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if _, groups := db.QueuedWrites(); groups-groupsBefore > 3 {
		t.Errorf("%d transactions waiting together took %d commits, want them grouped", n, groups-groupsBefore)
	}
	for i, o := range outcomes {
		var want string
		switch i % 5 {
		case 1:
			if !errors.Is(o.err, refused) || o.panicked != nil {
				want = "its own error"
			}
		case 2:
			if o.panicked != fmt.Sprintf("panic in transaction %d", i) {
				want = "its own panic"
			}
		case 3:
			if lipa.ErrorCode(o.err) != "duplicate_payment" || o.panicked != nil {
				want = "duplicate_payment"
			}
		default:
			if o.err != nil || o.panicked != nil {
				want = "success"
			}
		}
		if want != "" {
			t.Errorf("transaction %d: got error %v, panic %v; want %s", i, o.err, o.panicked, want)
		}
		var err error
		db.Read(ctx, func(tx *sqlstore.Tx) error {
			_, err = tx.PaymentByID(ctx, lipa.PaymentID(fmt.Sprintf("pay_g%02d", i)))
			return nil
		})
		if stored := err == nil; stored != (i%5 == 0 || i%5 == 4) {
			t.Errorf("transaction %d: payment stored %v (%v), want %v", i, stored, err, !stored)
		}
	}
}

// TestGroupCommitWaitingCancelled: a write transaction whose context ends
// while it waits for the writer never runs, and its caller hears so.
func TestGroupCommitWaitingCancelled(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	release, held := holdWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- db.InTx(ctx, func(tx *sqlstore.Tx) error { ran <- struct{}{}; return nil })
	}()
	waitQueued(t, db, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("InTx cancelled while waiting: got %v, want context.Canceled", err)
	}
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// The writer goes on with the next transaction.
	if err := db.InTx(context.Background(), func(tx *sqlstore.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Error("the cancelled transaction ran")
	default:
	}
}
