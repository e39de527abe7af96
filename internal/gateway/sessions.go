package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// SessionPolicy bounds an operator's session: it ends after Idle without a
// request, and at the latest Lifetime after sign-in, whatever the activity.
type SessionPolicy struct {
	Idle     time.Duration // LIPA_ADMIN_SESSION_IDLE; default 30m
	Lifetime time.Duration // LIPA_ADMIN_SESSION_LIFETIME; default 12h
}

func (p SessionPolicy) withDefaults() SessionPolicy {
	if p.Idle <= 0 {
		p.Idle = 30 * time.Minute
	}
	if p.Lifetime <= 0 {
		p.Lifetime = 12 * time.Hour
	}
	return p
}

// OperatorSession is a signed-in operator.
type OperatorSession struct {
	Operator  lipa.Operator
	CreatedAt time.Time // when they signed in
	ExpiresAt time.Time // the absolute end of the session
}

// SignInRequest is a sign-in attempt: the username (Actor.Name, as typed) and
// password, and where it came from (kept with the session, for the record).
type SignInRequest struct {
	Password   lipa.Secret
	SourceAddr string
	UserAgent  string
}

// SignIn checks an operator's username (actor.Name, trimmed and
// lower-cased) and password and starts a session stored in the database,
// so that any replica serves it. It returns the session and its token,
// which only the operator's cookie holds: the database keeps its SHA-256.
// Unknown usernames take as long to refuse as wrong passwords.
//
// Errors: Unauthorized "invalid_credentials" (unknown username or wrong
// password, not told apart), "operator_disabled" (right password, disabled
// account).
func (g *Gateway) SignIn(ctx context.Context, actor Actor, r SignInRequest, policy SessionPolicy) (*OperatorSession, lipa.Secret, error) {
	policy = policy.withDefaults()
	username := normUsername(actor.Name)
	wrong := lipa.Errorf(lipa.Unauthorized, "invalid_credentials", "wrong username or password")
	if len(r.Password.Reveal()) > MaxPasswordLength || len(username) > 63 || !utf8.ValidString(username) || strings.ContainsRune(username, 0) {
		return nil, "", wrong
	}
	var o *lipa.Operator
	var hash string
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { o, hash, err = tx.OperatorByUsername(ctx, username); return err })
	if lipa.ErrorKind(err) == lipa.NotFound {
		checkPassword(r.Password, dummyHash())
		g.log.Info("operator sign-in refused", "operator", username, "source", r.SourceAddr, "reason", "unknown username")
		return nil, "", wrong
	}
	if err != nil {
		return nil, "", err
	}
	if !checkPassword(r.Password, hash) {
		g.log.Info("operator sign-in refused", "operator", username, "source", r.SourceAddr, "reason", "wrong password")
		return nil, "", wrong
	}
	if o.Disabled {
		g.log.Info("operator sign-in refused", "operator", username, "source", r.SourceAddr, "reason", "disabled")
		return nil, "", lipa.Errorf(lipa.Unauthorized, "operator_disabled", "this operator account is disabled; ask an administrator")
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := lipa.Secret(base64.RawURLEncoding.EncodeToString(b))
	now := g.clock()
	s := &sqlstore.Session{TokenHash: hashKey(token.Reveal()), Operator: *o, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(policy.Lifetime), SourceAddr: r.SourceAddr, UserAgent: cut(r.UserAgent, 200)}
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		// Sweep a few expired sessions on the way, so the table stays small.
		if _, err := tx.DeleteSessionsBefore(ctx, now, now.Add(-policy.Idle), 100); err != nil {
			return err
		}
		return tx.InsertSession(ctx, s)
	})
	if err != nil {
		return nil, "", err
	}
	o.LastSignInAt = now
	g.log.Info("operator signed in", "operator", username, "role", o.Role, "source", r.SourceAddr)
	return &OperatorSession{Operator: *o, CreatedAt: now, ExpiresAt: s.ExpiresAt}, token, nil
}

// Session returns the signed-in operator whose session token is token, and
// records the activity (at most once a minute, so most requests only read).
// A session past its idle timeout or absolute lifetime, or of a disabled
// operator, is removed. Errors: Unauthorized "no_session" (unknown or
// ended token), "session_expired".
func (g *Gateway) Session(ctx context.Context, token lipa.Secret, policy SessionPolicy) (*OperatorSession, error) {
	policy = policy.withDefaults()
	if token == "" || len(token.Reveal()) > 100 {
		return nil, lipa.Errorf(lipa.Unauthorized, "no_session", "sign in first")
	}
	hash := hashKey(token.Reveal())
	now := g.clock()
	var s *sqlstore.Session
	var expired bool
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
		if s, err = tx.SessionByTokenHash(ctx, hash); err != nil {
			return err
		}
		switch {
		case !now.Before(s.ExpiresAt), now.Sub(s.LastSeenAt) >= policy.Idle, s.Operator.Disabled:
			expired = true
			return tx.DeleteSession(ctx, hash)
		case now.Sub(s.LastSeenAt) >= min(time.Minute, policy.Idle/4):
			return tx.TouchSession(ctx, hash, now)
		}
		return nil
	})
	if lipa.ErrorKind(err) == lipa.NotFound {
		return nil, lipa.Errorf(lipa.Unauthorized, "no_session", "sign in first")
	}
	if err != nil {
		return nil, err
	}
	if expired {
		return nil, lipa.Errorf(lipa.Unauthorized, "session_expired", "your session has ended; sign in again")
	}
	return &OperatorSession{Operator: s.Operator, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}, nil
}

// SignOut ends the session whose token is token, on every replica at once.
// An unknown token is no error.
func (g *Gateway) SignOut(ctx context.Context, actor Actor, token lipa.Secret) error {
	if token == "" {
		return nil
	}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.DeleteSession(ctx, hashKey(token.Reveal())) })
	if err == nil {
		g.log.Info("operator signed out", "operator", actor.Name)
	}
	return err
}
