package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

var t0 = time.Date(2026, 11, 29, 7, 15, 0, 123456000, time.UTC)

func seed(t *testing.T, db *sqlstore.DB) (lipa.AppID, lipa.AppID) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
		for _, a := range []lipa.App{{ID: "app_a", Name: "shop"}, {ID: "app_b", Name: "school"}} {
			a.CreatedAt, a.UpdatedAt = t0, t0
			if err := tx.CreateApp(ctx, &a, "hash-"+string(a.ID), "lipa_xx"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return "app_a", "app_b"
}

func insert(t *testing.T, db *sqlstore.DB, p lipa.Payment) {
	t.Helper()
	if p.CreatedAt.IsZero() {
		p.CreatedAt, p.UpdatedAt = t0, t0
	}
	if p.Currency == "" {
		p.Currency = "KES"
	}
	if err := db.InTx(context.Background(), func(tx *sqlstore.Tx) error { return tx.InsertPayment(context.Background(), &p) }); err != nil {
		t.Fatalf("insert %s: %v", p.ID, err)
	}
}

func TestPaymentRoundTrip(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, b := seed(t, db)
		ctx := context.Background()
		want := lipa.Payment{ID: "pay_1", AppID: a, AppName: "shop", Type: lipa.TypeSTK, Status: lipa.StatusSuccess,
			PhoneNumber: "254708374149", Amount: lipa.Shillings(10), Currency: "KES", Reference: "ORDER1",
			AccountReference: "ORDER1", Description: "Payment", ShortCode: "174379", TransactionType: "CustomerPayBillOnline",
			MpesaReceiptNumber: "UKT1AB2CD3", CheckoutRequestID: "ws_CO_1", MerchantRequestID: "m-1",
			ResultCode: "0", ResultDesc: "ok", TransactionDate: t0.Truncate(time.Second), CreatedAt: t0, UpdatedAt: t0}
		insert(t, db, want)
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			got, err := tx.PaymentForApp(ctx, a, "pay_1")
			if err != nil {
				return err
			}
			if fmt.Sprint(*got) != fmt.Sprint(want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			if _, err := tx.PaymentForApp(ctx, b, "pay_1"); lipa.ErrorKind(err) != lipa.NotFound {
				t.Errorf("other app: got %v, want NotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// a second payment with the same receipt is refused
		dup := want
		dup.ID, dup.CheckoutRequestID = "pay_2", "ws_CO_2"
		err = db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertPayment(ctx, &dup) })
		if lipa.ErrorCode(err) != "duplicate_payment" {
			t.Errorf("duplicate receipt: got %v, want duplicate_payment", err)
		}
	})
}

func TestClaimExactlyOnce(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, b := seed(t, db)
		ctx := context.Background()
		insert(t, db, lipa.Payment{ID: "pay_stk", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusSuccess, Amount: lipa.Shillings(5), MpesaReceiptNumber: "R1"})
		insert(t, db, lipa.Payment{ID: "pay_c2b", Type: lipa.TypeC2B, Status: lipa.StatusSuccess, Amount: 10050, MpesaReceiptNumber: "R2"})
		cases := []struct {
			name   string
			app    lipa.AppID
			id     lipa.PaymentID
			amount lipa.Amount
			want   int64
		}{
			{"own STK payment", a, "pay_stk", 0, 1},
			{"other app's STK payment", b, "pay_stk", 0, 0},
			{"intake payment, wrong amount", b, "pay_c2b", lipa.Shillings(100), 0},
			{"intake payment, exact amount", b, "pay_c2b", 10050, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var wins atomic.Int64
				var wg sync.WaitGroup
				for range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
							ok, err := tx.ClaimPayment(ctx, c.app, c.id, c.amount, t0)
							if ok {
								wins.Add(1)
							}
							return err
						})
						if err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				if got := wins.Load(); got != c.want {
					t.Errorf("got %d winning claims, want %d", got, c.want)
				}
			})
		}
		// the claimed intake payment now belongs to app b
		err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
			p, err := tx.PaymentByReceipt(ctx, "R2")
			if err != nil {
				return err
			}
			if p.AppID != b || !p.Claimed || p.ClaimedBy != b {
				t.Errorf("got app %q claimed %v by %q, want app_b claimed by app_b", p.AppID, p.Claimed, p.ClaimedBy)
			}
			if _, err := tx.PaymentForApp(ctx, a, "pay_c2b"); lipa.ErrorKind(err) != lipa.NotFound {
				t.Errorf("claimed intake payment still visible to app a: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestListNewestFirstWithCursor(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, _ := seed(t, db)
		ctx := context.Background()
		for i := range 5 {
			at := t0.Add(time.Duration(i) * time.Second)
			insert(t, db, lipa.Payment{ID: lipa.PaymentID(fmt.Sprintf("pay_%d", i)), AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending, Amount: 100, CreatedAt: at, UpdatedAt: at})
		}
		var got []lipa.PaymentID
		var after *sqlstore.Cursor
		for {
			var page []lipa.Payment
			err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
				page, err = tx.Payments(ctx, sqlstore.Lookup{App: a}, after, 2)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				got = append(got, p.ID)
			}
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = &sqlstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if want := "[pay_4 pay_3 pay_2 pay_1 pay_0]"; fmt.Sprint(got) != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestMigrateTwiceIsHarmless(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- db.Migrate(context.Background()) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("migrate again: %v", err)
			}
		}
	})
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	for _, u := range []string{"mysql://x", "lipa.db", "sqlite:"} {
		if _, err := sqlstore.Open(context.Background(), u, sqlstore.Options{}); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Open(%q): got %v, want an error", u, err)
		}
	}
}
