// Package gateway holds Lipa's use cases: initiating an STK push, applying
// Safaricom's callbacks and C2B notifications, verifying, claiming and
// listing payments, and managing apps. It owns the transactions: each use
// case is one or two short transactions on the store, and nothing here holds
// a transaction open while Daraja is called.
//
// Tenant scoping lives here: every method an app calls takes the app, and an
// app sees only its own payments plus unclaimed C2B intake payments.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// Config is what the gateway needs to know about the merchant account.
type Config struct {
	// ShortCode is the BusinessShortCode STK pushes are sent for (paybill, or
	// for a till the head-office/store number). Required.
	ShortCode string
	// Passkey is the Lipa na M-Pesa Online passkey of ShortCode. Required.
	Passkey lipa.Secret
	// TransactionType is "CustomerPayBillOnline" (default) or
	// "CustomerBuyGoodsOnline" (a till).
	TransactionType string
	// PartyB is the till number for CustomerBuyGoodsOnline; for a paybill it
	// defaults to ShortCode.
	PartyB string
	// CallbackURL is the absolute URL Safaricom POSTs STK results to
	// (Lipa's POST /api/mpesa/stk-callback/). Required.
	CallbackURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per initiation, Daraja answer, callback and
	// claim (default slog.Default()).
	Logger *slog.Logger
}

// Gateway runs Lipa's use cases. It is safe for concurrent use.
type Gateway struct {
	db     *sqlstore.DB
	daraja *daraja.Client
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Gateway over the store db that talks to Daraja through
// client.
func New(db *sqlstore.DB, client *daraja.Client, cfg Config) *Gateway {
	if cfg.TransactionType == "" {
		cfg.TransactionType = "CustomerPayBillOnline"
	}
	if cfg.PartyB == "" {
		cfg.PartyB = cfg.ShortCode
	}
	g := &Gateway{db: db, daraja: client, cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// Ready returns nil while the database answers.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := g.db.Ping(ctx); err != nil {
		return lipa.Errorf(lipa.Unavailable, "database_unavailable", "the database does not answer").Wrap(err)
	}
	return nil
}

// clock returns the current time in UTC at microsecond precision (what both
// databases keep), so a value read back equals the value written.
func (g *Gateway) clock() time.Time { return g.now().UTC().Truncate(time.Microsecond) }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix followed by 26 random lower-case base32 characters
// (128 bits).
func newID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b))
}
