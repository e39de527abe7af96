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
// unknown or disabled) before calling h.
func (s *Server) authed(h appHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		src := s.guard.clientIP(r).String()
		app, err := s.gw.Authenticate(r.Context(), r.Header.Get("X-API-KEY"))
		if err != nil {
			// A valid key always passes; failures from one address beyond
			// the limit get 429 instead of 401, which slows guessing and
			// tells a misconfigured client to stop.
			if lipa.ErrorKind(err) == lipa.Unauthorized && s.failures.exhausted(w, src) {
				return lipa.Errorf(lipa.TooManyRequests, "too_many_failed_auth", "too many requests with a missing or wrong API key from %s; wait a minute", src)
			}
			if lipa.ErrorKind(err) == lipa.Unauthorized {
				s.failures.take(w, src, "", "")
				w.Header().Del("Retry-After")
			}
			return err
		}
		if err := s.apps.take(w, string(app.ID), "rate_limited", "requests from this app"); err != nil {
			return err
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, app))
		return h(w, r, app)
	}
}
