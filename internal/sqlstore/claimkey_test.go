package sqlstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestClaimPaymentByKeyExactlyOnce: of many concurrent claims of one
// payment, by ID or by receipt, exactly one gets the payment back, as a
// read shows it after the claim (but for the app's name); the others, and
// claims the conditional UPDATE refuses, get nil.
func TestClaimPaymentByKeyExactlyOnce(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		a, b := seed(t, db)
		ctx := context.Background()
		insert(t, db, lipa.Payment{ID: "pay_stk", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusSuccess, Amount: lipa.Shillings(5), MpesaReceiptNumber: "R1"})
		insert(t, db, lipa.Payment{ID: "pay_c2b", Type: lipa.TypeC2B, Status: lipa.StatusSuccess, Amount: 10050, MpesaReceiptNumber: "R2"})
		insert(t, db, lipa.Payment{ID: "pay_pending", AppID: a, Type: lipa.TypeSTK, Status: lipa.StatusPending, Amount: lipa.Shillings(5)})
		cases := []struct {
			name   string
			app    lipa.AppID
			key    sqlstore.ClaimKey
			amount lipa.Amount
			want   lipa.PaymentID // "" : nobody wins
		}{
			{"pending payment", a, sqlstore.ClaimKey{ID: "pay_pending"}, 0, ""},
			{"other app's STK payment by ID", b, sqlstore.ClaimKey{ID: "pay_stk"}, 0, ""},
			{"other app's STK payment by receipt", b, sqlstore.ClaimKey{Receipt: "R1"}, 0, ""},
			{"own STK payment by receipt", a, sqlstore.ClaimKey{Receipt: "R1"}, 0, "pay_stk"},
			{"own STK payment again, by ID", a, sqlstore.ClaimKey{ID: "pay_stk"}, 0, ""},
			{"intake payment, wrong amount", b, sqlstore.ClaimKey{Receipt: "R2"}, lipa.Shillings(100), ""},
			{"intake payment by ID, exact amount", b, sqlstore.ClaimKey{ID: "pay_c2b"}, 10050, "pay_c2b"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var mu sync.Mutex
				var won []*lipa.Payment
				var wg sync.WaitGroup
				for range 30 {
					wg.Go(func() {
						err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
							p, err := tx.ClaimPaymentByKey(ctx, c.app, c.key, c.amount, t0)
							if p != nil {
								mu.Lock()
								won = append(won, p)
								mu.Unlock()
							}
							return err
						})
						if err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if c.want == "" {
					if len(won) != 0 {
						t.Fatalf("got %d winning claims (%s), want none", len(won), won[0].ID)
					}
					return
				}
				if len(won) != 1 {
					t.Fatalf("got %d winning claims, want 1", len(won))
				}
				var read *lipa.Payment
				err := db.Read(ctx, func(tx *sqlstore.Tx) (err error) { read, err = tx.PaymentByID(ctx, c.want); return err })
				if err != nil {
					t.Fatal(err)
				}
				read.AppName = "" // the claim's answer leaves it to the caller
				if diff := cmp.Diff(read, won[0]); diff != "" {
					t.Errorf("claimed payment (-as read, +as returned):\n%s", diff)
				}
				if !read.Claimed || read.ClaimedBy != c.app || read.AppID != c.app || !read.ClaimedAt.Equal(t0) {
					t.Errorf("got claimed %v by %q, app %q, at %s; want claimed by and moved to %s at %s", read.Claimed, read.ClaimedBy, read.AppID, read.ClaimedAt, c.app, t0)
				}
			})
		}
	})
}
