package daraja

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/lipa-gateway/lipa"
)

// Base URLs of Daraja's two environments (docs/daraja.md "Conventions").
const (
	SandboxURL    = "https://sandbox.safaricom.co.ke"
	ProductionURL = "https://api.safaricom.co.ke"
)

const (
	// DefaultTimeout is the per-call timeout used when Config.Timeout is zero.
	DefaultTimeout = 30 * time.Second

	// tokenRefreshMargin is how long before expiry a cached token is
	// replaced (docs/daraja.md "OAuth": refresh early).
	tokenRefreshMargin = 60 * time.Second

	// maxBody caps how much of an answer is read; Daraja's bodies are tiny.
	maxBody = 1 << 20

	pathOAuth = "/oauth/v1/generate?grant_type=client_credentials"
)

// Operation names carried by errors (APIError.Op and friends) and logs.
const (
	opOAuth       = "oauth"
	opSTKPush     = "stk push"
	opSTKQuery    = "stk query"
	opC2BRegister = "c2b register"
	opC2BSimulate = "c2b simulate"
)

// ErrTimeout reports that a request was sent (a connection was made) but no
// complete answer came within Config.Timeout or before the caller's deadline.
// Daraja may have received and acted on the request: never resend an STK push
// on this error; resolve it with STKQuery or the callback (docs/daraja.md
// "M-Pesa Express"). Test with errors.Is; the underlying error is wrapped too.
var ErrTimeout = errors.New("no answer from Daraja in time (the request may have reached Daraja)")

// ErrUnreachable reports that no connection to Daraja could be made (DNS
// failure, connection refused, dial timeout, TLS handshake failure), so the
// request provably never reached Daraja and is safe to send again. Test with
// errors.Is; the underlying network error is wrapped too.
var ErrUnreachable = errors.New("no connection to Daraja (the request was not sent)")

// ErrNoToken reports that the OAuth token a request needs could not be had
// (whatever the reason, which is wrapped too: an *APIError, *AuthError,
// *BadResponseError, ErrTimeout, ErrUnreachable), so the request itself was
// never sent and is safe to send again. Test with errors.Is.
var ErrNoToken = errors.New("no access token from Daraja (the request was not sent)")

// Config configures a Client. Build it in cmd/ and pass it to New.
type Config struct {
	// BaseURL is Daraja's base URL, SandboxURL or ProductionURL, or a
	// local simulator's. Required: an absolute http or https URL without
	// query or fragment. Surrounding spaces and trailing slashes are
	// trimmed (docs/daraja.md "M-Pesa Express").
	BaseURL string
	// ConsumerKey and ConsumerSecret are the Daraja app's credentials for
	// OAuth (docs/daraja.md "OAuth"). Required; surrounding spaces are
	// trimmed (docs/daraja.md "M-Pesa Express").
	ConsumerKey    string
	ConsumerSecret lipa.Secret
	// Timeout bounds each HTTP call as a whole (connect, send, answer, body).
	// Default DefaultTimeout (30 s); negative is an error.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client with 10 s dial and TLS
	// handshake timeouts, TLS 1.2 or later, proxy from the environment, and
	// redirects not followed. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Now is the clock for token expiry and STK Timestamps. Default time.Now.
	Now func() time.Time
	// Logger receives one record per HTTP call (op, path, status, duration,
	// outcome, Daraja error code); never credentials or tokens. Default:
	// discard.
	Logger *slog.Logger
	// Observe, when set, is called once per HTTP call, after it ends, with
	// the API called ("oauth", "stk_push", "stk_query", "c2b_register",
	// "c2b_simulate": the operation with underscores), its outcome (as
	// logged: "ok", "api_error", "auth_error", "bad_response", "timeout",
	// "unreachable", "canceled", "transport_error") and its duration. For
	// metrics; it must be fast and safe for concurrent use.
	Observe func(api, outcome string, d time.Duration)

	// InitiatorName and InitiatorPassword are the M-Pesa API operator that
	// Reversal and TransactionStatus run as (docs/daraja.md "Initiator
	// credentials"). Optional: both empty leaves those calls unconfigured
	// (they return ErrNoInitiator); one without the other is an error.
	// Surrounding spaces of the name are trimmed.
	InitiatorName     string
	InitiatorPassword lipa.Secret
	// Certificate encrypts InitiatorPassword into the SecurityCredential.
	// Default: CertificateFor(BaseURL), Safaricom's production certificate
	// for ProductionURL and the sandbox one otherwise. A simulator with its
	// own key pair needs its own certificate here.
	Certificate *x509.Certificate
}

// Client calls Daraja. It caches one OAuth token for its credentials and is
// safe for concurrent use by any number of goroutines. Create it with New.
type Client struct {
	base    string
	key     string
	secret  lipa.Secret
	timeout time.Duration
	hc      *http.Client
	now     func() time.Time
	log     *slog.Logger
	observe func(api, outcome string, d time.Duration)

	flight singleflight.Group // collapses concurrent token fetches

	mu        sync.Mutex
	token     string    // cached access token, "" when none
	refreshAt time.Time // token is used until this instant (c.now clock)

	initiator  string      // Config.InitiatorName; "" when not configured
	credential lipa.Secret // SecurityCredential of the initiator
	health     healthState // what Health reports
}

// New returns a Client for cfg. It returns an error naming the setting when
// BaseURL is not an absolute http(s) URL, a credential is empty, Timeout is
// negative, or only one of InitiatorName and InitiatorPassword is set (or
// the password cannot be encrypted with the certificate). New makes no
// network calls.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("daraja: BaseURL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	key := strings.TrimSpace(cfg.ConsumerKey)
	if key == "" {
		return nil, errors.New("daraja: ConsumerKey is empty")
	}
	secret := lipa.Secret(strings.TrimSpace(cfg.ConsumerSecret.Reveal()))
	if secret == "" {
		return nil, errors.New("daraja: ConsumerSecret is empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("daraja: Timeout %v is negative", cfg.Timeout)
	}
	c := &Client{
		base:    base,
		key:     key,
		secret:  secret,
		timeout: cfg.Timeout,
		hc:      cfg.HTTPClient,
		now:     cfg.Now,
		log:     cfg.Logger,
		observe: cfg.Observe,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := c.initInitiator(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: t,
		// Daraja does not redirect; following one would turn a POST into a
		// GET elsewhere. A 3xx becomes a BadResponseError instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Token returns an OAuth access token for the client's credentials, fetching
// one with GET /oauth/v1/generate?grant_type=client_credentials and Basic
// auth when none is cached (docs/daraja.md "OAuth"). expires_in may be a JSON
// string ("3599") or number. A token is reused until 60 s before it expires
// (half its lifetime for lifetimes under 2 min), measured by Config.Now from
// when the request was sent, and never past expiry.
//
// Concurrent callers share one fetch. The fetch runs to completion (bounded
// by Config.Timeout) even when the caller that started it gives up; a caller
// whose ctx ends first gets ctx's error.
//
// Errors: *APIError with Op "oauth" for Daraja's error envelope
// (400.008.01 bad credentials, 400.008.02 bad grant type); *AuthError for
// HTTP 400/401 without an envelope (bad consumer key or secret, sandbox keys
// on the production host); *BadResponseError for any other unexpected answer
// (the snippet of a 2xx body is withheld, as it may hold a token);
// ErrUnreachable; ErrTimeout.
func (c *Client) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	ch := c.flight.DoChan("token", func() (any, error) {
		// A flight that finished just before this one started may have
		// stored a token already.
		if tok, ok := c.cachedToken(); ok {
			return tok, nil
		}
		return c.fetchToken(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("daraja %s: %w", opOAuth, ctx.Err())
	}
}

func (c *Client) cachedToken() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.refreshAt) {
		return c.token, true
	}
	return "", false
}

// dropToken forgets tok if it is still the cached token, so that of many
// requests refused with the same token only the first causes a new fetch.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
		c.refreshAt = time.Time{}
	}
}

func (c *Client) fetchToken(ctx context.Context) (string, error) {
	issued := c.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+pathOAuth, nil)
	if err != nil {
		return "", fmt.Errorf("daraja %s: %w", opOAuth, err)
	}
	req.SetBasicAuth(c.key, c.secret.Reveal())
	req.Header.Set("Accept", "application/json")

	start := time.Now()
	ans, err := c.send(ctx, opOAuth, req)
	var tok string
	var life time.Duration
	if err == nil {
		tok, life, err = ans.token()
	}
	c.logCall(ctx, opOAuth, "/oauth/v1/generate", 1, ans, time.Since(start), err)
	if err != nil {
		return "", err
	}

	margin := min(tokenRefreshMargin, life/2)
	c.mu.Lock()
	c.token = tok
	c.refreshAt = issued.Add(life - margin)
	c.mu.Unlock()
	c.health.token(issued, issued.Add(life))
	return tok, nil
}

// answer is one HTTP answer from Daraja, body read in full.
type answer struct {
	status      int
	contentType string
	body        []byte
}

func (a *answer) ok() bool { return a.status >= 200 && a.status <= 299 }

// token decodes an OAuth answer (docs/daraja.md "OAuth").
func (a *answer) token() (string, time.Duration, error) {
	if e := a.apiError(opOAuth); e != nil {
		return "", 0, e
	}
	if a.status == http.StatusBadRequest || a.status == http.StatusUnauthorized {
		return "", 0, &AuthError{HTTPStatus: a.status, ContentType: a.contentType, Snippet: snippet(a.body)}
	}
	if !a.ok() {
		return "", 0, a.badResponse(opOAuth, "no Daraja error envelope")
	}
	var w struct {
		AccessToken string     `json:"access_token"`
		ExpiresIn   flexString `json:"expires_in"`
	}
	bad := func(problem string) error {
		// Withhold the body: it may carry a token.
		return &BadResponseError{Op: opOAuth, HTTPStatus: a.status, ContentType: a.contentType, Problem: problem}
	}
	if err := json.Unmarshal(a.body, &w); err != nil {
		return "", 0, bad("token body is not the expected JSON object")
	}
	if w.AccessToken == "" {
		return "", 0, bad("no access_token")
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(w.ExpiresIn)), 64)
	if err != nil || secs < 1 || secs > 1e7 {
		return "", 0, bad(fmt.Sprintf("expires_in %q is not a positive number of seconds", string(w.ExpiresIn)))
	}
	return w.AccessToken, time.Duration(secs * float64(time.Second)), nil
}

// call POSTs body as JSON to path with the cached bearer token and returns a
// 2xx answer that is not Daraja's error envelope. A refusal of the token
// (ReasonInvalidToken) drops it, fetches a new one and sends the request once
// more; a second refusal is returned (docs/daraja.md "OAuth").
func (c *Client) call(ctx context.Context, op, path string, body any) (*answer, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("daraja %s: encode request: %w", op, err)
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("daraja %s: %w: %w", op, ErrNoToken, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return nil, fmt.Errorf("daraja %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")

		start := time.Now()
		ans, err := c.send(ctx, op, req)
		if err == nil {
			if e := ans.apiError(op); e != nil {
				err = e
			} else if !ans.ok() {
				err = ans.badResponse(op, "no Daraja error envelope")
			}
		}
		c.logCall(ctx, op, path, attempt, ans, time.Since(start), err)

		var apiErr *APIError
		if attempt == 1 && errors.As(err, &apiErr) && apiErr.Reason() == ReasonInvalidToken {
			c.dropToken(tok)
			continue
		}
		if err != nil {
			return nil, err
		}
		return ans, nil
	}
}

// send does one HTTP exchange bounded by c.timeout and reads the whole body.
// Transport failures become ErrUnreachable (no connection was made),
// ErrTimeout (connected, no answer in time), ctx's error (the caller gave
// up), or a wrapped error whose outcome is unknown.
func (c *Client) send(ctx context.Context, op string, req *http.Request) (*answer, error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var connected atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}
	req = req.WithContext(httptrace.WithClientTrace(cctx, trace))

	res, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, op, connected.Load(), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, transportError(ctx, op, true, err)
	}
	return &answer{status: res.StatusCode, contentType: res.Header.Get("Content-Type"), body: body}, nil
}

func transportError(ctx context.Context, op string, connected bool, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("daraja %s: %w", op, ctx.Err())
	case !connected:
		return fmt.Errorf("daraja %s: %w: %w", op, ErrUnreachable, err)
	case isTimeout(err):
		return fmt.Errorf("daraja %s: %w: %w", op, ErrTimeout, err)
	default:
		return fmt.Errorf("daraja %s: connection failed before an answer (the request may have reached Daraja): %w", op, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// logCall writes one record per HTTP exchange. It never logs bodies,
// credentials or tokens.
func (c *Client) logCall(ctx context.Context, op, path string, attempt int, ans *answer, d time.Duration, err error) {
	attrs := []slog.Attr{
		slog.String("op", op),
		slog.String("path", path),
		slog.Duration("duration", d),
	}
	if attempt > 1 {
		attrs = append(attrs, slog.Int("attempt", attempt))
	}
	if ans != nil {
		attrs = append(attrs, slog.Int("status", ans.status))
	}
	level, outcome := slog.LevelInfo, "ok"
	var apiErr *APIError
	var authErr *AuthError
	var badErr *BadResponseError
	switch {
	case err == nil:
	case errors.As(err, &apiErr):
		level, outcome = slog.LevelWarn, "api_error"
		attrs = append(attrs,
			slog.String("error_code", apiErr.ErrorCode),
			slog.String("reason", string(apiErr.Reason())),
			slog.String("daraja_request_id", apiErr.RequestID))
	case errors.As(err, &authErr):
		level, outcome = slog.LevelError, "auth_error"
	case errors.As(err, &badErr):
		level, outcome = slog.LevelWarn, "bad_response"
	case errors.Is(err, ErrTimeout):
		level, outcome = slog.LevelWarn, "timeout"
	case errors.Is(err, ErrUnreachable):
		level, outcome = slog.LevelWarn, "unreachable"
	case errors.Is(err, context.Canceled):
		outcome = "canceled"
	default:
		level, outcome = slog.LevelWarn, "transport_error"
	}
	attrs = append(attrs, slog.String("outcome", outcome))
	c.health.call(op, c.now(), err)
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	c.log.LogAttrs(ctx, level, "daraja call", attrs...)
	if c.observe != nil {
		c.observe(strings.ReplaceAll(op, " ", "_"), outcome, d)
	}
}
