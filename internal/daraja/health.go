package daraja

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Health is what one Client has seen of Daraja since it was made: when it
// last fetched an OAuth token, and the last call that failed. It is per
// process (each replica keeps its own). Zero times mean "never".
type Health struct {
	TokenFetchedAt time.Time // when the cached token was fetched
	TokenExpiresAt time.Time // when Daraja said it would expire
	LastCallAt     time.Time // the last HTTP exchange with Daraja, any outcome
	LastOKAt       time.Time // the last exchange that succeeded
	LastErrorAt    time.Time // the last exchange that failed
	LastErrorOp    string    // its operation: "oauth", "stk push", "stk query", …
	// LastError is that failure as Error() gives it: Daraja's code and
	// message, a timeout, an unreachable host. It holds no credentials or
	// tokens.
	LastError string
}

// healthState is the Client's record behind Health, safe for concurrent use.
type healthState struct {
	mu sync.Mutex
	h  Health
}

func (s *healthState) token(fetched, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.TokenFetchedAt, s.h.TokenExpiresAt = fetched, expires
}

func (s *healthState) call(op string, at time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.LastCallAt = at
	if err == nil {
		s.h.LastOKAt = at
		return
	}
	var apiErr *APIError
	if errors.Is(err, context.Canceled) || (errors.As(err, &apiErr) && apiErr.Reason() == ReasonInvalidToken) {
		return // the caller gave up, or a new token answers it: not Daraja's fault
	}
	s.h.LastErrorAt, s.h.LastErrorOp, s.h.LastError = at, op, err.Error()
}

// Health returns what the client has seen of Daraja so far. It is safe to
// call concurrently with any other method.
func (c *Client) Health() Health {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	return c.health.h
}
