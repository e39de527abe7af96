package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// status is how one of `lipa doctor`'s checks came out.
type status string

// The statuses of a finding. Only statusFail (and, with --strict,
// statusWarn) makes `lipa doctor` exit 1.
const (
	statusOK   status = "ok"   // the check passed
	statusWarn status = "warn" // it passed, but something deserves a look
	statusFail status = "fail" // Safaricom, the internet or the database will not work with this
	statusSkip status = "skip" // the check could not run or does not apply; the message says why
)

// finding is one line of `lipa doctor`'s report, and one element of its
// --json array.
type finding struct {
	Check   string `json:"check"`   // the check's name, e.g. "callback-url"
	Status  status `json:"status"`  // ok, warn, fail or skip
	Message string `json:"message"` // what was found, one sentence or two
	Fix     string `json:"fix"`     // what to do about it; "" when nothing
}

// The names of `lipa doctor`'s checks, in the order they run.
const (
	checkConfig        = "config"
	checkDatabase      = "database"
	checkOAuth         = "daraja-oauth"
	checkClock         = "clock"
	checkPasskey       = "stk-passkey"
	checkTxnType       = "transaction-type"
	checkCallbackURL   = "callback-url"
	checkC2BURLs       = "c2b-urls"
	checkC2BRegistered = "c2b-registered"
)

// Limits of `lipa doctor`'s checks.
const (
	// maxClockSkew is how far this machine's clock may be from Daraja's
	// Date header. Daraja's STK Timestamp tolerance is not documented
	// (Daraja reference §15); webhook receivers refuse signatures 5 minutes
	// off, and a minute leaves room for the header's one-second resolution
	// and the network.
	maxClockSkew = 60 * time.Second
	// resolveTimeout bounds the DNS lookup of a callback host.
	resolveTimeout = 5 * time.Second
	// probeCheckoutID is the CheckoutRequestID the passkey check asks
	// about: shaped like Daraja's (ws_CO_ + a date in 2000 + digits), so
	// no push ever had it and nobody is prompted.
	probeCheckoutID = "ws_CO_01012000000000000000000000"
)

// cmdDoctor runs `lipa doctor [--json] [--strict]`: it checks the
// configuration read from lookup and the .env file dotenv the way
// Safaricom and the internet will, and prints one line per finding (with
// --json, a JSON array of findings and nothing else). It changes nothing:
// the database is opened only if it exists and only read, no log file is
// written, no push is sent. It returns the exit status: 0 when no check
// failed (warnings allowed, unless --strict), 1 otherwise, 2 for a bad
// command line.
func cmdDoctor(ctx context.Context, args []string, lookup func(string) (string, bool), dotenv string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the findings as a JSON array of {check, status, message, fix}")
	strict := fs.Bool("strict", false, "exit 1 on warnings too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "lipa: usage: lipa doctor [--json] [--strict]")
		return 2
	}
	d := &doctor{resolve: net.DefaultResolver.LookupNetIP, now: time.Now}
	d.run(ctx, lookup, dotenv)

	failed := false
	counts := map[status]int{}
	for _, f := range d.findings {
		counts[f.Status]++
		failed = failed || f.Status == statusFail || (*strict && f.Status == statusWarn)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(d.findings)
	} else {
		for _, f := range d.findings {
			label := strings.ToUpper(string(f.Status))
			if f.Status == statusOK {
				label = "ok"
			}
			// Daraja's words and error texts come from outside Lipa.
			line := fmt.Sprintf("%-5s %-16s %s", label, f.Check, terminalSafe(f.Message))
			if f.Fix != "" {
				line += " Fix: " + terminalSafe(f.Fix)
			}
			fmt.Fprintln(stdout, line)
		}
		fmt.Fprintf(stdout, "\n%d ok, %d warn, %d fail, %d skip\n", counts[statusOK], counts[statusWarn], counts[statusFail], counts[statusSkip])
	}
	if failed {
		return 1
	}
	return 0
}

// doctor runs the checks of `lipa doctor` and collects their findings.
type doctor struct {
	resolve func(ctx context.Context, network, host string) ([]netip.Addr, error) // DNS
	now     func() time.Time

	cfg      Config
	findings []finding

	db          *sqlstore.DB // nil when the database check could not open it
	token       lipa.Secret  // the callback token Lipa uses; "" when none
	tokenKnown  bool         // false when simulator mode's stored token could not be read
	builtIn     bool         // the Daraja checks run against a simulator started for them
	baseURL     string       // where the Daraja checks send their requests
	client      *daraja.Client
	dates       *dateRecorder
	gotToken    bool // Daraja issued an access token
	callbackBad bool // MPESA_CALLBACK_URL has a problem the C2B URLs share (scheme, host, token)
}

func (d *doctor) add(check string, s status, message, fix string) {
	sentence := func(t string) string {
		t = strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(t))
		if t != "" && !strings.HasSuffix(t, ".") && !strings.HasSuffix(t, ")") {
			t += "."
		}
		return t
	}
	d.findings = append(d.findings, finding{Check: check, Status: s, Message: sentence(message), Fix: sentence(fix)})
}

// run runs every check in order. Each check runs whatever the earlier ones
// found, unless it needs what they could not give (a database, a token).
func (d *doctor) run(ctx context.Context, lookup func(string) (string, bool), dotenv string) {
	d.checkConfig(lookup, dotenv)
	d.checkDatabase(ctx)
	if d.db != nil {
		defer d.db.Close()
	}
	d.readToken(ctx)
	stop := d.startDaraja()
	defer stop()
	d.checkOAuth(ctx)
	d.checkClock()
	d.checkPasskey(ctx)
	d.checkTransactionType()
	d.checkCallbackURL(ctx)
	d.checkC2BURLs()
	d.checkC2BRegistered(ctx)
}

// checkConfig reads the configuration and reports every setting that does
// not parse or that Validate refuses, one line each.
func (d *doctor) checkConfig(lookup func(string) (string, bool), dotenv string) {
	cfg, errs := readConfig(lookup, dotenv)
	d.cfg = cfg
	named := map[string]bool{}
	for _, err := range errs {
		named[err.(*settingError).Name] = true
	}
	for _, err := range cfg.problems() {
		if !named[err.(*settingError).Name] {
			errs = append(errs, err)
		}
	}
	for _, err := range errs {
		name := err.(*settingError).Name
		d.add(checkConfig, statusFail, err.Error(), fmt.Sprintf("correct %s in the environment or in .env (README.md, Configuration, lists every setting and its values)", name))
	}
	if len(errs) == 0 {
		d.add(checkConfig, statusOK, fmt.Sprintf("every setting parses and validates (MPESA_ENVIRONMENT=%s, Daraja at %s).", cfg.Environment, d.darajaName()), "")
	}
	if cfg.AllowTokenless {
		d.add(checkConfig, statusWarn, "MPESA_ALLOW_TOKENLESS_CALLBACKS=true: Lipa also accepts callbacks on the bare paths, without the secret token, so anyone who learns them can post callbacks.",
			"it is for moving to tokened URLs only: remove it once Safaricom calls the URLs ending in LIPA_CALLBACK_TOKEN (pushes send the new URL at once; run `lipa c2b register` for C2B).")
	}
	if cfg.CallbackAllowedIPs == nil && cfg.Environment != envSimulator {
		d.add(checkConfig, statusWarn, "LIPA_CALLBACK_ALLOWED_IPS=any: callbacks are accepted from every address, not only Safaricom's.",
			"unset LIPA_CALLBACK_ALLOWED_IPS (the default is Safaricom's published addresses), and set LIPA_TRUSTED_PROXIES to your reverse proxy so the real source is seen.")
	}
}

// darajaName says where the Daraja checks go, for messages.
func (d *doctor) darajaName() string {
	if d.cfg.Environment == envSimulator && d.cfg.BaseURL == "" {
		return "the built-in simulator"
	}
	return d.cfg.darajaBaseURL("")
}

// checkDatabase opens the configured database without creating anything
// and compares its schema version with this build's migrations.
func (d *doctor) checkDatabase(ctx context.Context) {
	where := "DATABASE_URL=" + redactDatabaseURL(d.cfg.DatabaseURL)
	db, err := sqlstore.Open(ctx, d.cfg.DatabaseURL, sqlstore.Options{MaxConns: 2, MustExist: true})
	var have, want int64
	if err == nil {
		if have, want, err = db.SchemaVersion(ctx); err != nil {
			db.Close()
		}
	}
	switch {
	case errors.Is(err, sqlstore.ErrNoDatabase):
		why := strings.TrimPrefix(err.Error(), sqlstore.ErrNoDatabase.Error()+": ")
		d.add(checkDatabase, statusWarn, fmt.Sprintf("there is no Lipa database at %s yet: %s.", where, why),
			"if DATABASE_URL is right, `lipa migrate` creates it (so does `lipa serve` when it starts); if you expected one there, DATABASE_URL points at the wrong place.")
		return
	case err != nil:
		d.add(checkDatabase, statusFail, fmt.Sprintf("the database at %s does not answer: %v.", where, err),
			"check DATABASE_URL (host, port, user, password, database, sslmode) and that the database runs and accepts connections from this machine; for SQLite, that the file is Lipa's.")
		return
	}
	d.db = db
	switch {
	case have < want:
		d.add(checkDatabase, statusFail, fmt.Sprintf("the %s database at %s answers, but its schema is at migration %d and this lipa needs %d.", db.Backend(), where, have, want),
			"run `lipa migrate` (with several replicas, once, before starting the new version; `lipa serve` also migrates when it starts).")
	case have > want:
		d.add(checkDatabase, statusWarn, fmt.Sprintf("the %s database at %s is at migration %d, newer than this lipa (%d): a newer lipa migrated it.", db.Backend(), where, have, want),
			"run the newer lipa; Lipa's migrations only add, so this one keeps working meanwhile.")
	default:
		d.add(checkDatabase, statusOK, fmt.Sprintf("the %s database at %s answers; its schema is current (migration %d).", db.Backend(), where, have), "")
	}
}

// readToken finds the callback token Lipa uses: LIPA_CALLBACK_TOKEN, or in
// simulator mode the one `lipa serve` generated and stored.
func (d *doctor) readToken(ctx context.Context) {
	d.token, d.tokenKnown = d.cfg.CallbackToken, true
	if d.token != "" || d.cfg.Environment != envSimulator {
		return
	}
	d.tokenKnown = false
	if d.db == nil {
		return
	}
	var v string
	err := d.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		v, err = tx.Setting(ctx, "simulator_callback_token")
		return err
	})
	if err == nil {
		d.token, d.tokenKnown = lipa.Secret(v), v != ""
	}
}

// startDaraja prepares the Daraja client of the checks: pointed at Daraja
// (or MPESA_BASE_URL), or in simulator mode at a built-in simulator
// started for the occasion, as `lipa serve` would. It returns the function
// that stops that simulator.
func (d *doctor) startDaraja() (stop func()) {
	stop = func() {}
	d.baseURL = d.cfg.darajaBaseURL("")
	if d.cfg.Environment == envSimulator && d.cfg.BaseURL == "" {
		sim := darajasim.New(darajasim.Config{ShortCodes: map[string]lipa.Secret{d.cfg.ShortCode: d.cfg.Passkey}, Logger: slog.New(slog.DiscardHandler)})
		srv, err := newLoopbackServer(sim)
		if err != nil {
			sim.Close()
			return stop
		}
		d.builtIn, d.baseURL = true, srv.URL
		stop = func() { srv.Close(); sim.Close() }
	}
	d.dates = &dateRecorder{next: doctorTransport(), now: d.now}
	client, err := daraja.New(daraja.Config{
		BaseURL: d.baseURL, ConsumerKey: d.cfg.ConsumerKey, ConsumerSecret: d.cfg.ConsumerSecret, Timeout: d.cfg.DarajaTimeout,
		HTTPClient: &http.Client{Transport: d.dates, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	})
	if err == nil {
		d.client = client
	}
	return stop
}

// doctorTransport is the HTTP transport of the Daraja checks: the
// standard one with the Daraja client's own dial and TLS limits.
func doctorTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// checkOAuth asks Daraja for an access token with the consumer key and
// secret.
func (d *doctor) checkOAuth(ctx context.Context) {
	if d.client == nil {
		d.add(checkOAuth, statusSkip, "no Daraja client could be made from the configuration (see config above).", "")
		return
	}
	_, err := d.client.Token(ctx)
	var apiErr *daraja.APIError
	var authErr *daraja.AuthError
	switch {
	case err == nil:
		d.gotToken = true
		if d.builtIn {
			d.add(checkOAuth, statusOK, "the built-in simulator, started for this check, issued an access token (it accepts any consumer key and secret; in sandbox and production this checks MPESA_CONSUMER_KEY and MPESA_CONSUMER_SECRET with Safaricom).", "")
			return
		}
		d.add(checkOAuth, statusOK, fmt.Sprintf("Daraja at %s issued an access token for MPESA_CONSUMER_KEY and MPESA_CONSUMER_SECRET.", d.baseURL), "")
	case errors.As(err, &authErr), errors.As(err, &apiErr) && apiErr.Reason() == daraja.ReasonWrongCredentials:
		d.add(checkOAuth, statusFail, fmt.Sprintf("Daraja at %s refused MPESA_CONSUMER_KEY and MPESA_CONSUMER_SECRET: %v.", d.baseURL, err),
			"copy the consumer key and secret of your app on the Daraja portal again (no spaces): keys of the sandbox do not work in production, nor the other way round.")
	case daraja.RateLimited(err):
		d.add(checkOAuth, statusWarn, fmt.Sprintf("Daraja at %s refused the token request for its rate, so the credentials could not be checked: %v.", d.baseURL, err), "run `lipa doctor` again in a minute.")
	default:
		d.add(checkOAuth, statusFail, fmt.Sprintf("no access token from Daraja at %s: %v.", d.baseURL, err), d.reachFix(err))
	}
}

// reachFix says what to do about a Daraja call that got no usable answer.
func (d *doctor) reachFix(err error) string {
	switch {
	case errors.Is(err, daraja.ErrUnreachable):
		return "check this machine's network, DNS, firewall and proxy (HTTPS_PROXY) towards Daraja, and MPESA_BASE_URL if you set it."
	case errors.Is(err, daraja.ErrTimeout):
		return fmt.Sprintf("Daraja did not answer within MPESA_TIMEOUT (%s): check the network path to it, or try again later.", d.cfg.DarajaTimeout)
	}
	return "check MPESA_BASE_URL (unset, Lipa uses Safaricom's URL for MPESA_ENVIRONMENT) and any proxy between Lipa and Daraja."
}

// checkClock compares this machine's clock with the Date header of
// Daraja's first answer.
func (d *doctor) checkClock() {
	switch date, at, ok := d.dates.first(); {
	case d.builtIn:
		d.add(checkClock, statusSkip, "the built-in simulator runs on this machine's clock, so there is nothing to compare it with; in sandbox and production it is compared with Daraja's Date header.", "")
	case d.client == nil || !ok:
		d.add(checkClock, statusSkip, "no answer from Daraja with a Date header to compare this machine's clock with.", "")
	default:
		skew := at.Sub(date).Truncate(time.Second)
		if skew > -maxClockSkew && skew < maxClockSkew {
			d.add(checkClock, statusOK, fmt.Sprintf("this machine's clock is %s from Daraja's Date header (%s); up to %d s is fine.", skew.Abs(), date.UTC().Format(time.RFC3339), int(maxClockSkew.Seconds())), "")
			return
		}
		side := "ahead of"
		if skew < 0 {
			side, skew = "behind", -skew
		}
		d.add(checkClock, statusFail, fmt.Sprintf("this machine's clock is %s %s Daraja's (its Date header said %s, this machine %s).", skew, side, date.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)),
			"synchronise the clock (NTP: timedatectl set-ntp true, or chrony): STK passwords carry the time, access tokens expire by it, and webhook receivers refuse signatures 5 minutes off.")
	}
}

// checkPasskey asks Daraja about a CheckoutRequestID no push ever had.
// Daraja checks the Password (shortcode + passkey + timestamp) before it
// looks the ID up, so "The transaction does not Exist" means the shortcode
// and passkey are right, "Wrong credentials" that they do not fit, and
// "Merchant does not exist" that the shortcode is not on M-Pesa Express:
// the answer is classified with internal/daraja's one table. Nobody is
// prompted and no payment is made.
func (d *doctor) checkPasskey(ctx context.Context) {
	if !d.gotToken {
		d.add(checkPasskey, statusSkip, "needs an access token from Daraja (see daraja-oauth).", "")
		return
	}
	sc := d.cfg.ShortCode
	_, err := d.client.STKQuery(ctx, sc, d.cfg.Passkey, probeCheckoutID)
	var apiErr *daraja.APIError
	if !errors.As(err, &apiErr) {
		switch {
		case err == nil:
			d.add(checkPasskey, statusWarn, fmt.Sprintf("Daraja answered an STK query for a made-up CheckoutRequestID with a result, so it does not tell whether MPESA_PASSKEY fits shortcode %s.", sc), "watch the first real push: \"Wrong credentials\" there means the passkey does not fit.")
		case daraja.RateLimited(err):
			d.add(checkPasskey, statusWarn, fmt.Sprintf("Daraja refused the STK query for its rate, so the passkey could not be checked: %v.", err), "run `lipa doctor` again in a minute.")
		default:
			d.add(checkPasskey, statusFail, fmt.Sprintf("no answer from Daraja to an STK query: %v.", err), d.reachFix(err))
		}
		return
	}
	said := fmt.Sprintf("%s %q", apiErr.ErrorCode, apiErr.ErrorMessage)
	switch apiErr.Reason() {
	case daraja.ReasonTransactionNotFound:
		where := "Daraja"
		if d.builtIn {
			where = "the built-in simulator (set up with this shortcode and passkey)"
		}
		d.add(checkPasskey, statusOK, fmt.Sprintf("%s accepts MPESA_SHORTCODE %s with MPESA_PASSKEY: an STK query for a made-up CheckoutRequestID got %s, so nobody was prompted.", where, sc, said), "")
	case daraja.ReasonWrongCredentials:
		d.add(checkPasskey, statusFail, fmt.Sprintf("Daraja answered an STK query with %s: MPESA_PASSKEY is not the Lipa na M-Pesa Online passkey of MPESA_SHORTCODE %s.", said, sc),
			"set MPESA_PASSKEY to the passkey Safaricom sent for this shortcode (the sandbox's 174379 has the public sandbox passkey); for a till, MPESA_SHORTCODE is the store or head-office number, not the till.")
	case daraja.ReasonMerchantNotFound:
		d.add(checkPasskey, statusFail, fmt.Sprintf("Daraja answered an STK query with %s: shortcode %s is not set up for M-Pesa Express (Lipa na M-Pesa Online).", said, sc),
			"check MPESA_SHORTCODE; a live shortcode needs M-Pesa Express enabled by Safaricom (go-live) before pushes work.")
	case daraja.ReasonNoAPIProduct:
		d.add(checkPasskey, statusFail, fmt.Sprintf("Daraja answered an STK query with %s: the Daraja app of MPESA_CONSUMER_KEY lacks the M-Pesa Express product.", said),
			"add M-Pesa Express to your app on the Daraja portal, or use the keys of an app that has it.")
	case daraja.ReasonInvalidField:
		fix := "check MPESA_SHORTCODE (5 to 7 digits) and MPESA_PASSKEY."
		if strings.EqualFold(apiErr.Field(), "Timestamp") {
			fix = "check this machine's clock (see clock)."
		}
		s := statusFail
		if apiErr.Class() != daraja.ClassConfiguration {
			s, fix = statusWarn, "this answer does not tell whether the passkey fits; watch the first real push."
		}
		d.add(checkPasskey, s, fmt.Sprintf("Daraja refused the STK query's %s: %s.", apiErr.Field(), said), fix)
	default:
		if apiErr.Class() == daraja.ClassConfiguration {
			d.add(checkPasskey, statusFail, fmt.Sprintf("Daraja refused the STK query for Lipa's configuration: %s.", said), "check MPESA_SHORTCODE, MPESA_PASSKEY and the Daraja app's products on the portal.")
			return
		}
		d.add(checkPasskey, statusWarn, fmt.Sprintf("Daraja answered the STK query with %s, which does not tell whether MPESA_PASSKEY fits shortcode %s.", said, sc), "run `lipa doctor` again later; if it persists, watch the first real push.")
	}
}

// checkTransactionType checks that MPESA_TRANSACTION_TYPE, MPESA_SHORTCODE
// and MPESA_PARTY_B are the pairing of Daraja reference §4.2. Daraja can
// only tell on a real push (callback ResultCode 2028), so this is read from
// the configuration alone.
func (d *doctor) checkTransactionType() {
	c := d.cfg
	partyB := c.PartyB
	if partyB == "" {
		partyB = c.ShortCode
	}
	switch c.TransactionType {
	case daraja.PayBillOnline:
		if partyB != c.ShortCode {
			d.add(checkTxnType, statusWarn, fmt.Sprintf("MPESA_PARTY_B %s differs from MPESA_SHORTCODE %s with CustomerPayBillOnline: for a paybill, PartyB is the paybill itself.", partyB, c.ShortCode),
				fmt.Sprintf("unset MPESA_PARTY_B; or, if %s is a till, set MPESA_TRANSACTION_TYPE=CustomerBuyGoodsOnline.", partyB))
			return
		}
		d.add(checkTxnType, statusOK, fmt.Sprintf("CustomerPayBillOnline: customers pay paybill %s (Daraja judges the pairing only on a real push).", c.ShortCode), "")
	case daraja.BuyGoodsOnline:
		if partyB == c.ShortCode {
			d.add(checkTxnType, statusWarn, fmt.Sprintf("CustomerBuyGoodsOnline with MPESA_SHORTCODE and MPESA_PARTY_B both %s: for a till, MPESA_SHORTCODE is the store or head-office number and MPESA_PARTY_B the till, usually two numbers.", partyB),
				"check both numbers against Safaricom's go-live letter; a wrong pairing fails every push with ResultCode 2028.")
			return
		}
		d.add(checkTxnType, statusOK, fmt.Sprintf("CustomerBuyGoodsOnline: customers pay till %s of store %s (Daraja judges the pairing only on a real push).", partyB, c.ShortCode), "")
	default:
		d.add(checkTxnType, statusSkip, "MPESA_TRANSACTION_TYPE is not valid (see config above).", "")
	}
}

// checkCallbackURL checks the STK callback URL Lipa sends with every push
// (MPESA_CALLBACK_URL with the token appended) the way Safaricom will: https
// in production, a host that resolves to public addresses, no word
// Safaricom refuses, one of Lipa's callback paths, ending in the token.
func (d *doctor) checkCallbackURL(ctx context.Context) {
	c := d.cfg
	if c.Environment == envSimulator {
		where := "Lipa's own address"
		if c.CallbackURL != "" {
			where = redactToken(c.CallbackURL, d.token)
		}
		d.add(checkCallbackURL, statusSkip, fmt.Sprintf("simulator mode: the simulator calls %s on this machine; Safaricom's rules for callback URLs (https, public, no refused word, the token) are checked in sandbox and production.", where), "")
		return
	}
	u, err := url.Parse(c.CallbackURL)
	if c.CallbackURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(c.CallbackURL, " \t") {
		d.callbackBad = true
		d.add(checkCallbackURL, statusSkip, "MPESA_CALLBACK_URL is missing or not an absolute http(s) URL (see config above).", "")
		return
	}
	shown := redactToken(c.CallbackURL, d.token)
	fails := 0
	// fail reports a problem; shared says whether the C2B URLs, which
	// share only the scheme, host and token, have it too.
	fail := func(shared bool, message, fix string) {
		fails++
		d.callbackBad = d.callbackBad || shared
		d.add(checkCallbackURL, statusFail, message, fix)
	}
	if c.Environment == envProduction && u.Scheme != "https" {
		fail(true, fmt.Sprintf("MPESA_CALLBACK_URL %s uses http: Safaricom calls only https URLs in production.", shown),
			"serve Lipa behind a reverse proxy with a TLS certificate (docs/DEPLOY.md) and set MPESA_CALLBACK_URL to its https:// URL.")
	}
	bare := c.CallbackURL // the token's own words are config's finding
	if d.token != "" {
		bare = strings.ReplaceAll(bare, d.token.Reveal(), "")
	}
	if w := daraja.RefusedURLWord(bare); w != "" {
		fail(daraja.RefusedURLWord(u.Host) != "", fmt.Sprintf("MPESA_CALLBACK_URL %s contains %q, a word Safaricom refuses in callback URLs: Daraja refuses the push (400.002.02 Invalid CallBackURL) or never calls it.", shown, w),
			"use Lipa's path /api/stk/callback/ on a host name without mpesa, m-pesa, safaricom, exe, exec, cmd, sql or query.")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		fail(false, fmt.Sprintf("MPESA_CALLBACK_URL %s has a query or fragment: Lipa appends the token to the path, so Safaricom would call a URL Lipa does not serve.", shown),
			"remove the ?… and #… part; the token in the path is what identifies Lipa's callbacks.")
	}
	path := strings.TrimSuffix(u.Path, "/") + "/"
	switch {
	case d.token != "" && strings.Contains(c.CallbackURL, d.token.Reveal()):
		fail(false, fmt.Sprintf("MPESA_CALLBACK_URL %s already holds LIPA_CALLBACK_TOKEN: Lipa appends the token itself, so Safaricom would call …/{LIPA_CALLBACK_TOKEN}/{LIPA_CALLBACK_TOKEN}/, which Lipa does not serve.", shown),
			"set MPESA_CALLBACK_URL to the bare path, e.g. https://pay.example.com/api/stk/callback/.")
	case !strings.HasSuffix(path, "/api/stk/callback/") && !strings.HasSuffix(path, "/api/mpesa/stk-callback/"):
		fail(false, fmt.Sprintf("MPESA_CALLBACK_URL %s does not end in Lipa's callback path /api/stk/callback/: Safaricom would post results where Lipa does not take them.", shown),
			"set MPESA_CALLBACK_URL to https://<your host>/api/stk/callback/ (a reverse proxy may put a prefix before /api/).")
	}
	if d.token == "" {
		fail(true, fmt.Sprintf("the callback URL %s does not end in a secret token (LIPA_CALLBACK_TOKEN is unset): anyone who finds it can post forged callbacks.", shown),
			"generate a token with `lipa callback-token`, set LIPA_CALLBACK_TOKEN, and remove MPESA_ALLOW_TOKENLESS_CALLBACKS once Safaricom calls the new URL.")
	}
	addrs, why := d.publicHost(ctx, u.Hostname())
	if why != "" {
		if strings.HasPrefix(why, "warn:") {
			d.add(checkCallbackURL, statusWarn, strings.TrimPrefix(why, "warn:"), "check from outside that the host resolves to this Lipa's public address (your DNS provider's panel, or dig from another network).")
		} else {
			fail(true, why, "use a public host name whose DNS points at the reverse proxy in front of Lipa; Safaricom calls from the internet. (If this machine's DNS answers differently from the public one, check from outside.)")
		}
	}
	if fails == 0 && !strings.HasPrefix(why, "warn:") {
		d.add(checkCallbackURL, statusOK, fmt.Sprintf("Safaricom will call %s: %s, public (%s), no refused word, ending in the token.", redactToken(withToken(c.CallbackURL, d.token), d.token), u.Scheme, addrs), "")
	}
}

// publicHost resolves host and says why Safaricom could not reach it: ""
// when every address is public (addrs lists them), a message when one is
// not or the name does not exist, and a message prefixed "warn:" when the
// lookup failed for another reason (this machine's DNS, not the name).
func (d *doctor) publicHost(ctx context.Context, host string) (addrs, why string) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		ips, err = d.resolve(rctx, "ip", host)
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			return "", fmt.Sprintf("the callback host %s does not exist in DNS, so Safaricom cannot call it.", host)
		case err != nil:
			return "", fmt.Sprintf("warn:the callback host %s could not be resolved from this machine (%v), so whether it is public is unknown.", host, err)
		case len(ips) == 0:
			return "", fmt.Sprintf("the callback host %s resolves to no address, so Safaricom cannot call it.", host)
		}
	}
	var list []string
	for _, ip := range ips {
		if kind := nonPublic(ip); kind != "" {
			return "", fmt.Sprintf("the callback host %s is %s, a %s address: Safaricom calls from the internet and cannot reach it.", host, ip, kind)
		}
		list = append(list, ip.String())
	}
	return strings.Join(list, ", "), ""
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// nonPublic names the kind of a that the internet cannot reach (loopback,
// private, link-local, ...), or returns "" for a public address.
func nonPublic(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	case sharedAddressSpace.Contains(a):
		return "carrier-grade NAT (shared)"
	}
	return ""
}

// checkC2BURLs checks the C2B URLs `lipa c2b register` gives Daraja: they
// share MPESA_CALLBACK_URL's scheme and host, so its host-level findings
// apply to them too, but not its path.
func (d *doctor) checkC2BURLs() {
	c := d.cfg
	if c.Environment == envSimulator {
		d.add(checkC2BURLs, statusSkip, "simulator mode: `lipa serve` gives the built-in simulator its own C2B URLs on this machine.", "")
		return
	}
	if d.callbackBad {
		d.add(checkC2BURLs, statusFail, "the C2B URLs are registered on MPESA_CALLBACK_URL's scheme and host, with the same token, so the callback-url failures above about those apply to them too.",
			"fix MPESA_CALLBACK_URL, then run `lipa c2b register` again.")
		return
	}
	validation, confirmation := c2bURLs(c)
	if u, err := url.Parse(c.CallbackURL); err == nil {
		if prefix, _, ok := strings.Cut(u.Path, "/api/"); ok && prefix != "" {
			d.add(checkC2BURLs, statusWarn, fmt.Sprintf("MPESA_CALLBACK_URL has the path prefix %s, but `lipa c2b register` registers %s and %s at the host's root.", prefix, redactToken(validation, d.token), redactToken(confirmation, d.token)),
				"make the reverse proxy pass /api/c2b/ on this host to Lipa as well.")
			return
		}
	}
	d.add(checkC2BURLs, statusOK, fmt.Sprintf("`lipa c2b register` registers %s and %s: same host as the callback URL, no refused word, ending in the token.", redactToken(validation, d.token), redactToken(confirmation, d.token)), "")
}

// checkC2BRegistered compares the C2B URLs Lipa last registered (its own
// record: Daraja has no API that reads registered URLs back) with the
// ones it would register now.
func (d *doctor) checkC2BRegistered(ctx context.Context) {
	c := d.cfg
	switch {
	case c.Environment == envSimulator && c.BaseURL == "":
		d.add(checkC2BRegistered, statusSkip, "simulator mode: `lipa serve` registers its C2B URLs with the built-in simulator every time it starts.", "")
		return
	case d.db == nil:
		d.add(checkC2BRegistered, statusSkip, "Lipa's record of its C2B registration is in the database, which could not be read (see database).", "")
		return
	}
	rec, err := lastC2BRegistration(ctx, d.db)
	if err != nil {
		d.add(checkC2BRegistered, statusSkip, fmt.Sprintf("Lipa's record of its C2B registration could not be read: %v.", err), "")
		return
	}
	if rec == nil {
		d.add(checkC2BRegistered, statusWarn, fmt.Sprintf("Lipa has no record of registering C2B URLs for shortcode %s. Daraja offers no way to read registered URLs back, so Lipa compares with what `lipa c2b register` recorded.", c.ShortCode),
			"if customers pay your paybill or till directly (C2B), run `lipa c2b register`; if you only use STK push, ignore this.")
		return
	}
	cfg := c
	cfg.CallbackToken = d.token
	want := newC2BRegistration(cfg, rec.RegisteredAt)
	var diff []string
	if rec.ShortCode != want.ShortCode {
		diff = append(diff, fmt.Sprintf("shortcode %s, now %s", rec.ShortCode, want.ShortCode))
	}
	if rec.BaseURL != want.BaseURL {
		diff = append(diff, fmt.Sprintf("Daraja at %s, now %s", rec.BaseURL, want.BaseURL))
	}
	if rec.ValidationURL != want.ValidationURL || rec.ConfirmationURL != want.ConfirmationURL {
		diff = append(diff, fmt.Sprintf("URLs %s and %s, now %s and %s", rec.ValidationURL, rec.ConfirmationURL, want.ValidationURL, want.ConfirmationURL))
	} else if rec.TokenHash != want.TokenHash {
		diff = append(diff, "an older LIPA_CALLBACK_TOKEN")
	}
	if rec.ResponseType != want.ResponseType {
		diff = append(diff, fmt.Sprintf("ResponseType %s, now %s", rec.ResponseType, want.ResponseType))
	}
	when := rec.RegisteredAt.UTC().Format(time.RFC3339)
	if len(diff) > 0 {
		d.add(checkC2BRegistered, statusFail, fmt.Sprintf("the C2B registration Lipa recorded on %s is not what it expects now (%s): C2B payments go to the old URLs.", when, strings.Join(diff, "; ")),
			"run `lipa c2b register`; in production, first delete the old URLs on the M-Pesa portal (URL Management), since Daraja will not replace them.")
		return
	}
	d.add(checkC2BRegistered, statusOK, fmt.Sprintf("Lipa registered %s and %s for shortcode %s with %s on %s, the URLs it expects (its own record: Daraja cannot be asked which URLs it holds).",
		rec.ValidationURL, rec.ConfirmationURL, rec.ShortCode, rec.BaseURL, when), "")
}

// c2bRegistrationSetting is the name under which Lipa keeps its record of
// the last successful `lipa c2b register` (table settings).
const c2bRegistrationSetting = "c2b_registration"

// c2bRegistration is Lipa's record of a successful C2B URL registration,
// stored as JSON. The URLs are kept with the token replaced by
// {LIPA_CALLBACK_TOKEN}; the token itself only as a SHA-256 prefix, enough
// to notice that it changed.
type c2bRegistration struct {
	BaseURL         string    `json:"base_url"`
	ShortCode       string    `json:"shortcode"`
	ResponseType    string    `json:"response_type"`
	Version         string    `json:"version"`
	ValidationURL   string    `json:"validation_url"`
	ConfirmationURL string    `json:"confirmation_url"`
	TokenHash       string    `json:"token_sha256"`
	RegisteredAt    time.Time `json:"registered_at"`
}

// newC2BRegistration is the record of registering cfg's C2B URLs at t.
func newC2BRegistration(cfg Config, t time.Time) c2bRegistration {
	validation, confirmation := c2bURLs(cfg)
	sum := sha256.Sum256([]byte(cfg.CallbackToken.Reveal()))
	return c2bRegistration{
		BaseURL: cfg.darajaBaseURL(""), ShortCode: cfg.ShortCode, ResponseType: cfg.C2BResponseType, Version: cfg.C2BVersion,
		ValidationURL: redactToken(validation, cfg.CallbackToken), ConfirmationURL: redactToken(confirmation, cfg.CallbackToken),
		TokenHash: hex.EncodeToString(sum[:8]), RegisteredAt: t.UTC(),
	}
}

// recordC2BRegistration stores the record of registering cfg's C2B URLs
// at t, replacing the previous one.
func recordC2BRegistration(ctx context.Context, cfg Config, t time.Time) error {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := json.Marshal(newC2BRegistration(cfg, t))
	if err != nil {
		return err
	}
	return db.InTx(ctx, func(tx *sqlstore.Tx) error {
		return tx.PutSetting(ctx, c2bRegistrationSetting, string(b))
	})
}

// lastC2BRegistration returns Lipa's record of its last C2B registration,
// or nil when there is none.
func lastC2BRegistration(ctx context.Context, db *sqlstore.DB) (*c2bRegistration, error) {
	var v string
	if err := db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		v, err = tx.Setting(ctx, c2bRegistrationSetting)
		return err
	}); err != nil || v == "" {
		return nil, err
	}
	var rec c2bRegistration
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return nil, fmt.Errorf("stored %s: %w", c2bRegistrationSetting, err)
	}
	return &rec, nil
}

// dateRecorder is an http.RoundTripper that passes requests to next and
// notes the Date header of the first answer carrying one, with the time
// this machine's clock read when the answer arrived.
type dateRecorder struct {
	next http.RoundTripper
	now  func() time.Time

	mu   sync.Mutex
	date time.Time // the first Date header seen; zero before
	at   time.Time // d.now() when it arrived
}

// RoundTrip implements http.RoundTripper.
func (d *dateRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil {
		at := d.now()
		if date, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			d.mu.Lock()
			if d.date.IsZero() {
				d.date, d.at = date, at
			}
			d.mu.Unlock()
		}
	}
	return resp, err
}

// first returns the first Date header seen and when it arrived; ok is
// false before any.
func (d *dateRecorder) first() (date, at time.Time, ok bool) {
	if d == nil {
		return time.Time{}, time.Time{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.date, d.at, !d.date.IsZero()
}
