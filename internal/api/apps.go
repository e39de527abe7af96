package api

import (
	"context"
	"net/http"

	"github.com/lipa-gateway/lipa"
)

type ctxKey struct{}

// appFrom returns the app that authenticated the request, or nil.
func appFrom(r *http.Request) *lipa.App {
	a, _ := r.Context().Value(ctxKey{}).(*lipa.App)
	return a
}

// appHandler is a handler for an authenticated app.
type appHandler func(w http.ResponseWriter, r *http.Request, app *lipa.App) error

// authed authenticates the app by its X-API-KEY header (401 when missing,
// unknown or disabled) before calling h. A request with two X-API-KEY or
// Idempotency-Key headers, or a query parameter given twice, is 400
// ("duplicate_header", "duplicate_parameter"): the app meant one of them,
// and Lipa will not guess which.
func (s *Server) authed(h appHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := singleHeader(r, "X-API-KEY"); err != nil {
			return err
		}
		app, err := s.gw.Authenticate(r.Context(), r.Header.Get("X-API-KEY"))
		if err != nil {
			if lipa.ErrorKind(err) == lipa.Unauthorized {
				return s.authFailure(w, r, "API key", err)
			}
			return err
		}
		if err := s.apps.take(w, string(app.ID), "rate_limited", "requests from this app"); err != nil {
			return err
		}
		if err := singleHeader(r, "Idempotency-Key"); err != nil {
			return err
		}
		if err := singleParameters(r); err != nil {
			return err
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, app))
		return h(w, r, app)
	}
}

// authFailure counts a failed authentication (a missing or wrong key, what)
// against the request's source address and returns err; once the address
// is past LIPA_AUTH_FAILURES_PER_MINUTE it returns TooManyRequests
// "too_many_failed_auth" (429, Retry-After) instead, which slows guessing
// and tells a misconfigured client to stop. API keys and the admin key
// share the count. A valid key always passes: it never gets here.
func (s *Server) authFailure(w http.ResponseWriter, r *http.Request, what string, err error) error {
	src := s.guard.clientIP(r).String()
	if s.failures.exhausted(w, src) {
		return lipa.Errorf(lipa.TooManyRequests, "too_many_failed_auth", "too many requests with a missing or wrong %s from %s; wait a minute", what, src)
	}
	s.failures.take(w, src, "", "")
	w.Header().Del("Retry-After")
	return err
}
