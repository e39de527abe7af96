package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// cmdSimulator runs `lipa simulator --listen ADDR`: the Daraja simulator on
// its own, for any Daraja client.
func cmdSimulator(ctx context.Context, cfg Config, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8001", "address to serve the simulator on")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	sim := darajasim.New(darajasim.Config{
		ShortCodes:    map[string]lipa.Secret{cfg.ShortCode: cfg.Passkey, darajasim.SandboxShortCode: darajasim.SandboxPasskey},
		CallbackDelay: cfg.SimulatorDelay,
		Logger:        log,
	})
	defer sim.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("Daraja simulator listening", "url", "http://"+ln.Addr().String(), "shortcode", cfg.ShortCode, "callback_delay", cfg.SimulatorDelay)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// simulateUsage is the usage line of `lipa simulate`.
const simulateUsage = "usage: lipa simulate c2b --amount N --account REF --phone MSISDN [--url URL] [--shortcode N] [--till] [--no-confirmation]"

// cmdSimulate runs `lipa simulate c2b …`: Safaricom's side of a C2B payment,
// posted to a running Lipa (validation, then confirmation). With
// --no-confirmation the payment is made at the running Lipa's built-in
// simulator instead, which completes it and logs it for Pull Transactions
// but sends Lipa nothing, as when a confirmation is lost.
func cmdSimulate(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "c2b" {
		return usageError(simulateUsage)
	}
	fs := flag.NewFlagSet("simulate c2b", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	amount := fs.Int64("amount", 0, "whole shillings paid")
	account := fs.String("account", "", "the account number (BillRefNumber) the customer typed")
	phone := fs.String("phone", "254708374149", "the paying MSISDN")
	target := fs.String("url", localURL(tcpAddr(cfg.ListenAddr)), "base URL of the running Lipa")
	shortCode := fs.String("shortcode", cfg.ShortCode, "the paybill or till paid")
	till := fs.Bool("till", false, "pay a till (Buy Goods) instead of a paybill")
	noConfirmation := fs.Bool("no-confirmation", false, "pay at the built-in simulator and never send Lipa the confirmation (recover it with `lipa pull run`)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(simulateUsage + "\n" + help.String())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("simulate c2b: unexpected argument %q", fs.Arg(0)))
	}
	msisdn, err := lipa.ParsePhone(*phone)
	if err != nil {
		return fmt.Errorf("--phone: %v", err)
	}
	if *amount < 1 {
		return usageError("simulate c2b: --amount must be a whole number of shillings, at least 1")
	}
	command := darajasim.CommandPayBill
	if *till {
		command = darajasim.CommandBuyGoods
	}
	payment := darajasim.C2BPayment{ShortCode: *shortCode, CommandID: command, Amount: *amount, MSISDN: string(msisdn), BillRefNumber: *account}
	if *noConfirmation {
		return simulateWithheldC2B(ctx, cfg, payment, stdout)
	}
	base := strings.TrimRight(*target, "/")
	token := cfg.CallbackToken
	if token == "" {
		// simulator mode keeps its token in the database
		if db, err := openDB(ctx, cfg); err == nil {
			token, err = callbackToken(ctx, cfg, db)
			db.Close()
			if err != nil {
				return err
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	transID, err := darajasim.SendC2B(cctx, &http.Client{Timeout: 15 * time.Second},
		withToken(base+"/api/c2b/validation/", token), withToken(base+"/api/c2b/confirmation/", token),
		payment, time.Now())
	if err != nil {
		return fmt.Errorf("simulate c2b against %s (a running lipa serve; --url to name another): %s", base, redactToken(err.Error(), token))
	}
	fmt.Fprintf(stdout, "C2B payment sent to %s: TransID %s, %d shillings, account %q\n", base, transID, *amount, *account)
	return nil
}

// tcpAddr parses host:port for localURL; an unparsable address gives the
// default listen address.
func tcpAddr(addr string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		a, _ = net.ResolveTCPAddr("tcp", "127.0.0.1:8000")
	}
	return a
}

// cmdC2B runs `lipa c2b register`: registers Lipa's C2B validation and
// confirmation URLs (on the same host as MPESA_CALLBACK_URL, under /api/c2b/,
// which contain no word Daraja refuses) with Daraja.
func cmdC2B(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "register" {
		return usageError("usage: lipa c2b register")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Environment == envSimulator && cfg.BaseURL == "" {
		return errors.New("in simulator mode `lipa serve` registers its C2B URLs with its built-in simulator at start; set MPESA_BASE_URL to register with a simulator running elsewhere")
	}
	if cfg.CallbackURL == "" {
		return errors.New("MPESA_CALLBACK_URL is required: the C2B URLs are registered on its host")
	}
	validation, confirmation := c2bURLs(cfg)
	req := daraja.RegisterURLRequest{
		ShortCode: cfg.ShortCode, ResponseType: cfg.C2BResponseType,
		ConfirmationURL: confirmation, ValidationURL: validation,
	}
	for _, u := range []struct{ name, url string }{{"confirmation", req.ConfirmationURL}, {"validation", req.ValidationURL}} {
		if w := daraja.RefusedURLWord(u.url); w != "" {
			return fmt.Errorf("the C2B %s URL %s contains %q, a word Safaricom refuses in callback URLs (see docs/daraja.md); nothing was registered: serve Lipa on a host name without it and set MPESA_CALLBACK_URL to match",
				u.name, redactToken(u.url, cfg.CallbackToken), w)
		}
	}
	client, err := daraja.New(daraja.Config{BaseURL: cfg.darajaBaseURL(""), ConsumerKey: cfg.ConsumerKey, ConsumerSecret: cfg.ConsumerSecret, Timeout: cfg.DarajaTimeout})
	if err != nil {
		return err
	}
	resp, err := client.RegisterC2BURLs(ctx, cfg.C2BVersion, req)
	var apiErr *daraja.APIError
	if errors.As(err, &apiErr) && apiErr.Reason() == daraja.ReasonAlreadyRegistered {
		return fmt.Errorf("Daraja says C2B URLs are already registered for %s; the old URLs may still receive payments (in production, delete them on the M-Pesa portal first): %w", cfg.ShortCode, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered C2B URLs for shortcode %s (%s, ResponseType %s):\n  validation:   %s\n  confirmation: %s\nDaraja: %s %s\n",
		cfg.ShortCode, cfg.C2BVersion, cfg.C2BResponseType, redactToken(req.ValidationURL, cfg.CallbackToken),
		redactToken(req.ConfirmationURL, cfg.CallbackToken), resp.ResponseCode, resp.ResponseDescription)
	if err := recordC2BRegistration(ctx, cfg, time.Now()); err != nil {
		fmt.Fprintf(stdout, "note: the registration is done, but Lipa could not record it for `lipa doctor`: %v\n", err)
	}
	return nil
}

// c2bURLs returns the C2B validation and confirmation URLs `lipa c2b
// register` gives Daraja: /api/c2b/validation/<token>/ and
// /api/c2b/confirmation/<token>/ on the scheme and host of
// MPESA_CALLBACK_URL (its path is not used).
func c2bURLs(cfg Config) (validation, confirmation string) {
	origin := cfg.CallbackURL
	if i := strings.Index(origin, "://"); i >= 0 {
		if j := strings.Index(origin[i+3:], "/"); j >= 0 {
			origin = origin[:i+3+j]
		}
	}
	return withToken(origin+"/api/c2b/validation/", cfg.CallbackToken), withToken(origin+"/api/c2b/confirmation/", cfg.CallbackToken)
}

// redactToken hides the callback token in a URL that is printed.
func redactToken(u string, token lipa.Secret) string {
	if token == "" {
		return u
	}
	return strings.ReplaceAll(u, token.Reveal(), "{LIPA_CALLBACK_TOKEN}")
}

// cmdCallbackToken runs `lipa callback-token`: prints a new random token for
// LIPA_CALLBACK_TOKEN.
func cmdCallbackToken(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return usageError("usage: lipa callback-token")
	}
	fmt.Fprintln(stdout, newCallbackToken())
	return nil
}

// settingSimulatorURL names the setting in which `lipa serve` keeps the URL
// of its built-in simulator.
const settingSimulatorURL = "simulator_url"

// storeSimulatorURL records the built-in simulator's URL in the database.
func storeSimulatorURL(ctx context.Context, db *sqlstore.DB, u string) error {
	return db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.PutSetting(ctx, settingSimulatorURL, u) })
}

// simulatorURL returns the base URL of the Daraja simulator that a running
// `lipa serve` in simulator mode uses: MPESA_BASE_URL when set, else the
// built-in simulator's, which serve records in the database at start.
func simulatorURL(ctx context.Context, cfg Config) (string, error) {
	if cfg.Environment != envSimulator {
		return "", fmt.Errorf("this needs the Daraja simulator, but MPESA_ENVIRONMENT is %s", cfg.Environment)
	}
	if cfg.BaseURL != "" {
		return cfg.BaseURL, nil
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var u string
	err = db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		u, err = tx.Setting(ctx, settingSimulatorURL)
		return err
	})
	if err != nil {
		return "", err
	}
	if u == "" {
		return "", errors.New("no built-in simulator is known: start `lipa serve` in simulator mode on this database first (or set MPESA_BASE_URL to a simulator)")
	}
	return u, nil
}

// simulateWithheldC2B makes payment p at the simulator with its confirmation
// withheld: POST /mpesa/c2b/v2/simulate with the simulator's NoConfirmation
// extension.
func simulateWithheldC2B(ctx context.Context, cfg Config, p darajasim.C2BPayment, stdout io.Writer) error {
	base, err := simulatorURL(ctx, cfg)
	if err != nil {
		return fmt.Errorf("simulate c2b --no-confirmation: %w", err)
	}
	client, err := daraja.New(daraja.Config{BaseURL: base, ConsumerKey: cfg.ConsumerKey, ConsumerSecret: cfg.ConsumerSecret, Timeout: 15 * time.Second})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := client.Token(cctx)
	if err != nil {
		return fmt.Errorf("simulate c2b --no-confirmation against the simulator at %s (is lipa serve running?): %w", base, err)
	}
	body, _ := json.Marshal(map[string]any{
		"ShortCode": p.ShortCode, "CommandID": p.CommandID, "Amount": strconv.FormatInt(p.Amount, 10),
		"Msisdn": p.MSISDN, "BillRefNumber": p.BillRefNumber, "NoConfirmation": true,
	})
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, strings.TrimRight(base, "/")+"/mpesa/c2b/v2/simulate", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("simulate c2b --no-confirmation against the simulator at %s (is lipa serve running?): %w", base, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulate c2b --no-confirmation: the simulator answered HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	fmt.Fprintf(stdout, "C2B payment made at the simulator: %d shillings to %s, account %q, from %s; its confirmation was withheld (recover it with `lipa pull run`)\n",
		p.Amount, p.ShortCode, p.BillRefNumber, p.MSISDN)
	return nil
}
