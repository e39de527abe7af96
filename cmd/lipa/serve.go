package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strings"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/api"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/metrics"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// newLogger returns the service's logger and a function that closes its
// file. With LOG_FILE "-" it writes JSON lines to stdout and nothing else
// (for systemd's journal and container logs); otherwise JSON lines to
// cfg.LogFile, rotated by size (LOG_MAX_SIZE_MB, LOG_MAX_BACKUPS,
// LOG_MAX_AGE_DAYS, LOG_COMPRESS), and readable text to stderr.
func newLogger(cfg Config, stdout, stderr io.Writer) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if cfg.LogFile == "-" {
		return slog.New(slog.NewJSONHandler(stdout, opts)), func() {}, nil
	}
	// Created here with Lipa's mode (lumberjack would make it 0600); a
	// rotation keeps the mode of the file it replaces.
	f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("LOG_FILE %q: %w", cfg.LogFile, err)
	}
	f.Close()
	file := &lumberjack.Logger{Filename: cfg.LogFile, MaxSize: cfg.LogMaxSizeMB, MaxBackups: cfg.LogMaxBackups,
		MaxAge: cfg.LogMaxAgeDays, Compress: cfg.LogCompress}
	h := slog.NewMultiHandler(slog.NewJSONHandler(file, opts), slog.NewTextHandler(stderr, opts))
	return slog.New(h), func() { file.Close() }, nil
}

// auditLogger returns a logger for an operator's CLI command: JSON lines
// appended to cfg.LogFile, each naming the operating-system user, so that
// app and key changes leave an audit trail beside the service's own log.
// If the file cannot be opened it logs nowhere (the command still runs).
// With LOG_FILE "-" the lines go to stderr (stdout is the command's
// output).
func auditLogger(cfg Config) (*slog.Logger, func()) {
	var w io.Writer = os.Stderr
	closeFile := func() {}
	if cfg.LogFile != "-" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return slog.New(slog.DiscardHandler), func() {}
		}
		w, closeFile = f, func() { f.Close() }
	}
	operator := "unknown"
	if u, err := user.Current(); err == nil {
		operator = u.Username
	}
	return slog.New(slog.NewJSONHandler(w, nil)).With("source", "cli", "operator", operator), closeFile
}

// openDB opens and migrates the configured database.
func openDB(ctx context.Context, cfg Config) (*sqlstore.DB, error) {
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, sqlstore.Options{MaxConns: cfg.DatabaseMaxConn})
	if err != nil {
		if strings.HasPrefix(err.Error(), "DATABASE_URL") {
			return nil, err
		}
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// service is a running Lipa: its HTTP server, database and, in simulator
// mode, the built-in Daraja simulator.
type service struct {
	URL  string // where this machine reaches the HTTP server
	http *http.Server
	sim  *darajasim.Server
	simS *loopbackServer
	db   *sqlstore.DB
	gw   *gateway.Gateway

	AdminURL string       // where this machine reaches the console's own listener (LIPA_ADMIN_ADDR); "" when it has none
	admin    *http.Server // the console's own listener, when LIPA_ADMIN_ADDR is set

	log  *slog.Logger
	done chan error

	metrics        *metrics.Metrics
	ops            http.Handler       // /metrics and pprof behind X-ADMIN-KEY, for the operators' listener
	stopBackground context.CancelFunc // ends gw.Run
	backgroundDone chan struct{}      // closed when gw.Run has returned
}

// gatewayConfig is the gateway's part of the configuration.
func gatewayConfig(cfg Config, callbackURL string, log *slog.Logger) gateway.Config {
	return gateway.Config{
		ShortCode: cfg.ShortCode, Passkey: cfg.Passkey, TransactionType: cfg.TransactionType,
		PartyB: cfg.PartyB, CallbackURL: callbackURL, Logger: log,
		PromptLifetime: cfg.PromptLifetime, ReconcileAfter: cfg.ReconcileAfter, PendingExpiry: cfg.PendingExpiry,
		IdempotencyWait: gateway.IdempotencyWaitFor(cfg.DarajaTimeout), KeyRotationGrace: cfg.KeyRotationGrace,
		ConfirmByQuery: cfg.ConfirmByQuery, CallbackPhoneOptional: cfg.PhoneOptional, PhonePushesPerHour: cfg.PhonePushesPerHour,
		C2BAccountPattern: cfg.C2BAccountPattern, C2BMinAmount: cfg.C2BMinAmount, C2BMaxAmount: cfg.C2BMaxAmount,
		WebhookRetrySpan: cfg.WebhookRetrySpan, WebhookBackoff: cfg.WebhookBackoff, WebhookConcurrency: cfg.WebhookConcurrency,
	}
}

// startService starts Lipa as configured and returns once it is listening.
func startService(ctx context.Context, cfg Config, log *slog.Logger, stderr io.Writer) (*service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("LISTEN_ADDR %q: %w", cfg.ListenAddr, err)
	}
	// Every line about a request names its X-Request-ID.
	log = slog.New(api.LogHandler(log.Handler()))
	s := &service{URL: localURL(ln.Addr()), log: log, done: make(chan error, 1), metrics: metrics.New()}
	fail := func(err error) (*service, error) {
		ln.Close()
		s.closeBackends()
		return nil, err
	}
	if s.db, err = openDB(ctx, cfg); err != nil {
		return fail(err)
	}
	token, err := callbackToken(ctx, cfg, s.db)
	if err != nil {
		return fail(err)
	}
	if cfg.AllowTokenless {
		log.Warn("MPESA_ALLOW_TOKENLESS_CALLBACKS=true: callbacks are also accepted on the bare paths, without the secret token; turn it off once Safaricom has the new URLs")
	}
	callbackURL := cfg.CallbackURL
	if w := daraja.RefusedURLWord(callbackURL); w != "" {
		log.Warn(fmt.Sprintf("MPESA_CALLBACK_URL contains %q, a word Safaricom refuses in callback URLs: Daraja may refuse the pushes or never send their callbacks; use Lipa's path /api/stk/callback/ on a host without such words (see docs/daraja.md)", w),
			"word", w, "callback_url", redactToken(callbackURL, token))
	}
	simURL := ""
	if cfg.Environment == envSimulator && callbackURL == "" {
		callbackURL = s.URL + "/api/stk/callback/"
	}
	callbackURL = withToken(callbackURL, token)
	if cfg.Environment == envSimulator {
		if cfg.BaseURL == "" {
			s.sim = darajasim.New(darajasim.Config{
				ShortCodes:    map[string]lipa.Secret{cfg.ShortCode: cfg.Passkey},
				CallbackDelay: cfg.SimulatorDelay,
				Logger:        log.With("component", "simulator"),
				Initiators:    cfg.simulatorInitiators(),
			})
			if s.simS, err = newLoopbackServer(s.sim); err != nil {
				return fail(err)
			}
			simURL = s.simS.URL
			// Kept so that CLI commands (`lipa simulate c2b
			// --no-confirmation`) find the built-in simulator.
			if err := storeSimulatorURL(ctx, s.db, simURL); err != nil {
				return fail(err)
			}
		}
	}
	dc, err := cfg.darajaConfig(cfg.darajaBaseURL(simURL), log.With("component", "daraja"))
	if err != nil {
		return fail(err)
	}
	dc.Observe = s.metrics.ObserveDaraja
	client, err := daraja.New(dc)
	if err != nil {
		return fail(err)
	}
	origin := urlOrigin(cfg.CallbackURL)
	if cfg.CallbackURL == "" {
		origin = s.URL
		if err := storeLipaURL(ctx, s.db, origin); err != nil {
			return fail(err)
		}
	}
	gcfg := withResultURLs(cfg, gatewayConfig(cfg, callbackURL, log), origin, token)
	gcfg.Metrics = s.metrics
	gw := gateway.New(s.db, client, gcfg)
	s.gw = gw
	s.metrics.WatchDB(string(s.db.Backend()), s.db.Pool())
	s.metrics.WatchWebhookBacklog(gw.WebhookBacklog)
	if cfg.Environment == envSimulator {
		key, created, err := gw.EnsureDemoApp(ctx, cliActor())
		if err != nil {
			return fail(err)
		}
		if created {
			fmt.Fprintf(stderr, "\nCreated app %q for simulator mode. Its API key, shown only this once:\n\n    %s\n\n", gateway.DemoAppName, key.Reveal())
		}
		if s.sim != nil {
			// Register Lipa's C2B URLs with the built-in simulator, so its
			// C2B simulate endpoint reaches this service.
			_, err := client.RegisterC2BURLs(ctx, "v2", daraja.RegisterURLRequest{
				ShortCode: cfg.ShortCode, ResponseType: cfg.C2BResponseType,
				ConfirmationURL: withToken(s.URL+"/api/c2b/confirmation/", token), ValidationURL: withToken(s.URL+"/api/c2b/validation/", token),
			})
			if err != nil {
				log.Warn("could not register C2B URLs with the built-in simulator", "err", err)
			}
			// And register the shortcode for Pull Transactions, so the
			// backfill works there out of the box.
			if _, err := gw.RegisterPull(ctx, cfg.PullNominatedNumber); err != nil {
				log.Warn("could not register for Pull Transactions with the built-in simulator", "err", err)
			}
		}
	}
	apiSrv := api.New(gw, api.Config{Logger: log, AdminKey: cfg.AdminKey, AppRateLimit: cfg.AppRateLimit,
		AuthFailuresPerMinute: cfg.AuthFailureLimit,
		Version:               readBuildVersion().Short(),
		Metrics:               s.metrics,
		// With an operators' listener of its own, /metrics and pprof are
		// served there (still behind X-ADMIN-KEY), not here.
		OperatorsElsewhere: cfg.Console.Addr != "" && cfg.Console.Addr != "off",
		Callbacks: api.CallbackGuard{Token: token, AllowTokenless: cfg.AllowTokenless,
			Allowed: cfg.CallbackAllowedIPs, TrustedProxies: cfg.TrustedProxies}})
	s.ops = apiSrv.Operators()
	s.http = &http.Server{
		Handler:           apiSrv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.DarajaTimeout + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if s.http.Handler, err = s.startConsole(cfg, gw, s.http.Handler, callbackURL, token, log); err != nil {
		return fail(err)
	}
	go func() { s.done <- s.http.Serve(ln) }()
	// The gateway owns every background loop and goroutine; the service
	// only starts it and, at shutdown, ends it and waits for it.
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBackground, s.backgroundDone = stop, make(chan struct{})
	go func() {
		defer close(s.backgroundDone)
		if err := gw.Run(bctx); err != nil {
			log.Error("background work did not start", "err", err)
		}
	}()
	log.Info("lipa listening", "url", s.URL, "environment", cfg.Environment, "database", string(s.db.Backend()),
		"shortcode", cfg.ShortCode, "callback_url", redactToken(callbackURL, token), "daraja", cfg.darajaBaseURL(simURL))
	return s, nil
}

// Shutdown is the one shutdown sequence: it stops accepting requests, lets
// those in flight finish (up to ctx's deadline), ends the gateway's
// background work and waits for it (attempts and confirmations under way
// are cut short and recorded), then closes the simulator and the database.
func (s *service) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.admin != nil {
		s.admin.Shutdown(ctx)
	}
	if s.stopBackground != nil {
		s.stopBackground()
		<-s.backgroundDone
	}
	s.closeBackends()
	return err
}

func (s *service) closeBackends() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.simS != nil {
		s.simS.Close()
	}
	if s.sim != nil {
		s.sim.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

// cmdServe runs `lipa serve` until ctx ends (SIGINT or SIGTERM), then drains
// in-flight requests for up to twice the Daraja timeout plus 15 s.
func cmdServe(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return usageError("serve takes no arguments; configure it with environment variables (see the README)")
	}
	log, closeLog, err := newLogger(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	s, err := startService(ctx, cfg, log, stderr)
	if err != nil {
		return err
	}
	select {
	case err := <-s.done:
		s.Shutdown(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	// Long enough for a push waiting on Daraja (a token, then the push) to
	// get its answer and save it.
	sctx, cancel := context.WithTimeout(context.Background(), 2*cfg.DarajaTimeout+15*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// cmdMigrate runs `lipa migrate`.
func cmdMigrate(ctx context.Context, cfg Config, stdout io.Writer) error {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "migrations applied to the %s database\n", db.Backend())
	return nil
}

// loopbackServer serves a handler on a free port of 127.0.0.1.
type loopbackServer struct {
	URL string
	srv *http.Server
}

func newLoopbackServer(h http.Handler) (*loopbackServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	s := &loopbackServer{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server at once.
func (s *loopbackServer) Close() { s.srv.Close() }

// callbackToken returns the secret path token of Lipa's callback URLs:
// LIPA_CALLBACK_TOKEN, or in simulator mode one generated once and kept in
// the database (so `lipa simulate c2b` finds it), or "" (tokenless only).
func callbackToken(ctx context.Context, cfg Config, db *sqlstore.DB) (lipa.Secret, error) {
	if cfg.CallbackToken != "" || cfg.Environment != envSimulator {
		return cfg.CallbackToken, nil
	}
	var v string
	err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		v, err = tx.EnsureSetting(ctx, "simulator_callback_token", newCallbackToken())
		return err
	})
	return lipa.Secret(v), err
}

// newCallbackToken returns 32 random URL-safe characters (192 bits) that
// hold no word Safaricom refuses in callback URLs (daraja.RefusedURLWord):
// about 2 in 1,000 random draws do, and are drawn again.
func newCallbackToken() string {
	for {
		b := make([]byte, 24)
		rand.Read(b)
		if t := base64.RawURLEncoding.EncodeToString(b); daraja.RefusedURLWord(t) == "" {
			return t
		}
	}
}

// withToken appends the token as the last path segment of a callback URL
// ending in "/" (or adds "/token/"); an empty token leaves it as it is.
func withToken(u string, token lipa.Secret) string {
	if token == "" || u == "" {
		return u
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u + token.Reveal() + "/"
}
