package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// SafaricomCallbackIPs are the addresses Safaricom publishes for its
// callbacks (docs/daraja.md "Callback source addresses": the portal's list as recorded on
// 2026-08-08, plus two from an older list), the default allow-list in
// sandbox and production.
var SafaricomCallbackIPs = []string{
	"196.201.214.200", "196.201.214.206", "196.201.213.114", "196.201.214.207",
	"196.201.214.208", "196.201.213.44", "196.201.212.127", "196.201.212.138",
	"196.201.212.129", "196.201.212.136", "196.201.212.74", "196.201.212.69",
	"196.201.212.128", "196.201.212.132",
}

// CallbackGuard is who may call the Safaricom-facing endpoints (STK
// callback, C2B validation and confirmation), in layers.
type CallbackGuard struct {
	// Token is the secret path segment the callback URLs end with
	// (/api/mpesa/stk-callback/<token>/). A request with another token gets
	// 404.
	Token lipa.Secret
	// AllowTokenless accepts the bare paths without a token too, for
	// compatibility with URLs registered before tokens
	// (MPESA_ALLOW_TOKENLESS_CALLBACKS). Off, the bare paths answer 404.
	AllowTokenless bool
	// Allowed are the source addresses callbacks may come from; nil accepts
	// any. A request from elsewhere gets 403.
	Allowed []netip.Prefix
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed; the source is the nearest address in it that is not a
	// trusted proxy. From any other peer, X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
}

// ParsePrefixes reads a comma-separated list of IP addresses and CIDR
// prefixes ("196.201.214.200, 10.0.0.0/8, ::1").
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the request's source address: the TCP peer, or, when the
// peer is a trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (g CallbackGuard) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !contains(g.TrustedProxies, peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a garbled header: trust nothing in it
		}
		a = a.Unmap()
		if !contains(g.TrustedProxies, a) {
			return a
		}
	}
	return peer
}

// check returns why a Safaricom-facing request must be refused, with the
// error for the caller, or ("", nil) when it may go on.
func (g CallbackGuard) check(r *http.Request, src netip.Addr) (string, error) {
	token := r.PathValue("token")
	switch {
	case token == "" && !g.AllowTokenless:
		return "no callback token in the path", lipa.Errorf(lipa.NotFound, "not_found", "no endpoint at %s %s", r.Method, g.redactedPath(r))
	case token != "" && (g.Token == "" || !equalSecret(token, g.Token.Reveal())):
		return "wrong callback token in the path", lipa.Errorf(lipa.NotFound, "not_found", "no endpoint at %s %s", r.Method, g.redactedPath(r))
	case g.Allowed != nil && !contains(g.Allowed, src):
		return "source address " + src.String() + " is not allowed", lipa.Errorf(lipa.Forbidden, "forbidden_source", "requests from %s are not accepted on this endpoint", src)
	}
	return "", nil
}

func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// redactedPath is the request path with any callback token replaced, for
// logs, messages and stored payloads: the routed {token} segment, whatever
// it holds, and the configured token wherever it appears (a request that
// matched no route).
func (g CallbackGuard) redactedPath(r *http.Request) string {
	p := r.URL.Path
	if t := r.PathValue("token"); t != "" {
		p = strings.Replace(p, t, "{token}", 1)
	}
	if g.Token != "" {
		p = strings.ReplaceAll(p, g.Token.Reveal(), "{token}")
	}
	return p
}

// fromSafaricom wraps a Safaricom-facing handler: it reads the body, checks
// the path token and the source address (a refused request is stored and
// logged with the reason, and changes nothing), then calls h.
func (s *Server) fromSafaricom(kind gateway.InboundKind, h func(http.ResponseWriter, *http.Request, gateway.Inbound) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readInbound(w, r)
		if err != nil {
			return err
		}
		src := s.guard.clientIP(r)
		in := gateway.Inbound{Path: s.guard.redactedPath(r), SourceAddr: src.String(), Body: body}
		if reason, err := s.guard.check(r, src); err != nil {
			// Stored for the record, at most one a second (bursts of 60) per
			// source, so nobody can make Lipa write without limit; logged
			// at most a few lines a minute per source.
			stored := s.rejects.get(src.String()).Allow()
			if stored {
				s.gw.RejectInbound(r.Context(), kind, in, reason)
			}
			if ok, dropped := s.refusalLogs.allow(sourceKey(src)); ok {
				attrs := []any{"kind", kind, "source", src, "path", in.Path, "reason", reason, "stored", stored}
				if dropped > 0 {
					attrs = append(attrs, "suppressed", dropped)
				}
				s.log.WarnContext(r.Context(), "rejected a Safaricom-facing request", attrs...)
			}
			return &loggedError{err}
		}
		return h(w, r, in)
	}
}

// limiters hands out one token bucket per key (an app, a source address).
// The map is reset when it holds more than 100 000 keys, which bounds its
// memory; the limits are per process.
type limiters struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	limit rate.Limit
	burst int
}

func (l *limiters) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) > 100_000 {
		l.m = map[string]*rate.Limiter{}
	}
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	return lim
}

// take spends one token of key's bucket; when there is none it returns a
// TooManyRequests error with the given code and sets Retry-After.
func (l *limiters) take(w http.ResponseWriter, key, code, what string) error {
	if l == nil || l.limit <= 0 {
		return nil
	}
	res := l.get(key).Reserve()
	if d := res.Delay(); !res.OK() || d > 0 {
		res.Cancel()
		secs := int(math.Ceil(d.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return lipa.Errorf(lipa.TooManyRequests, code, "too many %s; retry after %d s", what, secs).With("retry_after", secs)
	}
	return nil
}

// exhausted reports whether key's bucket is empty now, without spending.
func (l *limiters) exhausted(w http.ResponseWriter, key string) bool {
	if l == nil || l.limit <= 0 {
		return false
	}
	if l.get(key).TokensAt(time.Now()) < 1 {
		w.Header().Set("Retry-After", "60")
		return true
	}
	return false
}
