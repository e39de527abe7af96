package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// The Daraja environments Lipa can talk to.
const (
	envSimulator  = "simulator"
	envSandbox    = "sandbox"
	envProduction = "production"
)

// Config is Lipa's whole configuration, read from environment variables and
// from a .env file in the working directory (real environment variables win
// over the file). Each field names its variable and default (declared once,
// in defaultConfig); Validate names the variable that is wrong.
type Config struct {
	Environment      string        // MPESA_ENVIRONMENT: simulator, sandbox or production ("live" means production); default simulator without MPESA_CONSUMER_KEY, else sandbox
	ConsumerKey      string        // MPESA_CONSUMER_KEY: Daraja app key; required outside simulator mode
	ConsumerSecret   lipa.Secret   // MPESA_CONSUMER_SECRET: Daraja app secret; required outside simulator mode
	ShortCode        string        // MPESA_SHORTCODE: BusinessShortCode, 5-7 digits; simulator default 174379
	Passkey          lipa.Secret   // MPESA_PASSKEY: Lipa na M-Pesa Online passkey; simulator default the public sandbox passkey
	CallbackURL      string        // MPESA_CALLBACK_URL: public URL of POST /api/stk/callback/ (or the older /api/mpesa/stk-callback/, which Safaricom may refuse); simulator default Lipa's own listen address
	TransactionType  string        // MPESA_TRANSACTION_TYPE: CustomerPayBillOnline (default) or CustomerBuyGoodsOnline
	PartyB           string        // MPESA_PARTY_B: the till number, required for CustomerBuyGoodsOnline
	BaseURL          string        // MPESA_BASE_URL: overrides Daraja's base URL (a proxy, or a simulator elsewhere)
	C2BResponseType  string        // MPESA_C2B_RESPONSE_TYPE: Completed (default) or Cancelled, for `lipa c2b register`
	C2BVersion       string        // MPESA_C2B_VERSION: v2 (default) or v1, the register URL API version
	DarajaTimeout    time.Duration // MPESA_TIMEOUT: bound on each Daraja call; default 30s
	DatabaseURL      string        // DATABASE_URL: sqlite:PATH or postgres://…; default sqlite:lipa.db
	DatabaseMaxConn  int           // DATABASE_MAX_CONNS: PostgreSQL pool size; default 10
	ListenAddr       string        // LISTEN_ADDR: host:port to serve on; default 127.0.0.1:8000
	LogFile          string        // LOG_FILE: JSON log lines are appended here, or written to stdout only when "-"; default payments.log
	LogMaxSizeMB     int           // LOG_MAX_SIZE_MB: LOG_FILE is rotated before it grows past this many megabytes; default 100
	LogMaxBackups    int           // LOG_MAX_BACKUPS: rotated log files kept (older ones are deleted); 0 keeps all; default 10
	LogMaxAgeDays    int           // LOG_MAX_AGE_DAYS: rotated log files older than this many days are deleted; 0 keeps them by count only; default 0
	LogCompress      bool          // LOG_COMPRESS: gzip rotated log files; default true
	SimulatorDelay   time.Duration // LIPA_SIMULATOR_CALLBACK_DELAY: simulator STK callback delay; default 2s
	ReconcileAfter   time.Duration // LIPA_RECONCILE_AFTER: a PENDING push without callback is queried after this; default 60s
	PendingExpiry    time.Duration // LIPA_PENDING_EXPIRY: a payment PENDING this long becomes FAILED "expired"; default 24h
	PromptLifetime   time.Duration // LIPA_PROMPT_LIFETIME: a PENDING push this young keeps its phone busy; default 60s
	AdminKey         lipa.Secret   // LIPA_ADMIN_KEY: enables the operators' API (/api/admin/) for this X-ADMIN-KEY; default off
	KeyRotationGrace time.Duration // LIPA_KEY_ROTATION_GRACE: an old API key keeps working this long after rotation; default 24h

	CallbackToken      lipa.Secret    // LIPA_CALLBACK_TOKEN: secret last path segment of the callback URLs; required outside simulator mode unless tokenless callbacks are allowed (simulator: generated and kept in the database)
	AllowTokenless     bool           // MPESA_ALLOW_TOKENLESS_CALLBACKS: also accept callbacks on the bare paths; default false
	CallbackAllowedIPs []netip.Prefix // LIPA_CALLBACK_ALLOWED_IPS: comma-separated IPs/CIDRs callbacks may come from, or "any"; default Safaricom's published IPs (simulator: loopback)
	TrustedProxies     []netip.Prefix // LIPA_TRUSTED_PROXIES: comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is believed; default none
	ConfirmByQuery     bool           // LIPA_CONFIRM_BY_QUERY: confirm each SUCCESS callback with an STK push query before applying it; default false
	PhoneOptional      bool           // LIPA_CALLBACK_PHONE_OPTIONAL: apply a SUCCESS callback that has no PhoneNumber (or one masked beyond comparing); default false: it is flagged, not applied
	AppRateLimit       float64        // LIPA_APP_RATE_LIMIT: requests per second per app (bursts of twice that); 0 disables; default 50
	AuthFailureLimit   int            // LIPA_AUTH_FAILURES_PER_MINUTE: failed authentications per source address per minute; 0 disables; default 20
	PhonePushesPerHour int            // LIPA_PHONE_PUSHES_PER_HOUR: STK pushes to one phone per hour; default 10
	C2BAccountPattern  *regexp.Regexp // LIPA_C2B_ACCOUNT_PATTERN: C2B validation accepts only account numbers matching this regular expression in full; default any
	C2BMinAmount       lipa.Amount    // LIPA_C2B_MIN_AMOUNT: C2B validation rejects smaller amounts (shillings); default none
	C2BMaxAmount       lipa.Amount    // LIPA_C2B_MAX_AMOUNT: C2B validation rejects larger amounts (shillings); default none
	WebhookRetrySpan   time.Duration  // LIPA_WEBHOOK_RETRY_SPAN: how long a webhook delivery is retried; default 24h
	WebhookBackoff     time.Duration  // LIPA_WEBHOOK_BACKOFF: wait before a failed webhook's first retry (doubling after); default 5s
	WebhookConcurrency int            // LIPA_WEBHOOK_CONCURRENCY: webhook attempts under way at once per process, 1 to 1024; one app gets at most a quarter (at least 2); default 64

	// Refunds, Transaction Status and Pull Transactions.
	InitiatorName        string                 // MPESA_INITIATOR_NAME: the M-Pesa API operator refunds and Transaction Status run as; default none (those features answer 501)
	InitiatorPassword    lipa.Secret            // MPESA_INITIATOR_PASSWORD: its password; never logged or shown; default none
	CertificateFile      string                 // MPESA_CERTIFICATE_FILE: Safaricom's public key certificate (PEM or DER) to encrypt the password with; default the embedded one for the environment (simulator: the simulator's)
	RefundResultTimeout  time.Duration          // LIPA_REFUND_RESULT_TIMEOUT: a refund without its Result this long is checked with Transaction Status; default 5m
	RefundApproval       gateway.RefundApproval // LIPA_REFUND_APPROVAL: never, always, or shillings above which a refund waits for an operator; default never
	PullInterval         time.Duration          // LIPA_PULL_INTERVAL: how often the Pull Transactions backfill runs; 0 turns it off; default 15m
	PullNominatedNumber  string                 // MPESA_PULL_NOMINATED_NUMBER: the Safaricom number on the shortcode's KYC record, for `lipa pull register`; simulator default 254708374149
	DarajaLookupsPerHour int                    // LIPA_DARAJA_LOOKUPS_PER_HOUR: each app's verify lookups of unknown receipts with M-Pesa an hour; 0 turns them off; default 30

	Console consoleConfig // LIPA_ADMIN_ADDR, LIPA_ADMIN_ALLOWED_IPS, …: the operators' web console (see consoleConfig)
}

// defaultConfig returns the configuration with every setting at its
// default: the one place Lipa's defaults are declared (the comments on
// Config and README's Configuration table repeat them; a test holds the
// README to this). Settings that the gateway, the Daraja client, the
// simulator or the store also use take the default those packages declare
// (gateway.DefaultConfig, daraja.DefaultTimeout,
// darajasim.DefaultCallbackDelay, sqlstore.DefaultMaxConns), so no default is
// written twice. The defaults that depend on MPESA_ENVIRONMENT are
// simulatorDefaults and defaultCallbackIPs, applied by readConfig once the
// environment is known.
func defaultConfig() Config {
	g := gateway.DefaultConfig()
	return Config{
		Environment:          envSimulator,
		TransactionType:      g.TransactionType,
		C2BResponseType:      "Completed",
		C2BVersion:           "v2",
		DarajaTimeout:        daraja.DefaultTimeout,
		DatabaseURL:          "sqlite:lipa.db",
		DatabaseMaxConn:      sqlstore.DefaultMaxConns,
		ListenAddr:           "127.0.0.1:8000",
		LogFile:              "payments.log",
		LogMaxSizeMB:         100,
		LogMaxBackups:        10,
		LogMaxAgeDays:        0,
		LogCompress:          true,
		SimulatorDelay:       darajasim.DefaultCallbackDelay,
		ReconcileAfter:       g.ReconcileAfter,
		PendingExpiry:        g.PendingExpiry,
		PromptLifetime:       g.PromptLifetime,
		KeyRotationGrace:     24 * time.Hour,
		AppRateLimit:         50,
		AuthFailureLimit:     20,
		PhonePushesPerHour:   g.PhonePushesPerHour,
		WebhookRetrySpan:     g.WebhookRetrySpan,
		WebhookBackoff:       g.WebhookBackoff,
		WebhookConcurrency:   g.WebhookConcurrency,
		RefundResultTimeout:  gateway.DefaultRefundResultTimeout,
		PullInterval:         gateway.DefaultPullInterval,
		DarajaLookupsPerHour: gateway.DefaultDarajaLookupsPerHour,
		Console:              consoleConfig{SessionIdle: 30 * time.Minute, SessionLifetime: 12 * time.Hour},
	}
}

// simulatorDefaults fills in, for simulator mode, the Daraja settings left
// unset: Safaricom's public sandbox shortcode and passkey (which the
// built-in simulator accepts) and a consumer key and secret (it accepts
// any).
func (c *Config) simulatorDefaults() {
	if c.ShortCode == "" {
		c.ShortCode = darajasim.SandboxShortCode
	}
	if c.Passkey == "" {
		c.Passkey = darajasim.SandboxPasskey
	}
	if c.ConsumerKey == "" {
		c.ConsumerKey = "lipa-simulator"
	}
	if c.ConsumerSecret == "" {
		c.ConsumerSecret = "lipa-simulator"
	}
}

// defaultCallbackIPs is LIPA_CALLBACK_ALLOWED_IPS's default in env:
// Safaricom's published callback addresses (api.SafaricomCallbackIPs), or
// in simulator mode loopback, where the built-in simulator calls from.
func defaultCallbackIPs(env string) []netip.Prefix {
	list := strings.Join(api.SafaricomCallbackIPs, ",")
	if env == envSimulator {
		list = "127.0.0.0/8,::1"
	}
	p, err := api.ParsePrefixes(list)
	if err != nil {
		panic("default LIPA_CALLBACK_ALLOWED_IPS: " + err.Error())
	}
	return p
}

// settingError is a setting whose value is wrong: its message names the
// variable and says what a right value looks like.
type settingError struct {
	Name string // the variable, e.g. "MPESA_TIMEOUT"
	msg  string
}

func (e *settingError) Error() string { return e.msg }

func badSetting(name, format string, args ...any) *settingError {
	return &settingError{Name: name, msg: fmt.Sprintf(format, args...)}
}

// loadConfig builds the Config from lookup (the process environment in
// main, a map in tests) and, under it, the .env file dotenv when present,
// and validates it: the error is the first setting that does not parse or
// that Validate refuses, naming the variable.
func loadConfig(lookup func(string) (string, bool), dotenv string) (Config, error) {
	c, errs := readConfig(lookup, dotenv)
	if len(errs) > 0 {
		return c, errs[0]
	}
	return c, c.Validate()
}

// readConfig reads every setting from lookup and, under it, the .env file
// dotenv when present (surrounding spaces trimmed; a variable set to ""
// is set). An unset setting keeps its default (defaultConfig). One whose
// value does not parse (not a number, a duration, a boolean, a list of
// addresses, a regular expression, a known environment) keeps its default
// too and is reported: one *settingError per variable, in the order read.
// Whether parsed values make sense is Validate's question, not this one's.
func readConfig(lookup func(string) (string, bool), dotenv string) (Config, []error) {
	file := map[string]string{}
	if dotenv != "" {
		if m, err := godotenv.Read(dotenv); err == nil {
			file = m
		}
	}
	get := func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return strings.TrimSpace(v), true
		}
		if v, ok := file[name]; ok {
			return strings.TrimSpace(v), true
		}
		return "", false
	}
	c := defaultConfig()
	var errs []error
	bad := func(name, format string, args ...any) { errs = append(errs, badSetting(name, format, args...)) }
	text := func(name string, dst *string) {
		if v, ok := get(name); ok {
			*dst = v
		}
	}
	secret := func(name string, dst *lipa.Secret) {
		if v, ok := get(name); ok {
			*dst = lipa.Secret(v)
		}
	}
	whole := func(name string, dst *int) {
		if v, ok := get(name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				bad(name, "%s %q is not a whole number", name, v)
				return
			}
			*dst = n
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v, ok := get(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				bad(name, "%s %q is not a Go duration such as 2s or 500ms", name, v)
				return
			}
			*dst = d
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := get(name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(name, "%s %q must be true or false", name, v)
				return
			}
			*dst = b
		}
	}
	amount := func(name string, dst *lipa.Amount) {
		if v, ok := get(name); ok && v != "" {
			a, err := lipa.ParseAmount(v)
			if err != nil {
				bad(name, "%s %q is not an amount in shillings", name, v)
				return
			}
			*dst = a
		}
	}

	text("MPESA_CONSUMER_KEY", &c.ConsumerKey)
	secret("MPESA_CONSUMER_SECRET", &c.ConsumerSecret)
	text("MPESA_SHORTCODE", &c.ShortCode)
	secret("MPESA_PASSKEY", &c.Passkey)
	text("MPESA_CALLBACK_URL", &c.CallbackURL)
	text("MPESA_TRANSACTION_TYPE", &c.TransactionType)
	text("MPESA_PARTY_B", &c.PartyB)
	text("MPESA_BASE_URL", &c.BaseURL)
	text("MPESA_C2B_RESPONSE_TYPE", &c.C2BResponseType)
	text("MPESA_C2B_VERSION", &c.C2BVersion)
	text("DATABASE_URL", &c.DatabaseURL)
	text("LISTEN_ADDR", &c.ListenAddr)
	text("LOG_FILE", &c.LogFile)

	c.Environment = envSimulator
	if c.ConsumerKey != "" {
		c.Environment = envSandbox
	}
	if v, _ := get("MPESA_ENVIRONMENT"); v != "" {
		switch env := strings.ToLower(v); env {
		case "live":
			c.Environment = envProduction
		case envSimulator, envSandbox, envProduction:
			c.Environment = env
		default:
			bad("MPESA_ENVIRONMENT", "MPESA_ENVIRONMENT %q is not one of simulator, sandbox, production (or live)", env)
		}
	}

	whole("LOG_MAX_SIZE_MB", &c.LogMaxSizeMB)
	whole("LOG_MAX_BACKUPS", &c.LogMaxBackups)
	whole("LOG_MAX_AGE_DAYS", &c.LogMaxAgeDays)
	boolean("LOG_COMPRESS", &c.LogCompress)
	duration("MPESA_TIMEOUT", &c.DarajaTimeout)
	duration("LIPA_SIMULATOR_CALLBACK_DELAY", &c.SimulatorDelay)
	duration("LIPA_RECONCILE_AFTER", &c.ReconcileAfter)
	duration("LIPA_PENDING_EXPIRY", &c.PendingExpiry)
	duration("LIPA_PROMPT_LIFETIME", &c.PromptLifetime)
	secret("LIPA_ADMIN_KEY", &c.AdminKey)
	duration("LIPA_WEBHOOK_RETRY_SPAN", &c.WebhookRetrySpan)
	duration("LIPA_WEBHOOK_BACKOFF", &c.WebhookBackoff)
	whole("LIPA_WEBHOOK_CONCURRENCY", &c.WebhookConcurrency)
	duration("LIPA_KEY_ROTATION_GRACE", &c.KeyRotationGrace)
	boolean("MPESA_ALLOW_TOKENLESS_CALLBACKS", &c.AllowTokenless)
	boolean("LIPA_CONFIRM_BY_QUERY", &c.ConfirmByQuery)
	boolean("LIPA_CALLBACK_PHONE_OPTIONAL", &c.PhoneOptional)
	secret("LIPA_CALLBACK_TOKEN", &c.CallbackToken)

	c.CallbackAllowedIPs = defaultCallbackIPs(c.Environment)
	if v, ok := get("LIPA_CALLBACK_ALLOWED_IPS"); ok {
		switch p, err := api.ParsePrefixes(v); {
		case v == "":
			bad("LIPA_CALLBACK_ALLOWED_IPS", "LIPA_CALLBACK_ALLOWED_IPS is set but empty; list addresses, or write any to accept callbacks from anywhere")
		case v == "any":
			c.CallbackAllowedIPs = nil
		case err != nil:
			bad("LIPA_CALLBACK_ALLOWED_IPS", "LIPA_CALLBACK_ALLOWED_IPS %q: %v", v, err)
		default:
			c.CallbackAllowedIPs = p
		}
	}
	if v, ok := get("LIPA_TRUSTED_PROXIES"); ok {
		if p, err := api.ParsePrefixes(v); err != nil {
			bad("LIPA_TRUSTED_PROXIES", "LIPA_TRUSTED_PROXIES: %v", err)
		} else {
			c.TrustedProxies = p
		}
	}
	if v, ok := get("LIPA_APP_RATE_LIMIT"); ok {
		if r, err := strconv.ParseFloat(v, 64); err != nil {
			bad("LIPA_APP_RATE_LIMIT", "LIPA_APP_RATE_LIMIT %q is not a number of requests per second (0 disables the limit)", v)
		} else {
			c.AppRateLimit = r
		}
	}
	whole("LIPA_AUTH_FAILURES_PER_MINUTE", &c.AuthFailureLimit)
	whole("LIPA_PHONE_PUSHES_PER_HOUR", &c.PhonePushesPerHour)
	if v, _ := get("LIPA_C2B_ACCOUNT_PATTERN"); v != "" {
		if re, err := regexp.Compile("^(?:" + v + ")$"); err != nil {
			bad("LIPA_C2B_ACCOUNT_PATTERN", "LIPA_C2B_ACCOUNT_PATTERN %q is not a regular expression: %v", v, err)
		} else {
			c.C2BAccountPattern = re
		}
	}
	amount("LIPA_C2B_MIN_AMOUNT", &c.C2BMinAmount)
	amount("LIPA_C2B_MAX_AMOUNT", &c.C2BMaxAmount)
	whole("DATABASE_MAX_CONNS", &c.DatabaseMaxConn)
	text("LIPA_ADMIN_ADDR", &c.Console.Addr)
	if v, _ := get("LIPA_ADMIN_ALLOWED_IPS"); v != "" {
		if ips, err := api.ParsePrefixes(v); err != nil || len(ips) == 0 {
			bad("LIPA_ADMIN_ALLOWED_IPS", "LIPA_ADMIN_ALLOWED_IPS %q is not a comma-separated list of IPs or CIDRs", v)
		} else {
			c.Console.AllowedIPs = ips
		}
	}
	boolean("LIPA_ADMIN_SECURE_COOKIES", &c.Console.SecureCookies)
	duration("LIPA_ADMIN_SESSION_IDLE", &c.Console.SessionIdle)
	duration("LIPA_ADMIN_SESSION_LIFETIME", &c.Console.SessionLifetime)

	text("MPESA_INITIATOR_NAME", &c.InitiatorName)
	secret("MPESA_INITIATOR_PASSWORD", &c.InitiatorPassword)
	text("MPESA_CERTIFICATE_FILE", &c.CertificateFile)
	duration("LIPA_REFUND_RESULT_TIMEOUT", &c.RefundResultTimeout)
	if v, ok := get("LIPA_REFUND_APPROVAL"); ok {
		if a, err := gateway.ParseRefundApproval(v); err != nil {
			bad("LIPA_REFUND_APPROVAL", "%v", err)
		} else {
			c.RefundApproval = a
		}
	}
	duration("LIPA_PULL_INTERVAL", &c.PullInterval)
	if c.Environment == envSimulator {
		c.PullNominatedNumber = "254708374149" // Safaricom's sandbox test MSISDN
	}
	text("MPESA_PULL_NOMINATED_NUMBER", &c.PullNominatedNumber)
	whole("LIPA_DARAJA_LOOKUPS_PER_HOUR", &c.DarajaLookupsPerHour)
	if c.Environment == envSimulator {
		c.simulatorDefaults()
	}
	return c, errs
}

var callbackTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

var shortCodeRE = regexp.MustCompile(`^\d{5,7}$`)

// Validate checks every setting's value, on its own and against the others,
// for the chosen environment, and returns the first wrong one as an error
// naming its variable (with what a right value looks like), or nil. It is
// the one place Lipa's configuration rules live; `lipa doctor` reports every
// wrong setting at once through problems, which Validate is built on.
func (c Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

// problems returns every wrong setting as a *settingError, at most one per
// variable: the Daraja settings the environment requires first, then the
// others in the order of README's configuration table.
func (c Config) problems() []error {
	var out []error
	seen := map[string]bool{}
	bad := func(name, format string, args ...any) {
		if !seen[name] {
			seen[name] = true
			out = append(out, badSetting(name, format, args...))
		}
	}
	if a := c.Console.Addr; a != "" && a != "off" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("LIPA_ADMIN_ADDR", "LIPA_ADMIN_ADDR %q is not host:port (or off)", a)
		}
	}
	switch {
	case c.InitiatorName != "" && c.InitiatorPassword == "":
		bad("MPESA_INITIATOR_PASSWORD", "MPESA_INITIATOR_PASSWORD is required when MPESA_INITIATOR_NAME is set")
	case c.InitiatorName == "" && c.InitiatorPassword != "":
		bad("MPESA_INITIATOR_NAME", "MPESA_INITIATOR_NAME is required when MPESA_INITIATOR_PASSWORD is set")
	}
	if c.RefundResultTimeout < time.Second {
		bad("LIPA_REFUND_RESULT_TIMEOUT", "LIPA_REFUND_RESULT_TIMEOUT must be at least 1s")
	}
	if c.PullInterval != 0 && (c.PullInterval < time.Second || c.PullInterval > 24*time.Hour) {
		bad("LIPA_PULL_INTERVAL", "LIPA_PULL_INTERVAL %s must be from 1s to 24h (Daraja keeps 48 hours), or 0 to turn the backfill off", c.PullInterval)
	}
	if c.DarajaLookupsPerHour < 0 || c.DarajaLookupsPerHour > 1_000_000 {
		bad("LIPA_DARAJA_LOOKUPS_PER_HOUR", "LIPA_DARAJA_LOOKUPS_PER_HOUR %d is not a whole number from 0 to 1000000 (0 turns lookups off)", c.DarajaLookupsPerHour)
	}
	if c.Console.SessionIdle < time.Second || c.Console.SessionLifetime < c.Console.SessionIdle {
		bad("LIPA_ADMIN_SESSION_IDLE", "LIPA_ADMIN_SESSION_IDLE (%s) must be at least 1s and LIPA_ADMIN_SESSION_LIFETIME (%s) at least as long", c.Console.SessionIdle, c.Console.SessionLifetime)
	}
	if c.Environment != envSimulator {
		for _, v := range []struct{ name, value string }{
			{"MPESA_CONSUMER_KEY", c.ConsumerKey}, {"MPESA_CONSUMER_SECRET", c.ConsumerSecret.Reveal()},
			{"MPESA_SHORTCODE", c.ShortCode}, {"MPESA_PASSKEY", c.Passkey.Reveal()}, {"MPESA_CALLBACK_URL", c.CallbackURL},
		} {
			if v.value == "" {
				bad(v.name, "%s is required when MPESA_ENVIRONMENT is %s", v.name, c.Environment)
			}
		}
		if c.CallbackToken == "" && !c.AllowTokenless {
			bad("LIPA_CALLBACK_TOKEN", "LIPA_CALLBACK_TOKEN is required when MPESA_ENVIRONMENT is %s (generate one with `lipa callback-token`), unless MPESA_ALLOW_TOKENLESS_CALLBACKS=true", c.Environment)
		}
	}
	switch c.Environment {
	case envSimulator, envSandbox, envProduction:
	default:
		bad("MPESA_ENVIRONMENT", "MPESA_ENVIRONMENT %q is not one of simulator, sandbox, production (or live)", c.Environment)
	}
	if !shortCodeRE.MatchString(c.ShortCode) {
		bad("MPESA_SHORTCODE", "MPESA_SHORTCODE %q must be 5 to 7 digits", c.ShortCode)
	}
	if c.CallbackURL != "" {
		if err := checkPublicURL("MPESA_CALLBACK_URL", c.CallbackURL, c.Environment == envProduction); err != nil {
			bad("MPESA_CALLBACK_URL", "%s", err)
		}
	}
	switch c.TransactionType {
	case daraja.PayBillOnline:
	case daraja.BuyGoodsOnline:
		if !shortCodeRE.MatchString(c.PartyB) {
			bad("MPESA_PARTY_B", "MPESA_PARTY_B (the till number, 5 to 7 digits) is required when MPESA_TRANSACTION_TYPE is CustomerBuyGoodsOnline")
		}
	default:
		bad("MPESA_TRANSACTION_TYPE", "MPESA_TRANSACTION_TYPE %q must be CustomerPayBillOnline or CustomerBuyGoodsOnline", c.TransactionType)
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("MPESA_BASE_URL", "MPESA_BASE_URL %q is not an absolute http(s) URL", c.BaseURL)
		}
	}
	if c.DarajaTimeout <= 0 {
		bad("MPESA_TIMEOUT", "MPESA_TIMEOUT must be longer than 0s")
	}
	switch c.C2BResponseType {
	case "Completed", "Cancelled":
	default:
		bad("MPESA_C2B_RESPONSE_TYPE", "MPESA_C2B_RESPONSE_TYPE %q must be Completed or Cancelled", c.C2BResponseType)
	}
	if c.C2BVersion != "v1" && c.C2BVersion != "v2" {
		bad("MPESA_C2B_VERSION", "MPESA_C2B_VERSION %q must be v1 or v2", c.C2BVersion)
	}
	if c.DatabaseMaxConn < 1 || c.DatabaseMaxConn > 1000 {
		bad("DATABASE_MAX_CONNS", "DATABASE_MAX_CONNS %d is not a whole number from 1 to 1000", c.DatabaseMaxConn)
	}
	for _, v := range []struct {
		name     string
		value    int
		min, max int
	}{{"LOG_MAX_SIZE_MB", c.LogMaxSizeMB, 1, 1_000_000}, {"LOG_MAX_BACKUPS", c.LogMaxBackups, 0, 1_000_000}, {"LOG_MAX_AGE_DAYS", c.LogMaxAgeDays, 0, 1_000_000}} {
		if v.value < v.min || v.value > v.max {
			bad(v.name, "%s %d is not a whole number from %d to %d", v.name, v.value, v.min, v.max)
		}
	}
	for _, v := range []struct {
		name  string
		value time.Duration
	}{
		{"LIPA_SIMULATOR_CALLBACK_DELAY", c.SimulatorDelay}, {"LIPA_RECONCILE_AFTER", c.ReconcileAfter},
		{"LIPA_PENDING_EXPIRY", c.PendingExpiry}, {"LIPA_PROMPT_LIFETIME", c.PromptLifetime},
		{"LIPA_KEY_ROTATION_GRACE", c.KeyRotationGrace}, {"LIPA_WEBHOOK_RETRY_SPAN", c.WebhookRetrySpan},
		{"LIPA_WEBHOOK_BACKOFF", c.WebhookBackoff},
	} {
		if v.value < 0 {
			bad(v.name, "%s %q must not be negative", v.name, v.value.String())
		}
	}
	for _, v := range []struct {
		name  string
		value time.Duration
	}{{"LIPA_RECONCILE_AFTER", c.ReconcileAfter}, {"LIPA_PENDING_EXPIRY", c.PendingExpiry}, {"LIPA_WEBHOOK_RETRY_SPAN", c.WebhookRetrySpan}, {"LIPA_WEBHOOK_BACKOFF", c.WebhookBackoff}} {
		if v.value == 0 {
			bad(v.name, "%s must be longer than 0s", v.name)
		}
	}
	if c.PendingExpiry < c.ReconcileAfter {
		bad("LIPA_PENDING_EXPIRY", "LIPA_PENDING_EXPIRY (%s) must be at least LIPA_RECONCILE_AFTER (%s): a payment is asked about before it may expire", c.PendingExpiry, c.ReconcileAfter)
	}
	if k := c.AdminKey.Reveal(); k != "" && len(k) < 16 {
		bad("LIPA_ADMIN_KEY", "LIPA_ADMIN_KEY must be at least 16 characters (use `lipa callback-token` to make a random one)")
	}
	if t := c.CallbackToken.Reveal(); t != "" && !callbackTokenRE.MatchString(t) {
		bad("LIPA_CALLBACK_TOKEN", "LIPA_CALLBACK_TOKEN must be 16 to 128 letters, digits, '-' or '_' (generate one with `lipa callback-token`)")
	} else if w := daraja.RefusedURLWord(t); w != "" {
		// Named, never shown: every callback URL ends with the token, so
		// Daraja would refuse them or never call them.
		bad("LIPA_CALLBACK_TOKEN", "LIPA_CALLBACK_TOKEN contains %q, a word Safaricom refuses in callback URLs (see docs/daraja.md); generate a new token with `lipa callback-token`", w)
	}
	if !(c.AppRateLimit >= 0 && c.AppRateLimit < 1e6) {
		bad("LIPA_APP_RATE_LIMIT", "LIPA_APP_RATE_LIMIT %v is not a number of requests per second (0 disables the limit)", c.AppRateLimit)
	}
	if c.AuthFailureLimit < 0 {
		bad("LIPA_AUTH_FAILURES_PER_MINUTE", "LIPA_AUTH_FAILURES_PER_MINUTE %d is not a whole number (0 disables the limit)", c.AuthFailureLimit)
	}
	if c.PhonePushesPerHour < 1 {
		bad("LIPA_PHONE_PUSHES_PER_HOUR", "LIPA_PHONE_PUSHES_PER_HOUR %d is not a whole number of at least 1", c.PhonePushesPerHour)
	}
	if c.C2BMinAmount != 0 && c.C2BMaxAmount != 0 && c.C2BMinAmount > c.C2BMaxAmount {
		bad("LIPA_C2B_MIN_AMOUNT", "LIPA_C2B_MIN_AMOUNT (%s) is more than LIPA_C2B_MAX_AMOUNT (%s): every C2B payment would be refused", c.C2BMinAmount, c.C2BMaxAmount)
	}
	if c.WebhookBackoff > 8*time.Second {
		bad("LIPA_WEBHOOK_BACKOFF", "LIPA_WEBHOOK_BACKOFF %s is over 8s; with its jitter the first retry must come within 10 s", c.WebhookBackoff)
	}
	if c.WebhookConcurrency < 1 || c.WebhookConcurrency > 1024 {
		bad("LIPA_WEBHOOK_CONCURRENCY", "LIPA_WEBHOOK_CONCURRENCY %d is not a whole number from 1 to 1024", c.WebhookConcurrency)
	}
	return out
}

// checkPublicURL checks a URL Lipa gives Safaricom: absolute, no spaces
// (docs/daraja.md "M-Pesa Express": stray spaces fail as "Invalid
// CallBackURL"), https when required.
func checkPublicURL(name, v string, needHTTPS bool) error {
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(v, " \t"):
		return fmt.Errorf("%s %q is not an absolute http(s) URL", name, v)
	case needHTTPS && u.Scheme != "https":
		return fmt.Errorf("%s %q must use https in production", name, v)
	}
	return nil
}

// darajaBaseURL returns the Daraja base URL for the environment, unless
// MPESA_BASE_URL overrides it; in simulator mode simURL is the built-in
// simulator's.
func (c Config) darajaBaseURL(simURL string) string {
	switch {
	case c.BaseURL != "":
		return c.BaseURL
	case c.Environment == envProduction:
		return daraja.ProductionURL
	case c.Environment == envSandbox:
		return daraja.SandboxURL
	}
	return simURL
}

// localURL returns an http URL on which a process on this machine reaches
// the listener at addr (0.0.0.0 and :: become 127.0.0.1).
func localURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
