// Package console is Lipa's web console for operators: server-rendered
// pages (html/template, templates and the stylesheet embedded) under
// /admin/, for people who run Lipa rather than apps that use it. It works
// without JavaScript and on a phone.
//
// Operators sign in with a username and password (accounts made with
// `lipa operators create`); sessions live in the database, so any replica
// serves any operator. A viewer sees what an admin sees and changes
// nothing: every change is a POST, and a viewer's POST is refused. Forms
// posted from another site are refused (http.CrossOriginProtection).
//
// Every page and action goes through the gateway, the same operations the
// CLI and the JSON admin API use.
package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

//go:embed templates static
var files embed.FS

// Config configures the console. The zero value is usable but for
// StatusOf, which cmd sets to the API's one error-to-status map.
type Config struct {
	// Logger receives a line per refused sign-in and failed request
	// (default slog.Default()).
	Logger *slog.Logger
	// Session bounds operator sessions (idle timeout, absolute lifetime).
	Session gateway.SessionPolicy
	// SecureCookies marks the session cookie Secure even when the request
	// did not come over TLS (LIPA_ADMIN_SECURE_COOKIES: set it behind a
	// reverse proxy that terminates https). Over TLS it is always Secure.
	SecureCookies bool
	// AllowedIPs, when not nil, are the only source addresses the console
	// answers (LIPA_ADMIN_ALLOWED_IPS); others get 403.
	AllowedIPs []netip.Prefix
	// SourceAddr returns a request's source address, believing
	// X-Forwarded-For only from trusted proxies. Default: the TCP peer.
	SourceAddr func(*http.Request) netip.Addr
	// StatusOf returns the HTTP status that answers an error (the API's
	// map from error kind to status). Default: 500 for everything that is
	// not a *lipa.Error of kind Invalid, Unauthorized, Forbidden, NotFound,
	// Conflict or TooManyRequests.
	StatusOf func(error) int
	// Settings is what the Settings page shows.
	Settings Settings
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Settings is the effective configuration as the Settings page shows it.
// cmd fills it; secrets must already be masked.
type Settings struct {
	Environment string // simulator, sandbox or production
	Version     string // the build's version
	// The URLs to give Safaricom, with the callback token masked.
	CallbackURL, C2BValidationURL, C2BConfirmationURL string
	// SeedURLs are the earlier service's callback paths (under
	// /api/mpesa/), still served for URLs Safaricom already has; Daraja
	// refuses new URLs with "mpesa" in them.
	SeedURLs []string
	Values   []Setting
}

// Setting is one configuration value.
type Setting struct {
	Name  string // the environment variable
	Value string // its effective value, masked when secret
	Note  string // what it means
}

// Server serves the console. It is an http.Handler for paths under /admin/,
// safe for concurrent use.
type Server struct {
	gw       *gateway.Gateway
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	pages    map[string]*template.Template
	cop      *http.CrossOriginProtection
	static   http.Handler
	signins  *signInLimits
	statsMu  sync.Mutex
	stats    map[time.Time]cachedDay // closed days of the dashboard, by Kenya midnight
	statsTTL time.Duration
}

// New returns the console over gw.
func New(gw *gateway.Gateway, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StatusOf == nil {
		cfg.StatusOf = defaultStatus
	}
	if cfg.SourceAddr == nil {
		cfg.SourceAddr = peerAddr
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	s := &Server{gw: gw, cfg: cfg, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux(), pages: map[string]*template.Template{},
		cop: http.NewCrossOriginProtection(), static: staticFiles(static),
		signins: newSignInLimits(), stats: map[time.Time]cachedDay{}, statsTTL: 5 * time.Minute}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("console refused a cross-site request", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"),
			"source", s.cfg.SourceAddr(r).String())
		s.errorPage(w, r, nil, http.StatusForbidden, "This form was sent from another site, so it was refused. Use the console's own pages.")
	}))
	for _, p := range []string{"login", "dashboard", "payments", "payment", "apps", "app", "secret", "intake", "webhooks", "settings", "error", "test_event",
		"review", "review_item", "audit"} {
		s.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /admin/login", s.loginForm)
	s.mux.HandleFunc("POST /admin/login", s.login)
	s.mux.HandleFunc("POST /admin/logout", s.logout)
	s.mux.Handle("GET /admin/static/", s.static)

	s.mux.HandleFunc("GET /admin/{$}", s.page(s.dashboard))
	s.mux.HandleFunc("GET /admin/payments", s.page(s.payments))
	s.mux.HandleFunc("GET /admin/payments.csv", s.page(s.paymentsCSV))
	s.mux.HandleFunc("GET /admin/payments/{id}", s.page(s.payment))
	s.mux.HandleFunc("GET /admin/apps", s.page(s.apps))
	s.mux.HandleFunc("POST /admin/apps", s.action(s.createApp))
	s.mux.HandleFunc("GET /admin/apps/{name}", s.page(s.app))
	s.mux.HandleFunc("POST /admin/apps/{name}/rotate-key", s.action(s.rotateKey))
	s.mux.HandleFunc("POST /admin/apps/{name}/disable", s.action(s.setDisabled(true)))
	s.mux.HandleFunc("POST /admin/apps/{name}/enable", s.action(s.setDisabled(false)))
	s.mux.HandleFunc("POST /admin/apps/{name}/webhook", s.action(s.setWebhook))
	s.mux.HandleFunc("POST /admin/apps/{name}/test-event", s.action(s.testEvent))
	s.mux.HandleFunc("GET /admin/intake", s.page(s.intake))
	s.mux.HandleFunc("GET /admin/webhooks", s.page(s.webhooks))
	s.mux.HandleFunc("POST /admin/webhooks/redeliver", s.action(s.redeliver))
	s.mux.HandleFunc("POST /admin/webhooks/resume", s.action(s.resume))
	s.mux.HandleFunc("GET /admin/review", s.page(s.review))
	s.mux.HandleFunc("GET /admin/review/{id}", s.page(s.reviewItem))
	for _, action := range []string{"match", "settle", "create-payment", "dismiss"} {
		s.mux.HandleFunc("POST /admin/review/{id}/"+action, s.action(s.resolveReview(action)))
	}
	s.mux.HandleFunc("GET /admin/audit", s.page(s.audit))
	s.mux.HandleFunc("GET /admin/settings", s.page(s.settings))
	s.mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	})
}

// ServeHTTP serves a console request: security headers on every answer,
// the source allow-list, the cross-origin check on every POST, then the
// page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	// Only the console's own stylesheet; no script at all; inline SVG
	// charts use presentation attributes and classes, not inline styles.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving console request", "method", r.Method, "path", r.URL.Path, "panic", v)
			s.errorPage(w, r, nil, http.StatusInternalServerError, "Something went wrong; the log has the details.")
		}
	}()
	if s.cfg.AllowedIPs != nil && !allowed(s.cfg.AllowedIPs, s.cfg.SourceAddr(r)) {
		s.log.Warn("console request from an address not in LIPA_ADMIN_ALLOWED_IPS", "source", s.cfg.SourceAddr(r).String(), "path", r.URL.Path)
		s.errorPage(w, r, nil, http.StatusForbidden, "The console is not available from your address.")
		return
	}
	if p := r.URL.Path; !strings.HasPrefix(p, "/admin") || (path.Clean(p) != p && path.Clean(p)+"/" != p) {
		s.errorPage(w, r, nil, http.StatusNotFound, "There is no such page.")
		return
	}
	if !cleanValues(r.URL.Query()) {
		s.errorPage(w, r, nil, http.StatusBadRequest, "The address holds text that is not valid UTF-8, or a NUL character.")
		return
	}
	s.cop.Handler(http.HandlerFunc(s.route)).ServeHTTP(w, r)
}

// cleanValues reports whether every key and value is valid UTF-8 without
// NUL bytes: no payment, name or password holds them, and PostgreSQL
// refuses such text outright.
func cleanValues(v url.Values) bool {
	for k, vs := range v {
		if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
			return false
		}
		for _, x := range vs {
			if !utf8.ValidString(x) || strings.ContainsRune(x, 0) {
				return false
			}
		}
	}
	return true
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		status := http.StatusNotFound
		msg := "There is no such page."
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status, msg = http.StatusMethodNotAllowed, "This page does not take "+r.Method+" requests."
		}
		s.errorPage(w, r, nil, status, msg)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handler is a console page or action for a signed-in operator; it returns
// its error instead of writing it.
type handler func(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error

// page wraps a page that any signed-in operator may see. Without a valid
// session, a GET is sent to the sign-in page.
func (s *Server) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, err := s.session(w, r)
		if err != nil {
			s.fail(w, r, nil, err)
			return
		}
		if err := h(w, r, op); err != nil {
			s.fail(w, r, op, err)
		}
	}
}

// action wraps a POST that changes something: admins only. A viewer's POST
// is refused with 403 before anything is read or changed.
func (s *Server) action(h handler) http.HandlerFunc {
	return s.page(func(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
		if op.Operator.Role != lipa.RoleAdmin {
			s.log.Warn("console refused a viewer's change", "operator", op.Operator.Username, "path", r.URL.Path)
			return lipa.Errorf(lipa.Forbidden, "viewer_read_only", "you are signed in as a viewer: viewers see everything and change nothing")
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil || !cleanValues(r.PostForm) {
			return lipa.Errorf(lipa.Invalid, "invalid_form", "the form could not be read, or holds text that is not valid UTF-8")
		}
		return h(w, r, op)
	})
}

// actor is who an operator's action is recorded as.
func actor(op *gateway.OperatorSession) gateway.Actor {
	return gateway.Actor{Kind: gateway.ActorConsole, Name: op.Operator.Username}
}

// fail answers err: a missing or ended session sends a GET to the sign-in
// page (and answers anything else 401); every other error is a page with
// the error's message and the status of its kind.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession, err error) {
	if lipa.ErrorKind(err) == lipa.Unauthorized {
		s.clearCookie(w, r)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next := ""
			if r.URL.Path != "/admin/" {
				next = "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, "/admin/login"+next, http.StatusSeeOther)
			return
		}
		s.errorPage(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		return
	}
	status := s.cfg.StatusOf(err)
	var le *lipa.Error
	msg := "Something went wrong; the log has the details."
	if errors.As(err, &le) && status < 500 {
		msg = le.Message
	}
	if status >= 500 {
		s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		s.log.Info("console request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", lipa.ErrorCode(err))
	}
	s.errorPage(w, r, op, status, msg)
}

// errorPage answers status with a page saying msg.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession, status int, msg string) {
	s.render(w, r, op, status, "error", "Error "+http.StatusText(status), "", struct {
		Status  int
		Text    string
		Message string
	}{status, http.StatusText(status), msg})
}

// view is what every template gets: the layout's fields and the page's own
// data in Page.
type view struct {
	Title    string
	Nav      string // the nav entry to mark as current
	Operator *lipa.Operator
	Admin    bool
	Page     any
}

// render writes a page with the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession, status int, page, title, nav string, data any) {
	v := view{Title: title, Nav: nav, Page: data}
	if op != nil {
		v.Operator = &op.Operator
		v.Admin = op.Operator.Role == lipa.RoleAdmin
	}
	var b strings.Builder
	if err := s.pages[page].Execute(&b, v); err != nil {
		s.log.Error("render console page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}

// staticFiles serves the embedded stylesheet and icon under
// /admin/static/, cacheable for an hour, without directory listings.
func staticFiles(fsys fs.FS) http.Handler {
	files := http.StripPrefix("/admin/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// defaultStatus is StatusOf when none is configured.
func defaultStatus(err error) int {
	switch lipa.ErrorKind(err) {
	case lipa.Invalid:
		return http.StatusBadRequest
	case lipa.Unauthorized:
		return http.StatusUnauthorized
	case lipa.Forbidden:
		return http.StatusForbidden
	case lipa.NotFound:
		return http.StatusNotFound
	case lipa.Conflict:
		return http.StatusConflict
	case lipa.TooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// peerAddr is the request's TCP peer.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func allowed(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
