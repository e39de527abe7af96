package sqlstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestInboundStoresAnyBytes: an inbound message is stored whatever it
// carries, the same on both databases: the body byte for byte (NUL bytes,
// invalid UTF-8, empty), and text fields that PostgreSQL could not hold as
// text (a NUL character, invalid UTF-8) in a visible, escaped form. A lock
// on such a key works too.
func TestInboundStoresAnyBytes(t *testing.T) {
	tests := []struct {
		name       string
		body       []byte
		id, wantID string // CheckoutRequestID and TransID as given and as stored
		note       string // the outcome's note as given
		wantNote   string
	}{
		{"plain", []byte(`{"TransID":"SAB1CD2EF6"}`), "ws_CO_1", "ws_CO_1", "ok", "ok"},
		{"NUL in the identifier", []byte("{\"TransID\":\"PGNUL\\u000002\"}"), "PGNUL\x0002", `PGNUL\x0002`, "a\x00b", `a\x00b`},
		{"raw NUL and invalid UTF-8 in the body", []byte("\x00\xff\xfe{\"a\":\"\x00\"}"), "\xffX", "\uFFFDX", "\xff", "\uFFFD"},
		{"empty body", []byte{}, "", "", "", ""},
		{"nil body", nil, "", "", "", ""},
	}
	sqlstoretest.Run(t, func(t *testing.T, url string) {
		db := sqlstoretest.OpenURL(t, url)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				m := &sqlstore.Inbound{Kind: sqlstore.InboundC2BConfirmation, Path: "/api/c2b/confirmation/\x00", SourceAddr: "127.0.0.1",
					ReceivedAt: t0, Body: tt.body, CheckoutRequestID: tt.id, TransID: tt.id, Outcome: sqlstore.OutcomeReceived, Note: tt.note}
				err := db.InTx(ctx, func(tx *sqlstore.Tx) error {
					if err := tx.Lock(ctx, "receipt:"+tt.id); err != nil {
						return err
					}
					if err := tx.InsertInbound(ctx, m); err != nil {
						return err
					}
					return tx.SetInboundOutcome(ctx, m.ID, sqlstore.OutcomeMalformed, "", tt.note)
				})
				if err != nil {
					t.Fatalf("store: got error %v, want nil", err)
				}
				var got *sqlstore.Inbound
				if err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { got, err = tx.InboundByID(ctx, m.ID); return err }); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Body, tt.body) {
					t.Errorf("body: got %q, want %q", got.Body, tt.body)
				}
				if got.CheckoutRequestID != tt.wantID || got.TransID != tt.wantID {
					t.Errorf("IDs: got %q and %q, want %q", got.CheckoutRequestID, got.TransID, tt.wantID)
				}
				if got.Note != tt.wantNote || got.Path != `/api/c2b/confirmation/\x00` {
					t.Errorf("note and path: got %q and %q, want %q and %q", got.Note, got.Path, tt.wantNote, `/api/c2b/confirmation/\x00`)
				}
			})
		}
	})
}
