package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/lipa-gateway/lipa"
)

// maxCachedKeys bounds the key cache: past it the cache starts empty again
// (each app's key is read once more), which bounds its memory whatever
// keys are presented. Only keys that belong to an app are kept.
const maxCachedKeys = 10_000

// keyCache resolves API keys (by their SHA-256) to apps from memory. What
// it holds was read under one auth epoch (sqlstore.Tx.AuthEpoch), which
// the database changes with every change of any app's keys or enabled
// state, whoever makes it; each authentication reads the epoch, and a
// different one empties the cache. So a rotation or a disable takes effect
// on the next request on every replica, as if nothing were cached, and a
// rotated key's grace period ends when it says (the entry keeps it).
type keyCache struct {
	mu    sync.Mutex
	epoch int64
	m     map[string]cachedKey
}

// cachedKey is an app as its key found it.
type cachedKey struct {
	app lipa.App
	// until is when the key stops working: zero for an app's current key,
	// the end of the grace period for its previous key.
	until time.Time
}

// get returns the app of the key hash if it was cached under epoch and is
// still valid at now. A cache read under another epoch is emptied.
func (c *keyCache) get(hash string, epoch int64, now time.Time) (*lipa.App, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		c.epoch, c.m = epoch, nil
		return nil, false
	}
	k, ok := c.m[hash]
	if !ok || (!k.until.IsZero() && !now.Before(k.until)) {
		return nil, false
	}
	app := k.app
	return &app, true
}

// put caches what the key hash resolved to under epoch, which the caller
// read before it read the app: so what is cached under an epoch was read
// after that epoch was current, never before a change it announces. Any
// other epoch (newer, or older: a request that raced a change, a restored
// database) empties the cache first; the next request that reads the
// current epoch corrects it.
func (c *keyCache) put(hash string, epoch int64, app *lipa.App, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch || c.m == nil || len(c.m) >= maxCachedKeys {
		c.epoch, c.m = epoch, map[string]cachedKey{}
	}
	c.m[hash] = cachedKey{app: *app, until: until}
}

// epochReads lets concurrent authentications share their reads of the
// auth epoch without ever using one that began before they arrived: while
// a read is under way, the requests that arrive wait for the next one,
// which starts when it ends and serves them all. So every authentication
// sees every change committed before its request arrived (a rotation or
// disable holds from the next request), and under load a handful of reads
// serve many requests.
type epochReads struct {
	mu   sync.Mutex
	cur  *epochRead // under way; nil when none
	next *epochRead // waiting for cur to end; nil when nobody waits
}

// epochRead is one read of the auth epoch; done is closed once epoch and
// err are set.
type epochRead struct {
	done  chan struct{}
	epoch int64
	err   error
}

// epoch returns the auth epoch as read by a read that began after this
// call did.
func (e *epochReads) epoch(ctx context.Context, read func(context.Context) (int64, error)) (int64, error) {
	e.mu.Lock()
	r := e.cur
	start := r == nil
	if start {
		r = &epochRead{done: make(chan struct{})}
		e.cur = r
	} else {
		if e.next == nil {
			e.next = &epochRead{done: make(chan struct{})}
		}
		r = e.next
	}
	e.mu.Unlock()
	if start {
		e.run(r, read)
	}
	select {
	case <-r.done:
		return r.epoch, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run performs read for r, then starts the read that waited for it, if
// any, on a goroutine of its own.
func (e *epochReads) run(r *epochRead, read func(context.Context) (int64, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), epochReadTimeout)
	r.epoch, r.err = read(ctx)
	cancel()
	e.mu.Lock()
	e.cur, e.next = e.next, nil
	next := e.cur
	e.mu.Unlock()
	close(r.done)
	if next != nil {
		go e.run(next, read)
	}
}

// epochReadTimeout bounds a shared read of the auth epoch: no one
// request's context may cut it short.
const epochReadTimeout = 10 * time.Second
