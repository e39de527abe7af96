package api

// This file is what lets operators watch requests: the request ID on every
// answer and log line, HTTP metrics by route, and the operators' endpoints
// (/metrics, /debug/pprof/).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/metrics"
)

// HeaderRequestID is the header that carries a request's ID, in the
// request (the caller's own, when sane) and in every answer.
const HeaderRequestID = "X-Request-ID"

// maxRequestID is the longest caller's request ID Lipa keeps.
const maxRequestID = 64

type requestIDKey struct{}

// RequestID returns the ID of the request whose context ctx is (or derives
// from), or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDFor returns the caller's X-Request-ID when it is sane (one
// header, 1 to 64 visible ASCII characters, no spaces), else a new random
// one (32 hex digits).
func requestIDFor(r *http.Request) string {
	if vs := r.Header.Values(HeaderRequestID); len(vs) == 1 && saneRequestID(vs[0]) {
		return vs[0]
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// LogHandler wraps h so that every record logged with the context of a
// request this package serves (slog's …Context methods, LogAttrs) carries
// the request's ID as "request_id". cmd/lipa wraps the service's one
// logger with it, so the API's, the gateway's and the Daraja client's lines
// about a request all name it.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// ServeHTTP serves a request (see serve): it gives the request its ID
// (X-Request-ID, in the context and in the answer) and counts it in the
// metrics by the route pattern it matched, method and status.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestIDFor(r)
	w.Header().Set(HeaderRequestID, id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		route, ok := s.routeOf[r.Pattern]
		if !ok {
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.ObserveHTTP(route, methodLabel(r.Method), status, time.Since(start))
	}()
	s.serve(sw, r)
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends what is buffered (pprof's long profiles, streamed answers).
func (w *statusWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

// OperatorHandler serves the operators' endpoints: GET /metrics (m's
// registry in Prometheus' text format; 404 when m is nil) and Go's profiler
// under GET /debug/pprof/. It checks no credentials: mount it only behind
// the operators' authentication, as Server does behind X-ADMIN-KEY.
func OperatorHandler(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// operatorPatterns are the operators' endpoints OperatorHandler serves.
var operatorPatterns = []string{"GET /metrics", "GET /debug/pprof/"}

// operatorEndpoints returns OperatorHandler(m) behind X-ADMIN-KEY (404
// while LIPA_ADMIN_KEY is unset, 401 for a wrong key), with Lipa's JSON
// errors and security headers.
func (s *Server) operatorEndpoints(m *metrics.Metrics) http.Handler {
	ops := OperatorHandler(m)
	h := s.admin(func(w http.ResponseWriter, r *http.Request) error {
		ops.ServeHTTP(w, r)
		return nil
	})
	mux := http.NewServeMux()
	for _, pattern := range operatorPatterns {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if _, pattern := mux.Handler(r); pattern == "" {
			s.writeError(w, r, lipa.Errorf(lipa.NotFound, "not_found", "no endpoint at %s %s", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Operators returns /metrics and /debug/pprof/ behind X-ADMIN-KEY, for the
// operators' own listener (LIPA_ADMIN_ADDR) when Config.OperatorsElsewhere
// keeps them off this server. It answers 404 for any other path.
func (s *Server) Operators() http.Handler { return s.ops }

// IsOperatorPath reports whether path is one Operators serves.
func IsOperatorPath(path string) bool {
	return path == "/metrics" || strings.HasPrefix(path, "/debug/pprof/")
}

// operatorRoutes serves the operators' endpoints on this server's own
// routes, counted and listed like the others.
func (s *Server) operatorRoutes() {
	for _, pattern := range operatorPatterns {
		s.mux.Handle(pattern, s.ops)
		path := strings.TrimPrefix(pattern, "GET ")
		s.routeOf[pattern] = path
		s.routeList = append(s.routeList, Route{Method: http.MethodGet, Path: path})
	}
}
