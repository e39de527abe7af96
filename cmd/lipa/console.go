package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/console"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// consoleConfig is the operators' web console's part of the configuration.
type consoleConfig struct {
	Addr            string         // LIPA_ADMIN_ADDR: serve the console on this address of its own (then not on LISTEN_ADDR); "off" turns it off; default: under /admin/ on LISTEN_ADDR
	AllowedIPs      []netip.Prefix // LIPA_ADMIN_ALLOWED_IPS: comma-separated IPs/CIDRs the console answers; default any
	SecureCookies   bool           // LIPA_ADMIN_SECURE_COOKIES: mark the session cookie Secure (set it behind an https proxy); default false (Secure anyway over TLS)
	SessionIdle     time.Duration  // LIPA_ADMIN_SESSION_IDLE: a console session ends after this long without a request; default 30m
	SessionLifetime time.Duration  // LIPA_ADMIN_SESSION_LIFETIME: and at the latest this long after sign-in; default 12h
}

// startConsole builds the console and returns the handler of the main
// listener: the API, with the console under /admin/ unless it has an
// address of its own (then it is started there, and s.admin is set) or is
// off.
func (s *service) startConsole(cfg Config, gw *gateway.Gateway, apiHandler http.Handler, callbackURL string, token lipa.Secret, log *slog.Logger) (http.Handler, error) {
	cc := cfg.Console
	if cc.Addr == "off" {
		return apiHandler, nil
	}
	origin := s.URL
	if cfg.CallbackURL != "" {
		origin = urlOrigin(cfg.CallbackURL)
	}
	con := console.New(gw, console.Config{
		Logger:        log.With("component", "console"),
		Session:       gateway.SessionPolicy{Idle: cc.SessionIdle, Lifetime: cc.SessionLifetime},
		SecureCookies: cc.SecureCookies,
		AllowedIPs:    cc.AllowedIPs,
		SourceAddr:    api.SourceAddr(cfg.TrustedProxies),
		StatusOf:      api.StatusOf,
		Settings: console.Settings{Environment: cfg.Environment, Version: readBuildVersion().String(),
			CallbackURL:        redactToken(callbackURL, token),
			C2BValidationURL:   redactToken(withToken(origin+"/api/c2b/validation/", token), token),
			C2BConfirmationURL: redactToken(withToken(origin+"/api/c2b/confirmation/", token), token),
			SeedURLs: []string{redactToken(withToken(origin+"/api/mpesa/stk-callback/", token), token),
				redactToken(withToken(origin+"/api/mpesa/c2b/validation/", token), token),
				redactToken(withToken(origin+"/api/mpesa/c2b/confirmation/", token), token)},
			Values: settingValues(cfg)},
	})
	if cc.Addr == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
				con.ServeHTTP(w, r)
				return
			}
			apiHandler.ServeHTTP(w, r)
		}), nil
	}
	ln, err := net.Listen("tcp", cc.Addr)
	if err != nil {
		return nil, fmt.Errorf("LIPA_ADMIN_ADDR %q: %w", cc.Addr, err)
	}
	s.AdminURL = localURL(ln.Addr())
	s.admin = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/admin/", http.StatusFound)
				return
			}
			if api.IsOperatorPath(r.URL.Path) && s.ops != nil {
				s.ops.ServeHTTP(w, r) // Prometheus and pprof, behind X-ADMIN-KEY
				return
			}
			con.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go s.admin.Serve(ln)
	log.Info("operators' console listening on its own address", "url", s.AdminURL+"/admin/")
	return apiHandler, nil
}

// settingValues is the effective configuration as the console's Settings
// page shows it: every variable, secrets as "set (hidden)" or "not set".
func settingValues(cfg Config) []console.Setting {
	secret := func(s lipa.Secret) string {
		if s == "" {
			return "not set"
		}
		return "set (hidden)"
	}
	prefixes := func(ps []netip.Prefix, none string) string {
		if len(ps) == 0 {
			return none
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		return strings.Join(out, ", ")
	}
	orNone := func(s string) string {
		if s == "" {
			return "not set"
		}
		return s
	}
	amount := func(a lipa.Amount) string {
		if a == 0 {
			return "not set"
		}
		return a.String()
	}
	pattern := "not set"
	if cfg.C2BAccountPattern != nil {
		pattern = strings.TrimSuffix(strings.TrimPrefix(cfg.C2BAccountPattern.String(), "^(?:"), ")$")
	}
	admin := cfg.Console.Addr
	if admin == "" {
		admin = "not set (under /admin/ on LISTEN_ADDR)"
	}
	b := strconv.FormatBool
	setting := func(name, value, note string) console.Setting {
		return console.Setting{Name: name, Value: value, Note: note}
	}
	return []console.Setting{
		setting("MPESA_ENVIRONMENT", cfg.Environment, "which Daraja Lipa talks to"),
		setting("MPESA_CONSUMER_KEY", secret(lipa.Secret(cfg.ConsumerKey)), "the Daraja app's consumer key"),
		setting("MPESA_CONSUMER_SECRET", secret(cfg.ConsumerSecret), "the Daraja app's consumer secret"),
		setting("MPESA_SHORTCODE", cfg.ShortCode, "the paybill, or the store number of a till"),
		setting("MPESA_PASSKEY", secret(cfg.Passkey), "the Lipa na M-Pesa Online passkey"),
		setting("MPESA_CALLBACK_URL", orNone(cfg.CallbackURL), "public URL of the STK callback (the token is appended)"),
		setting("MPESA_TRANSACTION_TYPE", cfg.TransactionType, "paybill or till pushes"),
		setting("MPESA_PARTY_B", orNone(cfg.PartyB), "the till number, for CustomerBuyGoodsOnline"),
		setting("MPESA_BASE_URL", orNone(cfg.BaseURL), "overrides Daraja's base URL"),
		setting("MPESA_TIMEOUT", cfg.DarajaTimeout.String(), "bound on each Daraja call"),
		setting("MPESA_C2B_RESPONSE_TYPE", cfg.C2BResponseType, "what M-Pesa does when validation does not answer"),
		setting("MPESA_C2B_VERSION", cfg.C2BVersion, "C2B register URL API version"),
		setting("DATABASE_URL", redactURL(cfg.DatabaseURL), "the database (password hidden)"),
		setting("DATABASE_MAX_CONNS", strconv.Itoa(cfg.DatabaseMaxConn), "PostgreSQL connection pool size"),
		setting("LISTEN_ADDR", cfg.ListenAddr, "where Lipa serves HTTP"),
		setting("LOG_FILE", cfg.LogFile, "JSON log lines (- for stdout)"),
		setting("LOG_MAX_SIZE_MB", strconv.Itoa(cfg.LogMaxSizeMB), "LOG_FILE is rotated before it grows past this many megabytes"),
		setting("LOG_MAX_BACKUPS", strconv.Itoa(cfg.LogMaxBackups), "rotated log files kept (0 keeps all)"),
		setting("LOG_MAX_AGE_DAYS", strconv.Itoa(cfg.LogMaxAgeDays), "rotated log files older than this are deleted (0: by count only)"),
		setting("LOG_COMPRESS", b(cfg.LogCompress), "gzip rotated log files"),
		setting("LIPA_SIMULATOR_CALLBACK_DELAY", cfg.SimulatorDelay.String(), "simulator STK callback delay"),
		setting("LIPA_RECONCILE_AFTER", cfg.ReconcileAfter.String(), "a PENDING push without callback is queried after this"),
		setting("LIPA_PENDING_EXPIRY", cfg.PendingExpiry.String(), "a payment PENDING this long becomes FAILED expired"),
		setting("LIPA_PROMPT_LIFETIME", cfg.PromptLifetime.String(), "a PENDING push this young keeps its phone busy"),
		setting("LIPA_ADMIN_KEY", secret(cfg.AdminKey), "enables the JSON admin API under /api/admin/"),
		setting("LIPA_CALLBACK_TOKEN", secret(cfg.CallbackToken), "secret last path segment of the callback URLs"),
		setting("MPESA_ALLOW_TOKENLESS_CALLBACKS", b(cfg.AllowTokenless), "also accept callbacks without the token"),
		setting("LIPA_CALLBACK_ALLOWED_IPS", prefixes(cfg.CallbackAllowedIPs, "any"), "where callbacks may come from"),
		setting("LIPA_TRUSTED_PROXIES", prefixes(cfg.TrustedProxies, "none"), "reverse proxies whose X-Forwarded-For is believed"),
		setting("LIPA_CONFIRM_BY_QUERY", b(cfg.ConfirmByQuery), "confirm each SUCCESS callback with an STK push query"),
		setting("LIPA_CALLBACK_PHONE_OPTIONAL", b(cfg.PhoneOptional), "apply a SUCCESS callback without a comparable PhoneNumber"),
		setting("LIPA_KEY_ROTATION_GRACE", cfg.KeyRotationGrace.String(), "an old API key keeps working this long after rotation"),
		setting("LIPA_APP_RATE_LIMIT", strconv.FormatFloat(cfg.AppRateLimit, 'f', -1, 64), "requests per second per app (0: no limit)"),
		setting("LIPA_AUTH_FAILURES_PER_MINUTE", strconv.Itoa(cfg.AuthFailureLimit), "failed authentications per address per minute"),
		setting("LIPA_PHONE_PUSHES_PER_HOUR", strconv.Itoa(cfg.PhonePushesPerHour), "STK pushes to one phone per hour"),
		setting("LIPA_C2B_ACCOUNT_PATTERN", pattern, "C2B account numbers validation accepts"),
		setting("LIPA_C2B_MIN_AMOUNT", amount(cfg.C2BMinAmount), "smallest C2B amount validation accepts (shillings)"),
		setting("LIPA_C2B_MAX_AMOUNT", amount(cfg.C2BMaxAmount), "largest C2B amount validation accepts (shillings)"),
		setting("LIPA_WEBHOOK_RETRY_SPAN", cfg.WebhookRetrySpan.String(), "how long a webhook delivery is retried"),
		setting("LIPA_WEBHOOK_BACKOFF", cfg.WebhookBackoff.String(), "wait before a failed webhook's first retry"),
		setting("LIPA_WEBHOOK_CONCURRENCY", strconv.Itoa(cfg.WebhookConcurrency), "webhook attempts under way at once per process"),
		setting("MPESA_INITIATOR_NAME", orNone(cfg.InitiatorName), "the M-Pesa API operator refunds and Transaction Status run as"),
		setting("MPESA_INITIATOR_PASSWORD", secret(cfg.InitiatorPassword), "the initiator's password"),
		setting("MPESA_CERTIFICATE_FILE", orNone(cfg.CertificateFile), "Safaricom's certificate the initiator password is encrypted with (default: the embedded one)"),
		setting("LIPA_REFUND_RESULT_TIMEOUT", cfg.RefundResultTimeout.String(), "a refund without its Result this long is checked with Transaction Status"),
		setting("LIPA_REFUND_APPROVAL", cfg.RefundApproval.String(), "refunds that wait for an operator's approval"),
		setting("LIPA_PULL_INTERVAL", cfg.PullInterval.String(), "how often the Pull Transactions backfill runs (0s: off)"),
		setting("MPESA_PULL_NOMINATED_NUMBER", orNone(cfg.PullNominatedNumber), "the number lipa pull register gives Daraja"),
		setting("LIPA_DARAJA_LOOKUPS_PER_HOUR", strconv.Itoa(cfg.DarajaLookupsPerHour), "each app's lookup=daraja verifications an hour"),
		setting("LIPA_ADMIN_ADDR", admin, "where the console is served"),
		setting("LIPA_ADMIN_ALLOWED_IPS", prefixes(cfg.Console.AllowedIPs, "any"), "addresses the console answers"),
		setting("LIPA_ADMIN_SECURE_COOKIES", b(cfg.Console.SecureCookies), "Secure session cookie without TLS to Lipa itself"),
		setting("LIPA_ADMIN_SESSION_IDLE", cfg.Console.SessionIdle.String(), "a console session ends after this long idle"),
		setting("LIPA_ADMIN_SESSION_LIFETIME", cfg.Console.SessionLifetime.String(), "and at the latest this long after sign-in"),
	}
}

// redactURL hides the password of a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
