package api

import (
	"errors"
	"net/http"
	"net/netip"

	"github.com/lipa-gateway/lipa"
)

// StatusOf returns the HTTP status that answers err: the status of its
// kind in the one map from error kinds to statuses, 500 for anything that
// is not a *lipa.Error. The operators' console answers with it too.
func StatusOf(err error) int {
	var le *lipa.Error
	if !errors.As(err, &le) {
		return http.StatusInternalServerError
	}
	if status, ok := statusOf[le.Kind]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// SourceAddr returns a function giving a request's source address as the
// callback guard sees it: the TCP peer, or, when the peer is one of the
// trusted proxies, the nearest untrusted address in X-Forwarded-For.
func SourceAddr(trustedProxies []netip.Prefix) func(*http.Request) netip.Addr {
	return CallbackGuard{TrustedProxies: trustedProxies}.clientIP
}
