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
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/metrics"
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
	// (Lipa's POST /api/stk/callback/, or the older
	// /api/mpesa/stk-callback/). Required.
	CallbackURL string
	// PromptLifetime is how long a PENDING STK push keeps its customer's
	// phone busy: another push to that phone within it is refused with
	// subscriber_busy without calling Daraja, which would refuse it anyway
	// (docs/daraja.md "M-Pesa Express"). Default 60s.
	PromptLifetime time.Duration
	// ReconcileAfter is how long a PENDING STK payment waits for its
	// callback before the reconciler asks Daraja (STK push query). Default 60s.
	ReconcileAfter time.Duration
	// PendingExpiry is how long a payment may stay PENDING at all; then it
	// becomes FAILED with failure_reason "expired". Default 24h.
	PendingExpiry time.Duration
	// IdempotencyWait bounds how long a request repeating an Idempotency-Key
	// waits for the first request's answer. Default 45s (more than a Daraja
	// call may take).
	IdempotencyWait time.Duration
	// ConfirmByQuery makes every STK callback wait for Daraja's STK push
	// query before it changes a payment (LIPA_CONFIRM_BY_QUERY): the callback
	// is stored as "unconfirmed", the query runs in the background, and the
	// payment is settled from the query's verdict; the reconciler retries.
	ConfirmByQuery bool
	// CallbackPhoneOptional accepts a success callback that carries no
	// PhoneNumber, or one masked so far that nothing of it can be compared
	// (LIPA_CALLBACK_PHONE_OPTIONAL). Default false: such a callback is
	// stored and flagged as a conflict, never applied. A PhoneNumber whose
	// visible digits differ from the payment's is flagged either way.
	CallbackPhoneOptional bool
	// PhonePushesPerHour caps STK pushes to one phone number per hour, per
	// process, against prompt spam (LIPA_PHONE_PUSHES_PER_HOUR). Default 10.
	PhonePushesPerHour int
	// C2BAccountPattern, when set, is what a C2B payment's account number
	// (BillRefNumber) must match in full for validation to accept it
	// (LIPA_C2B_ACCOUNT_PATTERN); others are rejected with C2B00012.
	C2BAccountPattern *regexp.Regexp
	// C2BMinAmount and C2BMaxAmount, when not zero, bound the amounts C2B
	// validation accepts (LIPA_C2B_MIN_AMOUNT, LIPA_C2B_MAX_AMOUNT, in
	// shillings); others are rejected with C2B00013.
	C2BMinAmount, C2BMaxAmount lipa.Amount
	// WebhookRetrySpan is how long a webhook delivery is retried before it
	// fails and the app's webhook is paused (LIPA_WEBHOOK_RETRY_SPAN).
	// Default 24h.
	WebhookRetrySpan time.Duration
	// WebhookBackoff is the wait before a failed webhook's first retry; each
	// later retry waits twice as long, at most an hour, plus up to 20%
	// jitter (LIPA_WEBHOOK_BACKOFF). Default 5s.
	WebhookBackoff time.Duration
	// WebhookClient sends webhooks (default: 10 s timeout, no redirects,
	// keep-alive connections: up to WebhookConcurrency idle per receiver).
	WebhookClient *http.Client
	// WebhookConcurrency is how many webhook attempts one process makes at
	// once (LIPA_WEBHOOK_CONCURRENCY); one app holds at most a quarter of
	// them (at least 2), so a slow receiver never holds up the others.
	// Default 64.
	WebhookConcurrency int
	// Metrics counts what the gateway does (payments settled and claimed,
	// callback lag, reconciliation outcomes, webhook attempts and lag);
	// nil counts nothing.
	Metrics *metrics.Metrics
	// KeyRotationGrace is how long an app's old API key keeps working after
	// RotateKey (LIPA_KEY_ROTATION_GRACE). Zero means not at all.
	KeyRotationGrace time.Duration
	// ReversalResultURL, ReversalTimeoutURL, StatusResultURL and
	// StatusTimeoutURL are Lipa's public URLs, token included, where Daraja
	// sends the Results and queue timeout notices of reversals and
	// Transaction Status queries; PullCallbackURL is the CallBackURL of the
	// Pull Transactions registration (docs/daraja.md "Lipa's result and
	// timeout URLs"). Required for refunds, Transaction Status and Pull.
	ReversalResultURL, ReversalTimeoutURL string
	StatusResultURL, StatusTimeoutURL     string
	PullCallbackURL                       string
	// RefundResultTimeout is how long a sent reversal waits for its Result
	// before Lipa asks Transaction Status what became of it
	// (LIPA_REFUND_RESULT_TIMEOUT). Default 5m.
	RefundResultTimeout time.Duration
	// RefundApproval says which refunds wait for an operator's approval
	// (LIPA_REFUND_APPROVAL). The zero value: none.
	RefundApproval RefundApproval
	// PullInterval is how often the Pull Transactions backfill runs
	// (LIPA_PULL_INTERVAL); each pass looks back further than that. Zero
	// turns the background backfill off. Default (DefaultPullInterval) is
	// set by the caller.
	PullInterval time.Duration
	// DarajaLookupsPerHour caps each app's verifications of unknown
	// receipts with Daraja's Transaction Status (lookup=daraja), per
	// process (LIPA_DARAJA_LOOKUPS_PER_HOUR). Zero turns them off. Default
	// set by the caller (DefaultDarajaLookupsPerHour).
	DarajaLookupsPerHour int
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

	// configErr holds the last Daraja answer that blamed Lipa's own
	// configuration (credentials, shortcode, passkey, callback URL), until a
	// Daraja call succeeds again; /readyz reports it.
	configErr atomic.Pointer[string]

	touched sync.Map   // lipa.AppID → time.Time of the last recorded key use
	keys    keyCache   // API keys resolved to apps, valid for one auth epoch
	epochs  epochReads // reads of the auth epoch, shared by concurrent authentications

	pushes hourlyBudgets // app|MSISDN → the app's STK push budget for the phone

	metrics  *metrics.Metrics
	webhooks *http.Client

	// Background work (see Run): goroutines started by requests and
	// delivery passes, and the context they run under while Run runs.
	bg     sync.WaitGroup
	runMu  sync.Mutex
	runCtx context.Context

	deliveries deliveries // webhook slots and the attempts waiting to be recorded
	wake       chan struct{}

	lookups hourlyBudgets // app → its Daraja lookups of unknown receipts
}

// Wait blocks until background work started by the gateway (callback
// confirmations, webhook attempts and their records) has finished. Run
// waits for it too; Wait is for callers that do not use Run (tests, the
// CLI).
func (g *Gateway) Wait() { g.bg.Wait() }

// allowPush spends one of the app's STK push budget for the phone, and
// reports whether there was one. The budget is per app (one app cannot use
// up a customer's budget with another) and per process (hourlyBudgets).
func (g *Gateway) allowPush(app lipa.AppID, phone string) bool {
	_, ok := g.pushes.take(string(app)+"|"+phone, g.cfg.PhonePushesPerHour, g.now())
	return ok
}

// DefaultConfig returns the defaults New gives Config's fields when they are
// left zero: TransactionType "CustomerPayBillOnline", PromptLifetime 60s,
// ReconcileAfter 60s, PendingExpiry 24h, IdempotencyWait 45s
// (IdempotencyWaitFor(daraja.DefaultTimeout)), PhonePushesPerHour 10,
// WebhookRetrySpan 24h and WebhookBackoff 5s. Every other field's zero value
// is its default (PartyB then follows ShortCode). These are the one
// declaration of these defaults: Lipa's command-line configuration takes the
// defaults of the same settings from here.
func DefaultConfig() Config {
	return Config{
		TransactionType:    daraja.PayBillOnline,
		PromptLifetime:     60 * time.Second,
		ReconcileAfter:     60 * time.Second,
		PendingExpiry:      24 * time.Hour,
		IdempotencyWait:    IdempotencyWaitFor(daraja.DefaultTimeout),
		PhonePushesPerHour: 10,
		WebhookRetrySpan:   24 * time.Hour,
		WebhookBackoff:     5 * time.Second,
		WebhookConcurrency: DefaultWebhookConcurrency,
	}
}

// IdempotencyWaitFor returns the IdempotencyWait that fits a Daraja client
// whose calls time out after darajaTimeout: that timeout plus 15 s, so a
// request repeating an Idempotency-Key outwaits the first request's push.
func IdempotencyWaitFor(darajaTimeout time.Duration) time.Duration {
	return darajaTimeout + 15*time.Second
}

// New returns a Gateway over the store db that talks to Daraja through
// client. Fields of cfg left zero take DefaultConfig's values.
func New(db *sqlstore.DB, client *daraja.Client, cfg Config) *Gateway {
	d := DefaultConfig()
	if cfg.TransactionType == "" {
		cfg.TransactionType = d.TransactionType
	}
	if cfg.PartyB == "" {
		cfg.PartyB = cfg.ShortCode
	}
	if cfg.PromptLifetime <= 0 {
		cfg.PromptLifetime = d.PromptLifetime
	}
	if cfg.ReconcileAfter <= 0 {
		cfg.ReconcileAfter = d.ReconcileAfter
	}
	if cfg.PendingExpiry <= 0 {
		cfg.PendingExpiry = d.PendingExpiry
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = d.WebhookBackoff
	}
	if cfg.WebhookRetrySpan <= 0 {
		cfg.WebhookRetrySpan = d.WebhookRetrySpan
	}
	if cfg.PhonePushesPerHour <= 0 {
		cfg.PhonePushesPerHour = d.PhonePushesPerHour
	}
	if cfg.IdempotencyWait <= 0 {
		cfg.IdempotencyWait = d.IdempotencyWait
	}
	if cfg.WebhookConcurrency <= 0 {
		cfg.WebhookConcurrency = d.WebhookConcurrency
	}
	g := &Gateway{db: db, daraja: client, cfg: cfg, log: cfg.Logger, now: cfg.Now, metrics: cfg.Metrics,
		webhooks: cfg.WebhookClient, wake: make(chan struct{}, 1)}
	if g.webhooks == nil {
		g.webhooks = newWebhookClient(cfg.WebhookConcurrency)
	}
	if g.cfg.RefundResultTimeout <= 0 {
		g.cfg.RefundResultTimeout = DefaultRefundResultTimeout
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// Ready returns nil while the database takes writes (sqlstore's
// CheckWritable: a small write at most every 2 s) and Daraja has not
// refused Lipa's configuration since its last successful call: Unavailable
// "database_unavailable" or "daraja_misconfigured" otherwise.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := g.db.CheckWritable(ctx); err != nil {
		return err
	}
	if msg := g.configErr.Load(); msg != nil {
		// Unauthenticated callers see only that; the log has Daraja's words.
		return lipa.Errorf(lipa.Unavailable, "daraja_misconfigured", "Daraja refuses Lipa's configuration; see the log").Wrap(errors.New(*msg))
	}
	return nil
}

// noteDaraja records whether a Daraja call showed Lipa's configuration to
// be wrong (msg not empty) or working (msg empty).
func (g *Gateway) noteDaraja(msg string) {
	if msg == "" {
		g.configErr.Store(nil)
		return
	}
	g.configErr.Store(&msg)
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
