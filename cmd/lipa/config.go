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
)

// The Daraja environments Lipa can talk to.
const (
	envSimulator  = "simulator"
	envSandbox    = "sandbox"
	envProduction = "production"
)

// Config is Lipa's whole configuration, read from environment variables and
// from a .env file in the working directory (real environment variables win
// over the file). Each field names its variable and default; Validate names
// the variable that is wrong.
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

	// Refunds, Transaction Status and Pull Transactions (loadAfterSale).
	InitiatorName        string                 // MPESA_INITIATOR_NAME: the M-Pesa API operator refunds and Transaction Status run as; default none (those features answer 501)
	InitiatorPassword    lipa.Secret            // MPESA_INITIATOR_PASSWORD: its password; never logged or shown; default none
	CertificateFile      string                 // MPESA_CERTIFICATE_FILE: Safaricom's public key certificate (PEM or DER) to encrypt the password with; default the embedded one for the environment (simulator: the simulator's)
	RefundResultTimeout  time.Duration          // LIPA_REFUND_RESULT_TIMEOUT: a refund without its Result this long is checked with Transaction Status; default 5m
	RefundApproval       gateway.RefundApproval // LIPA_REFUND_APPROVAL: never, always, or shillings above which a refund waits for an operator; default never
	PullInterval         time.Duration          // LIPA_PULL_INTERVAL: how often the Pull Transactions backfill runs; 0 turns it off; default 15m
	PullNominatedNumber  string                 // MPESA_PULL_NOMINATED_NUMBER: the Safaricom number on the shortcode's KYC record, for `lipa pull register`; simulator default 254708374149
	DarajaLookupsPerHour int                    // LIPA_DARAJA_LOOKUPS_PER_HOUR: each app's verify lookups of unknown receipts with M-Pesa an hour; 0 turns them off; default 30
}

// loadConfig builds the Config from lookup (the process environment in
// main, a map in tests) and, under it, the .env file in dir when present.
func loadConfig(lookup func(string) (string, bool), dotenv string) (Config, error) {
	file := map[string]string{}
	if dotenv != "" {
		if m, err := godotenv.Read(dotenv); err == nil {
			file = m
		}
	}
	get := func(name, def string) string {
		if v, ok := lookup(name); ok {
			return strings.TrimSpace(v)
		}
		if v, ok := file[name]; ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := Config{
		ConsumerKey:     get("MPESA_CONSUMER_KEY", ""),
		ConsumerSecret:  lipa.Secret(get("MPESA_CONSUMER_SECRET", "")),
		ShortCode:       get("MPESA_SHORTCODE", ""),
		Passkey:         lipa.Secret(get("MPESA_PASSKEY", "")),
		CallbackURL:     get("MPESA_CALLBACK_URL", ""),
		TransactionType: get("MPESA_TRANSACTION_TYPE", "CustomerPayBillOnline"),
		PartyB:          get("MPESA_PARTY_B", ""),
		BaseURL:         get("MPESA_BASE_URL", ""),
		C2BResponseType: get("MPESA_C2B_RESPONSE_TYPE", "Completed"),
		C2BVersion:      get("MPESA_C2B_VERSION", "v2"),
		DatabaseURL:     get("DATABASE_URL", "sqlite:lipa.db"),
		ListenAddr:      get("LISTEN_ADDR", "127.0.0.1:8000"),
		LogFile:         get("LOG_FILE", "payments.log"),
	}
	env := strings.ToLower(get("MPESA_ENVIRONMENT", ""))
	switch env {
	case "":
		env = envSimulator
		if c.ConsumerKey != "" {
			env = envSandbox
		}
	case "live":
		env = envProduction
	case envSimulator, envSandbox, envProduction:
	default:
		return c, fmt.Errorf("MPESA_ENVIRONMENT %q is not one of simulator, sandbox, production (or live)", env)
	}
	c.Environment = env
	var err error
	for _, v := range []struct {
		name, def string
		min       int
		dst       *int
	}{{"LOG_MAX_SIZE_MB", "100", 1, &c.LogMaxSizeMB}, {"LOG_MAX_BACKUPS", "10", 0, &c.LogMaxBackups}, {"LOG_MAX_AGE_DAYS", "0", 0, &c.LogMaxAgeDays}} {
		if *v.dst, err = strconv.Atoi(get(v.name, v.def)); err != nil || *v.dst < v.min || *v.dst > 1_000_000 {
			return c, fmt.Errorf("%s %q is not a whole number of at least %d", v.name, get(v.name, v.def), v.min)
		}
	}
	if c.LogCompress, err = strconv.ParseBool(get("LOG_COMPRESS", "true")); err != nil {
		return c, fmt.Errorf("LOG_COMPRESS %q must be true or false", get("LOG_COMPRESS", ""))
	}
	if c.DarajaTimeout, err = duration(get, "MPESA_TIMEOUT", "30s"); err != nil {
		return c, err
	}
	if c.SimulatorDelay, err = duration(get, "LIPA_SIMULATOR_CALLBACK_DELAY", darajasim.DefaultCallbackDelay.String()); err != nil {
		return c, err
	}
	if c.ReconcileAfter, err = duration(get, "LIPA_RECONCILE_AFTER", "60s"); err != nil {
		return c, err
	}
	if c.PendingExpiry, err = duration(get, "LIPA_PENDING_EXPIRY", "24h"); err != nil {
		return c, err
	}
	if c.PromptLifetime, err = duration(get, "LIPA_PROMPT_LIFETIME", "60s"); err != nil {
		return c, err
	}
	if c.ReconcileAfter <= 0 || c.PendingExpiry <= 0 {
		return c, fmt.Errorf("LIPA_RECONCILE_AFTER and LIPA_PENDING_EXPIRY must be longer than 0s")
	}
	if c.PendingExpiry < c.ReconcileAfter {
		return c, fmt.Errorf("LIPA_PENDING_EXPIRY (%s) must be at least LIPA_RECONCILE_AFTER (%s): a payment is asked about before it may expire", c.PendingExpiry, c.ReconcileAfter)
	}
	if c.DarajaTimeout <= 0 {
		return c, fmt.Errorf("MPESA_TIMEOUT must be longer than 0s")
	}
	c.AdminKey = lipa.Secret(get("LIPA_ADMIN_KEY", ""))
	if k := c.AdminKey.Reveal(); k != "" && len(k) < 16 {
		return c, fmt.Errorf("LIPA_ADMIN_KEY must be at least 16 characters (use `lipa callback-token` to make a random one)")
	}
	if c.WebhookRetrySpan, err = duration(get, "LIPA_WEBHOOK_RETRY_SPAN", "24h"); err != nil {
		return c, err
	}
	if c.WebhookRetrySpan <= 0 {
		return c, fmt.Errorf("LIPA_WEBHOOK_RETRY_SPAN must be longer than 0s")
	}
	if c.WebhookBackoff, err = duration(get, "LIPA_WEBHOOK_BACKOFF", "5s"); err != nil {
		return c, err
	}
	if c.WebhookBackoff <= 0 {
		return c, fmt.Errorf("LIPA_WEBHOOK_BACKOFF must be longer than 0s")
	}
	if c.WebhookBackoff > 8*time.Second {
		return c, fmt.Errorf("LIPA_WEBHOOK_BACKOFF %s is over 8s; with its jitter the first retry must come within 10 s", c.WebhookBackoff)
	}
	if c.KeyRotationGrace, err = duration(get, "LIPA_KEY_ROTATION_GRACE", "24h"); err != nil {
		return c, err
	}
	if c.AllowTokenless, err = boolean(get, "MPESA_ALLOW_TOKENLESS_CALLBACKS"); err != nil {
		return c, err
	}
	if c.ConfirmByQuery, err = boolean(get, "LIPA_CONFIRM_BY_QUERY"); err != nil {
		return c, err
	}
	if c.PhoneOptional, err = boolean(get, "LIPA_CALLBACK_PHONE_OPTIONAL"); err != nil {
		return c, err
	}
	c.CallbackToken = lipa.Secret(get("LIPA_CALLBACK_TOKEN", ""))
	if t := c.CallbackToken.Reveal(); t != "" && !callbackTokenRE.MatchString(t) {
		return c, fmt.Errorf("LIPA_CALLBACK_TOKEN must be 16 to 128 letters, digits, '-' or '_' (generate one with `lipa callback-token`)")
	}
	defaultIPs := strings.Join(api.SafaricomCallbackIPs, ",")
	if env == envSimulator {
		defaultIPs = "127.0.0.0/8,::1"
	}
	if v := strings.TrimSpace(get("LIPA_CALLBACK_ALLOWED_IPS", defaultIPs)); v == "" {
		return c, fmt.Errorf("LIPA_CALLBACK_ALLOWED_IPS is set but empty; list addresses, or write any to accept callbacks from anywhere")
	} else if v != "any" {
		if c.CallbackAllowedIPs, err = api.ParsePrefixes(v); err != nil {
			return c, fmt.Errorf("LIPA_CALLBACK_ALLOWED_IPS %q: %v", v, err)
		}
	}
	if c.TrustedProxies, err = api.ParsePrefixes(get("LIPA_TRUSTED_PROXIES", "")); err != nil {
		return c, fmt.Errorf("LIPA_TRUSTED_PROXIES: %v", err)
	}
	if c.AppRateLimit, err = strconv.ParseFloat(get("LIPA_APP_RATE_LIMIT", "50"), 64); err != nil || !(c.AppRateLimit >= 0 && c.AppRateLimit < 1e6) {
		return c, fmt.Errorf("LIPA_APP_RATE_LIMIT %q is not a number of requests per second (0 disables the limit)", get("LIPA_APP_RATE_LIMIT", ""))
	}
	if c.AuthFailureLimit, err = strconv.Atoi(get("LIPA_AUTH_FAILURES_PER_MINUTE", "20")); err != nil || c.AuthFailureLimit < 0 {
		return c, fmt.Errorf("LIPA_AUTH_FAILURES_PER_MINUTE %q is not a whole number (0 disables the limit)", get("LIPA_AUTH_FAILURES_PER_MINUTE", ""))
	}
	if c.PhonePushesPerHour, err = strconv.Atoi(get("LIPA_PHONE_PUSHES_PER_HOUR", "10")); err != nil || c.PhonePushesPerHour < 1 {
		return c, fmt.Errorf("LIPA_PHONE_PUSHES_PER_HOUR %q is not a whole number of at least 1", get("LIPA_PHONE_PUSHES_PER_HOUR", ""))
	}
	if v := get("LIPA_C2B_ACCOUNT_PATTERN", ""); v != "" {
		if c.C2BAccountPattern, err = regexp.Compile("^(?:" + v + ")$"); err != nil {
			return c, fmt.Errorf("LIPA_C2B_ACCOUNT_PATTERN %q is not a regular expression: %v", v, err)
		}
	}
	for _, b := range []struct {
		name string
		dst  *lipa.Amount
	}{{"LIPA_C2B_MIN_AMOUNT", &c.C2BMinAmount}, {"LIPA_C2B_MAX_AMOUNT", &c.C2BMaxAmount}} {
		if v := get(b.name, ""); v != "" {
			if *b.dst, err = lipa.ParseAmount(v); err != nil {
				return c, fmt.Errorf("%s %q is not an amount in shillings", b.name, v)
			}
		}
	}
	if c.C2BMinAmount != 0 && c.C2BMaxAmount != 0 && c.C2BMinAmount > c.C2BMaxAmount {
		return c, fmt.Errorf("LIPA_C2B_MIN_AMOUNT (%s) is more than LIPA_C2B_MAX_AMOUNT (%s): every C2B payment would be refused", c.C2BMinAmount, c.C2BMaxAmount)
	}
	if err := loadAfterSale(get, &c); err != nil {
		return c, err
	}
	n, err := strconv.Atoi(get("DATABASE_MAX_CONNS", "10"))
	if err != nil || n < 1 || n > 1000 {
		return c, fmt.Errorf("DATABASE_MAX_CONNS %q is not a whole number from 1 to 1000", get("DATABASE_MAX_CONNS", ""))
	}
	c.DatabaseMaxConn = n
	if c.Environment == envSimulator {
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
	return c, nil
}

var callbackTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// checkCallbackToken refuses a LIPA_CALLBACK_TOKEN holding a word Safaricom
// refuses in callback URLs (daraja.RefusedURLWord), naming the word but not
// the token: every callback URL ends with the token, so Daraja would refuse
// them or never call them. `serve` and `c2b register` check it.
func (c Config) checkCallbackToken() error {
	if w := daraja.RefusedURLWord(c.CallbackToken.Reveal()); w != "" {
		return fmt.Errorf("LIPA_CALLBACK_TOKEN contains %q, a word Safaricom refuses in callback URLs (see docs/daraja.md); generate a new token with `lipa callback-token`", w)
	}
	return nil
}

func boolean(get func(string, string) string, name string) (bool, error) {
	v := get(name, "false")
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q must be true or false", name, v)
	}
	return b, nil
}

func duration(get func(string, string) string, name, def string) (time.Duration, error) {
	v := get(name, def)
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %q is not a Go duration such as 2s or 500ms", name, v)
	case d < 0:
		return 0, fmt.Errorf("%s %q must not be negative", name, v)
	}
	return d, nil
}

var shortCodeRE = regexp.MustCompile(`^\d{5,7}$`)

// Validate checks the settings that talking to Daraja needs, for the chosen
// environment, and returns an error naming the first wrong variable.
func (c Config) Validate() error {
	if c.Environment != envSimulator {
		for _, v := range []struct{ name, value string }{
			{"MPESA_CONSUMER_KEY", c.ConsumerKey}, {"MPESA_CONSUMER_SECRET", c.ConsumerSecret.Reveal()},
			{"MPESA_SHORTCODE", c.ShortCode}, {"MPESA_PASSKEY", c.Passkey.Reveal()}, {"MPESA_CALLBACK_URL", c.CallbackURL},
		} {
			if v.value == "" {
				return fmt.Errorf("%s is required when MPESA_ENVIRONMENT is %s", v.name, c.Environment)
			}
		}
	}
	if c.Environment != envSimulator && c.CallbackToken == "" && !c.AllowTokenless {
		return fmt.Errorf("LIPA_CALLBACK_TOKEN is required when MPESA_ENVIRONMENT is %s (generate one with `lipa callback-token`), unless MPESA_ALLOW_TOKENLESS_CALLBACKS=true", c.Environment)
	}
	if !shortCodeRE.MatchString(c.ShortCode) {
		return fmt.Errorf("MPESA_SHORTCODE %q must be 5 to 7 digits", c.ShortCode)
	}
	switch c.TransactionType {
	case "CustomerPayBillOnline":
	case "CustomerBuyGoodsOnline":
		if !shortCodeRE.MatchString(c.PartyB) {
			return fmt.Errorf("MPESA_PARTY_B (the till number, 5 to 7 digits) is required when MPESA_TRANSACTION_TYPE is CustomerBuyGoodsOnline")
		}
	default:
		return fmt.Errorf("MPESA_TRANSACTION_TYPE %q must be CustomerPayBillOnline or CustomerBuyGoodsOnline", c.TransactionType)
	}
	if c.CallbackURL != "" {
		if err := checkPublicURL("MPESA_CALLBACK_URL", c.CallbackURL, c.Environment == envProduction); err != nil {
			return err
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("MPESA_BASE_URL %q is not an absolute http(s) URL", c.BaseURL)
		}
	}
	switch c.C2BResponseType {
	case "Completed", "Cancelled":
	default:
		return fmt.Errorf("MPESA_C2B_RESPONSE_TYPE %q must be Completed or Cancelled", c.C2BResponseType)
	}
	if c.C2BVersion != "v1" && c.C2BVersion != "v2" {
		return fmt.Errorf("MPESA_C2B_VERSION %q must be v1 or v2", c.C2BVersion)
	}
	return nil
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

// loadAfterSale reads the settings of refunds, Transaction Status and the
// Pull Transactions backfill into c (see the fields' comments on Config).
func loadAfterSale(get func(string, string) string, c *Config) error {
	c.InitiatorName = get("MPESA_INITIATOR_NAME", "")
	c.InitiatorPassword = lipa.Secret(get("MPESA_INITIATOR_PASSWORD", ""))
	switch {
	case c.InitiatorName != "" && c.InitiatorPassword == "":
		return fmt.Errorf("MPESA_INITIATOR_PASSWORD is required when MPESA_INITIATOR_NAME is set")
	case c.InitiatorName == "" && c.InitiatorPassword != "":
		return fmt.Errorf("MPESA_INITIATOR_NAME is required when MPESA_INITIATOR_PASSWORD is set")
	}
	c.CertificateFile = get("MPESA_CERTIFICATE_FILE", "")
	var err error
	if c.RefundResultTimeout, err = duration(get, "LIPA_REFUND_RESULT_TIMEOUT", gateway.DefaultRefundResultTimeout.String()); err != nil {
		return err
	}
	if c.RefundResultTimeout < time.Second {
		return fmt.Errorf("LIPA_REFUND_RESULT_TIMEOUT must be at least 1s")
	}
	if c.RefundApproval, err = gateway.ParseRefundApproval(get("LIPA_REFUND_APPROVAL", "never")); err != nil {
		return err
	}
	if c.PullInterval, err = duration(get, "LIPA_PULL_INTERVAL", gateway.DefaultPullInterval.String()); err != nil {
		return err
	}
	if c.PullInterval != 0 && (c.PullInterval < time.Second || c.PullInterval > 24*time.Hour) {
		return fmt.Errorf("LIPA_PULL_INTERVAL %s must be from 1s to 24h (Daraja keeps 48 hours), or 0 to turn the backfill off", c.PullInterval)
	}
	def := ""
	if c.Environment == envSimulator {
		def = "254708374149"
	}
	c.PullNominatedNumber = get("MPESA_PULL_NOMINATED_NUMBER", def)
	v := get("LIPA_DARAJA_LOOKUPS_PER_HOUR", strconv.Itoa(gateway.DefaultDarajaLookupsPerHour))
	if c.DarajaLookupsPerHour, err = strconv.Atoi(v); err != nil || c.DarajaLookupsPerHour < 0 || c.DarajaLookupsPerHour > 1_000_000 {
		return fmt.Errorf("LIPA_DARAJA_LOOKUPS_PER_HOUR %q is not a whole number (0 turns lookups off)", v)
	}
	return nil
}
