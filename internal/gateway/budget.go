package gateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// hourlyBudgets hands out, per key, a budget of uses an hour (STK pushes to
// one phone, Daraja lookups of one app). It is per process, safe for
// concurrent use, and its map is reset when it holds more than 100 000
// keys, which bounds its memory.
type hourlyBudgets struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// take spends one of key's perHour budget at now; when there is none left
// it spends nothing and reports false and how long until there is one.
func (b *hourlyBudgets) take(key string, perHour int, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil || len(b.m) > 100_000 {
		b.m = map[string]*rate.Limiter{}
	}
	lim, ok := b.m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Every(time.Hour/time.Duration(perHour)), perHour)
		b.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
