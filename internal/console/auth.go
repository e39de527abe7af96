package console

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// CookieName is the session cookie. It holds a random token; the database
// keeps only its SHA-256.
const CookieName = "lipa_session"

// Failed sign-ins: each source address and each username may fail
// signInBurst times, then once per signInEvery. Beyond that a sign-in is
// refused (429) before the password is even checked. Per process.
const (
	signInBurst = 10
	signInEvery = time.Minute
)

// signInLimits counts failed sign-ins per source address and per username.
type signInLimits struct {
	mu       sync.Mutex
	bySource map[string]*rate.Limiter
	byUser   map[string]*rate.Limiter
}

func newSignInLimits() *signInLimits {
	return &signInLimits{bySource: map[string]*rate.Limiter{}, byUser: map[string]*rate.Limiter{}}
}

func (l *signInLimits) limiter(m map[string]*rate.Limiter, key string) *rate.Limiter {
	lim, ok := m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Every(signInEvery), signInBurst)
		m[key] = lim
	}
	return lim
}

// blocked reports whether the source or the username has no failure left.
func (l *signInLimits) blocked(source, user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limiter(l.bySource, source).TokensAt(now) < 1 || l.limiter(l.byUser, user).TokensAt(now) < 1
}

// failed spends one failure of the source and of the username. The maps
// are reset past 10 000 keys, which bounds their memory.
func (l *signInLimits) failed(source, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bySource) > 10_000 || len(l.byUser) > 10_000 {
		l.bySource, l.byUser = map[string]*rate.Limiter{}, map[string]*rate.Limiter{}
	}
	l.limiter(l.bySource, source).AllowN(now, 1)
	l.limiter(l.byUser, user).AllowN(now, 1)
}

// session returns the signed-in operator of the request, or an
// Unauthorized error.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (*gateway.OperatorSession, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, lipa.Errorf(lipa.Unauthorized, "no_session", "sign in first")
	}
	return s.gw.Session(r.Context(), lipa.Secret(c.Value), s.cfg.Session)
}

type loginPage struct {
	Username string
	Next     string
	Error    string
}

// loginForm serves GET /admin/login; a signed-in operator goes to the
// dashboard.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if op, err := s.session(w, r); err == nil && op != nil {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	s.render(w, r, nil, http.StatusOK, "login", "Sign in", "", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// login serves POST /admin/login: the form's username and password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !cleanValues(r.PostForm) {
		s.render(w, r, nil, http.StatusBadRequest, "login", "Sign in", "", loginPage{Error: "The form could not be read."})
		return
	}
	user := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	page := loginPage{Username: user, Next: safeNext(r.PostForm.Get("next"))}
	source := s.cfg.SourceAddr(r).String()
	now := s.now()
	if s.signins.blocked(source, user, now) {
		s.log.Warn("console sign-in refused: too many failures", "operator", user, "source", source)
		w.Header().Set("Retry-After", "60")
		page.Error = "Too many failed sign-ins. Wait a minute and try again."
		s.render(w, r, nil, http.StatusTooManyRequests, "login", "Sign in", "", page)
		return
	}
	sess, token, err := s.gw.SignIn(r.Context(), gateway.Actor{Kind: gateway.ActorConsole, Name: user},
		gateway.SignInRequest{Password: lipa.Secret(r.PostForm.Get("password")), SourceAddr: source, UserAgent: r.UserAgent()}, s.cfg.Session)
	if err != nil {
		if lipa.ErrorKind(err) != lipa.Unauthorized {
			s.fail(w, r, nil, err)
			return
		}
		s.signins.failed(source, user, now)
		var le *lipa.Error
		page.Error = "Wrong username or password."
		if lipa.ErrorCode(err) == "operator_disabled" && errors.As(err, &le) {
			page.Error = le.Message
		}
		s.render(w, r, nil, http.StatusUnauthorized, "login", "Sign in", "", page)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token.Reveal(), Path: "/admin/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
	next := page.Next
	if next == "" {
		next = "/admin/"
	}
	s.log.Info("console sign-in", "operator", sess.Operator.Username, "role", sess.Operator.Role, "source", source)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout serves POST /admin/logout: the session ends on every replica.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		name := ""
		if op, err := s.gw.Session(r.Context(), lipa.Secret(c.Value), s.cfg.Session); err == nil {
			name = op.Operator.Username
		}
		if err := s.gw.SignOut(r.Context(), gateway.Actor{Kind: gateway.ActorConsole, Name: name}, lipa.Secret(c.Value)); err != nil {
			s.fail(w, r, nil, err)
			return
		}
	}
	s.clearCookie(w, r)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(CookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
}

// secure reports whether the session cookie must be Secure: over TLS, or
// when configured (TLS ends at a proxy in front of Lipa).
func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.cfg.SecureCookies }

// safeNext keeps a post-sign-in destination only when it is a console page
// of this site (never another site: no open redirect).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/admin/login") {
		return ""
	}
	return next
}
