package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
	_ "modernc.org/sqlite"
)

// TestRejectedCallbacksStoredBounded: requests refused on the callback paths
// (no token, any address) are stored only in part (2 KiB each) and at most
// 60 in a burst per source, so nobody can fill Lipa's disk through them.
func TestRejectedCallbacksStoredBounded(t *testing.T) {
	url := sqlstoretest.URL(t, sqlstore.SQLite)
	db := sqlstoretest.OpenURL(t, url)
	gw := gateway.New(db, nil, gateway.Config{ShortCode: "174379", Logger: slog.New(slog.DiscardHandler)})
	allowed, _ := api.ParsePrefixes("196.201.214.200")
	srv := api.New(gw, api.Config{Logger: slog.New(slog.DiscardHandler), Callbacks: api.CallbackGuard{Token: "abcdefghijklmnopqrstuvwxyz", Allowed: allowed}})
	body := bytes.Repeat([]byte("A"), 1<<20-1)
	for range 20 {
		r := httptest.NewRequest("POST", "/api/mpesa/stk-callback/", bytes.NewReader(body))
		r.RemoteAddr = "203.0.113.9:5555"
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 404 {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	}
	raw, _ := sql.Open("sqlite", "file:"+strings.TrimPrefix(url, "sqlite:"))
	defer raw.Close()
	var n, size int64
	raw.QueryRowContext(context.Background(), "SELECT count(*), coalesce(sum(length(body)),0) FROM inbound_messages WHERE outcome='rejected'").Scan(&n, &size)
	t.Logf("20 unauthenticated 404s stored %d rows, %d bytes", n, size)
	if size > 1<<20 {
		t.Errorf("unauthenticated, tokenless requests answered 404 stored %d MiB of attacker data", size>>20)
	}
}
