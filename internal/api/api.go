// Package api is Lipa's HTTP interface: the app-facing REST API
// (X-API-KEY), the Safaricom-facing callback and C2B endpoints, and the
// health checks. Handlers return errors; writeError is the one place that
// turns an error's kind into an HTTP status and the JSON error body, and the
// one place request errors are logged.
package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/metrics"
)

// Limits on request bodies.
const (
	MaxAppBody     = 64 << 10 // bytes of an app's JSON request
	MaxInboundBody = 1 << 20  // bytes of a callback or C2B notification from Safaricom
)

// Config configures the HTTP layer.
type Config struct {
	// Logger receives one line per refused or failed request (default
	// slog.Default()).
	Logger *slog.Logger
	// AdminKey, when set, enables the operators' endpoints under /api/admin/
	// for requests carrying it in X-ADMIN-KEY (LIPA_ADMIN_KEY). Unset, they
	// answer 404.
	AdminKey lipa.Secret
	// Callbacks guards the Safaricom-facing endpoints.
	Callbacks CallbackGuard
	// AppRateLimit is each app's sustained request rate per second, with
	// bursts of twice that (LIPA_APP_RATE_LIMIT); 0 means no limit.
	AppRateLimit float64
	// AuthFailuresPerMinute caps failed authentications per source address
	// (LIPA_AUTH_FAILURES_PER_MINUTE); beyond it the address gets 429 before
	// its key is even looked at. 0 means no limit.
	AuthFailuresPerMinute int
	// Version is the running build's version, reported by /readyz as
	// "version" (empty: "unknown").
	Version string
	// Metrics counts every request by route pattern, method and status,
	// and is served at GET /metrics behind X-ADMIN-KEY (see
	// OperatorHandler); nil counts nothing.
	Metrics *metrics.Metrics
	// OperatorsElsewhere leaves /metrics and /debug/pprof/ out of this
	// server's routes (they answer 404 here): the operators' listener
	// (LIPA_ADMIN_ADDR) serves them instead, through Operators.
	OperatorsElsewhere bool
}

// Server routes Lipa's HTTP requests. It is an http.Handler, safe for
// concurrent use.
type Server struct {
	gw       *gateway.Gateway
	log      *slog.Logger
	mux      *http.ServeMux
	only     map[string]string // path → the one method it takes, for paths a wildcard route would take for other methods (onlyMethod)
	adminKey [32]byte          // SHA-256 of the admin key; zero when disabled
	guard    CallbackGuard
	apps     *limiters // requests per app
	failures *limiters // failed authentications per source address
	rejects  *limiters // stored rejected Safaricom-facing requests per source address
	version  string    // reported by /readyz

	refusalLogs *logLimiter // log lines of refused requests per source address
	routeList   []Route     // every route registered, for Routes

	metrics *metrics.Metrics
	routeOf map[string]string // mux pattern → the route label of its metrics
	ops     http.Handler      // /metrics and /debug/pprof/ behind X-ADMIN-KEY
}

// New returns the HTTP handler for gw.
func New(gw *gateway.Gateway, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{gw: gw, log: cfg.Logger, mux: http.NewServeMux(), guard: cfg.Callbacks,
		apps:     &limiters{limit: rate.Limit(cfg.AppRateLimit), burst: max(1, int(2*cfg.AppRateLimit))},
		failures: &limiters{limit: rate.Limit(float64(cfg.AuthFailuresPerMinute) / 60), burst: cfg.AuthFailuresPerMinute},
		rejects:  &limiters{limit: 1, burst: 60}, version: cfg.Version,
		metrics: cfg.Metrics, routeOf: map[string]string{}}
	if s.version == "" {
		s.version = "unknown"
	}
	s.refusalLogs = newLogLimiter(refusalLogBurst, refusalLogEvery, refusalLogTotalBurst)
	if cfg.AdminKey != "" {
		s.adminKey = sha256.Sum256([]byte(cfg.AdminKey.Reveal()))
	}
	s.routes()
	s.ops = s.operatorEndpoints(cfg.Metrics)
	if !cfg.OperatorsElsewhere {
		s.operatorRoutes()
	}
	return s
}

func (s *Server) routes() {
	// App-facing API: the earlier service's paths, with and without the
	// trailing slash.
	s.route("POST /api/stk-push/", s.authed(s.stkPush))
	s.route("GET /api/payments/", s.authed(s.listPayments))
	s.route("GET /api/payments/verify/", s.authed(s.verify))
	s.route("POST /api/payments/claim/", s.authed(s.claim))
	s.onlyMethod("/api/payments/claim/", "POST") // not GET /api/payments/{id}/ with id "claim"
	s.route("GET /api/payments/{id}/", s.authed(s.getPayment))
	s.route("POST /api/payments/{id}/refund/", s.authed(s.refund))
	s.route("GET /api/refunds/{id}/", s.authed(s.getRefund))
	s.route("GET /api/events/", s.authed(s.events))

	// Safaricom-facing: no API key (Safaricom sends none); a secret token
	// ends the path, and the bare paths work only when tokenless callbacks
	// are allowed. /api/stk/callback/ is the STK callback path to register:
	// Safaricom refuses URLs with "mpesa" in them (docs/daraja.md); the
	// seed's /api/mpesa/stk-callback/ stays for URLs already in use.
	for _, suffix := range []string{"", "{token}/"} {
		s.route("POST /api/stk/callback/"+suffix, s.fromSafaricom(gateway.KindSTKCallback, s.stkCallback))
		s.route("POST /api/mpesa/stk-callback/"+suffix, s.fromSafaricom(gateway.KindSTKCallback, s.stkCallback))
		for _, prefix := range []string{"/api/c2b/", "/api/mpesa/c2b/"} {
			s.route("POST "+prefix+"validation/"+suffix, s.fromSafaricom(gateway.KindC2BValidation, s.c2bValidation))
			s.route("POST "+prefix+"confirmation/"+suffix, s.fromSafaricom(gateway.KindC2BConfirmation, s.c2bConfirmation))
		}
	}

	// Daraja's asynchronous answers to Lipa's reversals, Transaction
	// Status queries and Pull registration, at paths without the words
	// Daraja refuses (docs/daraja.md "Lipa's result and timeout URLs").
	for _, suffix := range []string{"", "{token}/"} {
		for path, kind := range map[string]gateway.InboundKind{
			"/api/reversal/result/": gateway.KindReversalResult, "/api/reversal/timeout/": gateway.KindReversalTimeout,
			"/api/status/result/": gateway.KindStatusResult, "/api/status/timeout/": gateway.KindStatusTimeout,
			"/api/pull/callback/": gateway.KindPullCallback,
		} {
			s.route("POST "+path+suffix, s.fromSafaricom(kind, s.darajaResult(kind)))
		}
	}

	// Operators (X-ADMIN-KEY).
	s.route("GET /api/admin/callbacks/unmatched/", s.admin(s.unmatchedCallbacks))
	s.route("POST /api/admin/callbacks/{id}/match/", s.admin(s.matchCallback))
	s.route("GET /api/admin/review/", s.admin(s.listReview))
	s.route("GET /api/admin/review/{id}/", s.admin(s.showReview))
	for _, action := range []string{"match", "settle", "create-payment", "dismiss"} {
		s.route("POST /api/admin/review/{id}/"+action+"/", s.admin(s.resolveReview(action)))
	}
	s.route("GET /api/admin/audit/", s.admin(s.listAudit))
	s.route("GET /api/admin/refunds/", s.admin(s.adminRefunds))
	s.route("GET /api/admin/refunds/{id}/", s.admin(s.adminRefund))
	for _, action := range []string{"approve", "reject", "settle"} {
		s.route("POST /api/admin/refunds/{id}/"+action+"/", s.admin(s.decideRefund(action)))
	}
	s.route("POST /api/admin/transactions/status/", s.admin(s.adminTransactionStatus))

	s.route("GET /api/openapi.json", s.openAPI)

	s.route("GET /healthz", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route("GET /readyz", func(w http.ResponseWriter, r *http.Request) error {
		if err := s.gw.Ready(r.Context()); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "version": s.version})
	})
}

// handlerFunc is an HTTP handler that returns its error instead of writing
// it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route registers h for pattern ("METHOD /path/") and for the same path
// without its trailing slash.
func (s *Server) route(pattern string, h handlerFunc) {
	hh := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
	method, path, _ := strings.Cut(pattern, " ")
	s.routeList = append(s.routeList, Route{Method: method, Path: path})
	if strings.HasSuffix(path, "/") && path != "/" {
		s.mux.Handle(method+" "+path+"{$}", hh)
		s.mux.Handle(method+" "+strings.TrimSuffix(path, "/"), hh)
		s.routeOf[method+" "+path+"{$}"], s.routeOf[method+" "+strings.TrimSuffix(path, "/")] = path, path
		return
	}
	s.mux.Handle(pattern, hh)
	s.routeOf[pattern] = path
}

// onlyMethod makes path (with and without its trailing slash), which has a
// route for method (not GET), answer 405 method_not_allowed with "Allow:
// method" to every other method, also to GET and HEAD, which a GET route
// with a wildcard would otherwise take (GET /api/payments/claim/ is not the
// payment "claim").
func (s *Server) onlyMethod(path, method string) {
	if s.only == nil {
		s.only = map[string]string{}
	}
	s.only[strings.TrimSuffix(path, "/")] = method
	s.route("GET "+path, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", method)
		return lipa.Errorf(lipa.MethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, s.guard.redactedPath(r), method)
	})
	s.routeList = s.routeList[:len(s.routeList)-1] // a refusal, not an endpoint: Routes leaves it out
}

// serve serves a request for ServeHTTP. Unknown paths and methods get a
// JSON error, a panic becomes a JSON 500, and every response carries basic
// security headers.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", s.guard.redactedPath(r), "panic", v)
			s.writeError(w, r, lipa.Errorf(lipa.Internal, "internal_error", "internal error"))
		}
	}()
	if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p && path.Clean(p)+"/" != p {
		// The mux would answer an HTML redirect to the cleaned path.
		s.writeError(w, r, lipa.Errorf(lipa.NotFound, "not_found", "no endpoint at %s %s", r.Method, s.guard.redactedPath(r)))
		return
	}
	handler, pattern := s.mux.Handler(r)
	if pattern == "" {
		// Not found or method not allowed: let the mux decide which, then
		// answer in JSON.
		rec := &statusRecorder{header: http.Header{}}
		handler.ServeHTTP(rec, r)
		allow := rec.header.Get("Allow")
		if m, ok := s.only[strings.TrimSuffix(r.URL.Path, "/")]; ok {
			allow = m // the mux would also list the methods onlyMethod refuses
		}
		if allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusMethodNotAllowed {
			s.writeError(w, r, lipa.Errorf(lipa.MethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, s.guard.redactedPath(r), allow))
			return
		}
		s.writeError(w, r, lipa.Errorf(lipa.NotFound, "not_found", "no endpoint at %s %s", r.Method, s.guard.redactedPath(r)))
		return
	}
	if err := checkText(r.URL.Path, r.URL.Query()); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.mux.ServeHTTP(w, r) // sets the path values that mux.Handler does not
}

// statusRecorder captures the status and headers a handler writes, and
// drops its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

// statusOf is the one map from an error kind to an HTTP status.
var statusOf = map[lipa.Kind]int{
	lipa.Invalid:          http.StatusBadRequest,
	lipa.Unauthorized:     http.StatusUnauthorized,
	lipa.Forbidden:        http.StatusForbidden,
	lipa.TooManyRequests:  http.StatusTooManyRequests,
	lipa.NotFound:         http.StatusNotFound,
	lipa.MethodNotAllowed: http.StatusMethodNotAllowed,
	lipa.RequestTimeout:   http.StatusRequestTimeout,
	lipa.Conflict:         http.StatusConflict,
	lipa.TooLarge:         http.StatusRequestEntityTooLarge,
	lipa.Unprocessable:    http.StatusUnprocessableEntity,
	lipa.Upstream:         http.StatusBadGateway,
	lipa.Timeout:          http.StatusGatewayTimeout,
	lipa.Unavailable:      http.StatusServiceUnavailable,
	lipa.NotConfigured:    http.StatusNotImplemented,
	lipa.Internal:         http.StatusInternalServerError,
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// writeError answers err as {"error": {"code", "message", "details"}} with
// the status of its kind, and logs it: server-side failures (5xx) at error
// level with their cause, the rest at info. The cause is never sent to the
// client. Refusals (see refusal) are logged at most a few lines a minute
// per source address, each line counting those left out before it
// ("suppressed").
//
// A 503 (a database or Daraja that cannot serve the request now) always
// carries Retry-After: details.retry_after when the error names one, else
// DefaultRetryAfter.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorResponse(r, err)
	setRetryAfter(w, status, body)
	writeJSON(w, status, body)
}

// DefaultRetryAfter is the Retry-After of a 503 answer whose error names
// no wait of its own, in seconds.
const DefaultRetryAfter = 5

// setRetryAfter sets the Retry-After header of a 503 answer unless a
// handler already has.
func setRetryAfter(w http.ResponseWriter, status int, body errorBody) {
	if status != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "" {
		return
	}
	secs := DefaultRetryAfter
	if n, ok := body.Error.Details["retry_after"].(int); ok && n > 0 {
		secs = n
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

// errorResponse returns the status and body that answer err, and logs it
// (see writeError).
func (s *Server) errorResponse(r *http.Request, err error) (int, errorBody) {
	var le *lipa.Error
	if !errors.As(err, &le) {
		le = lipa.Errorf(lipa.Internal, "internal_error", "internal error").Wrap(err)
	}
	status, ok := statusOf[le.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.Details = le.Code, le.Message, le.Details
	if body.Error.Details == nil {
		body.Error.Details = map[string]any{}
	}
	attrs := []any{"method", r.Method, "path", s.guard.redactedPath(r), "status", status, "code", le.Code}
	if app := appFrom(r); app != nil {
		attrs = append(attrs, "app", app.Name)
	}
	if id, ok := le.Details["payment_id"]; ok {
		attrs = append(attrs, "payment_id", id)
	}
	var logged *loggedError
	switch {
	case errors.As(err, &logged):
	case status >= 500:
		s.log.ErrorContext(r.Context(), "request failed", append(attrs, "err", err)...)
	case s.refusal(r, le.Kind):
		ok, dropped := s.refusalLogs.allow(sourceKey(s.guard.clientIP(r)))
		if !ok {
			break
		}
		attrs = append(attrs, "source", s.guard.clientIP(r), "message", le.Message)
		if dropped > 0 {
			attrs = append(attrs, "suppressed", dropped)
		}
		s.log.InfoContext(r.Context(), "request refused", attrs...)
	default:
		s.log.InfoContext(r.Context(), "request refused", append(attrs, "message", le.Message)...)
	}
	return status, body
}

// refusal reports whether a 4xx answer of that kind refuses who is asking
// rather than what an app asked: a failed authentication, a source not
// allowed, a rate limit, or anything answered to a caller that did not
// authenticate as an app (a wrong callback token, an unknown path). Such
// requests can come by the thousand from one client.
func (s *Server) refusal(r *http.Request, k lipa.Kind) bool {
	switch k {
	case lipa.Unauthorized, lipa.Forbidden, lipa.TooManyRequests:
		return true
	}
	return appFrom(r) == nil
}

// loggedError is a request error its handler has logged already (under
// the same limits); writeError answers it without a second line.
type loggedError struct{ error }

func (e *loggedError) Unwrap() error { return e.error }

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// checkText refuses a request whose path or query parameters are not valid
// UTF-8 or hold a NUL byte: no payment, reference or receipt can contain
// them, and PostgreSQL refuses such text outright.
func checkText(path string, query map[string][]string) error {
	if !cleanText(path) {
		return lipa.Errorf(lipa.Invalid, "invalid_parameter", "the path is not valid UTF-8 or contains a NUL character")
	}
	for k, vs := range query {
		for _, v := range vs {
			if !cleanText(k) || !cleanText(v) {
				return lipa.InvalidField("invalid_parameter", truncate(strings.ToValidUTF8(k, "?"), 40), "query parameter %q is not valid UTF-8 or contains a NUL character", truncate(strings.ToValidUTF8(k, "?"), 40))
			}
		}
	}
	return nil
}

// cleanText reports whether s is valid UTF-8 without NUL bytes.
func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
