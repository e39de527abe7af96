package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa"
)

func mustPrefixes(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	ps, err := ParsePrefixes(list)
	if err != nil {
		t.Fatalf("ParsePrefixes(%q): %v", list, err)
	}
	return ps
}

// TestCallbackGuardParsePrefixes checks the LIPA_CALLBACK_ALLOWED_IPS and
// LIPA_TRUSTED_PROXIES syntax.
func TestCallbackGuardParsePrefixes(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    string // the prefixes, comma-separated; "" for none
		wantErr bool
	}{
		{in: "", want: ""},
		{in: " , ", want: ""},
		{in: "196.201.214.200", want: "196.201.214.200/32"},
		{in: "196.201.214.200, 10.0.0.0/8 ,::1", want: "196.201.214.200/32,10.0.0.0/8,::1/128"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "::ffff:196.201.214.200", want: "196.201.214.200/32"},
		{in: "not-an-ip", wantErr: true},
		{in: "196.201.214.200/33", wantErr: true},
		{in: "196.201.214.200:443", wantErr: true},
		{in: "196.201.214.0/24, x", wantErr: true},
	} {
		ps, err := ParsePrefixes(c.in)
		if c.wantErr {
			if err == nil {
				t.Errorf("ParsePrefixes(%q): got %v, want an error", c.in, ps)
			}
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("ParsePrefixes(%q): got %v (err %v), want %q", c.in, got, err, c.want)
		}
	}
}

// TestCallbackGuardClientIP checks which address a request comes from:
// the TCP peer, unless the peer is a trusted proxy, when it is the nearest
// untrusted hop of X-Forwarded-For.
func TestCallbackGuardClientIP(t *testing.T) {
	proxies := "127.0.0.1, 10.0.0.0/8"
	for _, c := range []struct {
		name    string
		trusted string
		peer    string
		xff     []string // header lines
		want    string
	}{
		{"peer, no proxies", "", "196.201.214.200:443", nil, "196.201.214.200"},
		{"spoofed header from an untrusted peer", "", "203.0.113.50:1234", []string{"196.201.214.200"}, "203.0.113.50"},
		{"spoofed header from a peer not in the proxies", proxies, "203.0.113.50:1234", []string{"196.201.214.200"}, "203.0.113.50"},
		{"trusted proxy", proxies, "127.0.0.1:1234", []string{"196.201.214.200"}, "196.201.214.200"},
		{"trusted proxy, no header", proxies, "127.0.0.1:1234", nil, "127.0.0.1"},
		{"client-prepended hop ignored", proxies, "127.0.0.1:1234", []string{"196.201.214.200, 203.0.113.50"}, "203.0.113.50"},
		{"two trusted proxies", proxies, "127.0.0.1:1234", []string{"196.201.214.200, 10.9.8.7"}, "196.201.214.200"},
		{"untrusted hop between proxies", proxies, "127.0.0.1:1234", []string{"196.201.214.200, 203.0.113.50, 10.9.8.7"}, "203.0.113.50"},
		{"header over several lines", proxies, "127.0.0.1:1234", []string{"203.0.113.50", "196.201.214.200"}, "196.201.214.200"},
		{"garbled header", proxies, "127.0.0.1:1234", []string{"196.201.214.200, junk"}, "127.0.0.1"},
		{"hop with a port", proxies, "127.0.0.1:1234", []string{"196.201.214.200:443"}, "127.0.0.1"},
		{"every hop trusted", proxies, "127.0.0.1:1234", []string{"10.1.1.1, 10.2.2.2"}, "127.0.0.1"},
		{"IPv4-mapped IPv6 peer", "", "[::ffff:196.201.214.200]:443", nil, "196.201.214.200"},
		{"IPv4-mapped IPv6 proxy and hop", proxies, "[::ffff:127.0.0.1]:1234", []string{"::ffff:196.201.214.200"}, "196.201.214.200"},
		{"IPv6 peer", "", "[2001:db8::1]:443", nil, "2001:db8::1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := CallbackGuard{TrustedProxies: mustPrefixes(t, c.trusted)}
			r := httptest.NewRequest(http.MethodPost, "/api/mpesa/stk-callback/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := g.clientIP(r).String(); got != c.want {
				t.Errorf("clientIP: got %s, want %s", got, c.want)
			}
		})
	}
}

// TestCallbackGuardCheck checks the path token and the source address
// layers: a missing or wrong token is NotFound, a source outside the
// allow-list Forbidden.
func TestCallbackGuardCheck(t *testing.T) {
	const token = "secTest_cbToken_7Qk2xV9pLm3Z"
	allowed := "196.201.214.200"
	for _, c := range []struct {
		name      string
		guard     CallbackGuard
		pathToken string
		src       string
		wantCode  string // "" when allowed
	}{
		{"right token, allowed source", CallbackGuard{Token: token}, token, "196.201.214.200", ""},
		{"no token", CallbackGuard{Token: token}, "", "196.201.214.200", "not_found"},
		{"no token, tokenless allowed", CallbackGuard{Token: token, AllowTokenless: true}, "", "196.201.214.200", ""},
		{"wrong token", CallbackGuard{Token: token}, "wrongtoken", "196.201.214.200", "not_found"},
		{"wrong token, tokenless allowed", CallbackGuard{Token: token, AllowTokenless: true}, "wrongtoken", "196.201.214.200", "not_found"},
		{"a token when none is configured", CallbackGuard{AllowTokenless: true}, "anything", "196.201.214.200", "not_found"},
		{"token prefix", CallbackGuard{Token: token}, token[:10], "196.201.214.200", "not_found"},
		{"token and more", CallbackGuard{Token: token}, token + "x", "196.201.214.200", "not_found"},
		{"source outside the allow-list", CallbackGuard{Token: token, Allowed: []netip.Prefix{netip.MustParsePrefix(allowed + "/32")}}, token, "203.0.113.50", "forbidden_source"},
		{"source in the allow-list", CallbackGuard{Token: token, Allowed: []netip.Prefix{netip.MustParsePrefix(allowed + "/32")}}, token, allowed, ""},
		{"wrong token from outside: 404 first", CallbackGuard{Token: token, Allowed: []netip.Prefix{netip.MustParsePrefix(allowed + "/32")}}, "wrongtoken", "203.0.113.50", "not_found"},
		{"unparsable source", CallbackGuard{Token: token, Allowed: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, token, "", "forbidden_source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/mpesa/stk-callback/"+c.pathToken+"/", nil)
			r.SetPathValue("token", c.pathToken)
			var src netip.Addr
			if c.src != "" {
				src = netip.MustParseAddr(c.src)
			}
			reason, err := c.guard.check(r, src)
			got := ""
			if err != nil {
				got = lipa.ErrorCode(err)
			}
			if got != c.wantCode {
				t.Fatalf("check: got code %q (reason %q), want %q", got, reason, c.wantCode)
			}
			if err != nil && reason == "" {
				t.Errorf("check: got no reason for the refusal, want one to log")
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("check: got the token in the error %q, want it redacted", err)
			}
		})
	}
}

// TestLimitersRetryAfter checks the token buckets behind the per-app and
// failed-authentication limits.
func TestLimitersRetryAfter(t *testing.T) {
	l := &limiters{limit: 1, burst: 2}
	for i := range 2 {
		if err := l.take(httptest.NewRecorder(), "app", "rate_limited", "requests"); err != nil {
			t.Fatalf("take %d within the burst: got %v, want nil", i+1, err)
		}
	}
	w := httptest.NewRecorder()
	err := l.take(w, "app", "rate_limited", "requests")
	if lipa.ErrorKind(err) != lipa.TooManyRequests || lipa.ErrorCode(err) != "rate_limited" {
		t.Fatalf("take beyond the burst: got %v, want TooManyRequests rate_limited", err)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want \"1\"", got)
	}
	if !l.exhausted(httptest.NewRecorder(), "app") {
		t.Errorf("exhausted after the burst: got false, want true")
	}
	if err := l.take(httptest.NewRecorder(), "other", "rate_limited", "requests"); err != nil {
		t.Errorf("another key: got %v, want its own bucket", err)
	}
	for _, off := range []*limiters{nil, {limit: 0, burst: 1}} {
		for range 100 {
			if err := off.take(httptest.NewRecorder(), "app", "rate_limited", "requests"); err != nil || off.exhausted(httptest.NewRecorder(), "app") {
				t.Fatalf("disabled limiter %+v: got %v, want never limited", off, err)
			}
		}
	}
}
