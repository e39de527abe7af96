package api

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestLogLimiter: a burst of lines per key, then one per interval, the
// lines left out counted and reported with the next one written; keys do
// not share budgets, and all keys together are capped.
func TestLogLimiter(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 21, 15, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l := newLogLimiter(5, 20*time.Second, 50)
	l.now = clock

	written := 0
	for range 3000 {
		if ok, dropped := l.allow("203.0.113.9"); ok {
			written++
			if dropped != 0 {
				t.Errorf("a line within the burst: got %d dropped before it, want 0", dropped)
			}
		}
	}
	if written != 5 {
		t.Errorf("3000 lines at once from one source: got %d written, want 5", written)
	}
	if ok, _ := l.allow("198.51.100.7"); !ok {
		t.Errorf("another source's first line: got dropped, want written")
	}
	advance(20 * time.Second)
	ok, dropped := l.allow("203.0.113.9")
	if !ok || dropped != 2995 {
		t.Errorf("the first line 20 s later: got written %v with %d dropped before it, want true with 2995", ok, dropped)
	}
	if ok, _ := l.allow("203.0.113.9"); ok {
		t.Errorf("a second line at once: got written, want dropped")
	}

	// All sources together: at most the total burst at once.
	g := newLogLimiter(5, 20*time.Second, 50)
	g.now = clock
	written = 0
	for i := range 1000 {
		if ok, _ := g.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()); ok {
			written++
		}
	}
	if written != 50 {
		t.Errorf("1000 sources at once: got %d lines written, want 50", written)
	}
}

func TestSourceKey(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "::ffff:203.0.113.9"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
	} {
		if got := sourceKey(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("sourceKey(%s): got %q, want %q", c.addr, got, c.want)
		}
	}
}
