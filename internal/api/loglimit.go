package api

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budgets of the log lines written for refused requests (wrong callback
// token, source not allowed, failed authentication, rate limits, any 4xx to
// a caller without an API key), so that nobody can fill the disk through
// Lipa's logs: per source, a burst of refusalLogBurst lines, then one every
// refusalLogEvery; over all sources together, a burst of
// refusalLogTotalBurst, then one a second.
const (
	refusalLogBurst      = 5
	refusalLogEvery      = 20 * time.Second
	refusalLogTotalBurst = 50
)

// logLimiter decides which of many similar log lines are written: a few a
// minute per key, the rest only counted. The count of lines left out for a
// key is reported with the next line written for it. Memory is bounded: the
// per-key state is dropped when it holds more than 100 000 keys. Safe for
// concurrent use.
type logLimiter struct {
	every time.Duration // one more line per key per every
	burst int           // lines per key at once
	total *rate.Limiter // lines over all keys
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*logBudget
}

type logBudget struct {
	lim     *rate.Limiter
	dropped int // lines left out since the last one written
}

// newLogLimiter returns a limiter allowing burst lines per key, then one
// per every, and totalBurst lines over all keys, then one a second.
func newLogLimiter(burst int, every time.Duration, totalBurst int) *logLimiter {
	return &logLimiter{every: every, burst: burst, total: rate.NewLimiter(1, totalBurst), now: time.Now}
}

// allow reports whether a line for key may be written now and, when it
// may, how many lines for key were left out before it.
func (l *logLimiter) allow(key string) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil || len(l.keys) > 100_000 {
		l.keys = map[string]*logBudget{}
	}
	b, found := l.keys[key]
	if !found {
		b = &logBudget{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = b
	}
	now := l.now()
	if !b.lim.AllowN(now, 1) || !l.total.AllowN(now, 1) {
		b.dropped++
		return false, 0
	}
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}

// sourceKey is the log budget key of a source address: the address, or
// for IPv6 its /64, which one client commonly has whole.
func sourceKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
