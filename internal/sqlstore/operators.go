package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

const operatorColumns = "id, username, role, disabled, last_sign_in_at, created_at, updated_at"

func scanOperator(row interface{ Scan(...any) error }, extra ...any) (*lipa.Operator, error) {
	var o lipa.Operator
	var last sql.NullTime
	if err := row.Scan(append([]any{&o.ID, &o.Username, &o.Role, &o.Disabled, &last, &o.CreatedAt, &o.UpdatedAt}, extra...)...); err != nil {
		return nil, err
	}
	o.LastSignInAt, o.CreatedAt, o.UpdatedAt = fromNull(last), o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return &o, nil
}

// CreateOperator inserts an operator with the hash of their password (a
// PHC string, never the password). A username already taken is a Conflict
// error with code "operator_exists".
func (t *Tx) CreateOperator(ctx context.Context, o *lipa.Operator, passwordHash string) error {
	res, err := t.exec(ctx, `INSERT INTO operators (id, username, role, password_hash, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`,
		o.ID, o.Username, o.Role, passwordHash, o.Disabled, dbTime(o.CreatedAt), dbTime(o.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert operator: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lipa.Errorf(lipa.Conflict, "operator_exists", "an operator named %q already exists", o.Username)
	}
	return nil
}

// OperatorByUsername returns the operator and their password hash, or a
// NotFound error with code "operator_not_found".
func (t *Tx) OperatorByUsername(ctx context.Context, username string) (*lipa.Operator, string, error) {
	var hash string
	o, err := scanOperator(t.queryRow(ctx, "SELECT "+operatorColumns+", password_hash FROM operators WHERE username = ?", username), &hash)
	return o, hash, notFound(err, "operator_not_found", fmt.Sprintf("no operator is named %q", username))
}

// Operators returns every operator, by username.
func (t *Tx) Operators(ctx context.Context) ([]lipa.Operator, error) {
	rows, err := t.query(ctx, "SELECT "+operatorColumns+" FROM operators ORDER BY username")
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	var out []lipa.Operator
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, fmt.Errorf("scan operator: %w", err)
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}

// SetOperatorDisabled disables or enables the operator.
func (t *Tx) SetOperatorDisabled(ctx context.Context, id lipa.OperatorID, disabled bool, now time.Time) error {
	if _, err := t.exec(ctx, "UPDATE operators SET disabled = ?, updated_at = ? WHERE id = ?", disabled, dbTime(now), id); err != nil {
		return fmt.Errorf("update operator: %w", err)
	}
	return nil
}

// SetOperatorPassword replaces the operator's password hash.
func (t *Tx) SetOperatorPassword(ctx context.Context, id lipa.OperatorID, passwordHash string, now time.Time) error {
	if _, err := t.exec(ctx, "UPDATE operators SET password_hash = ?, updated_at = ? WHERE id = ?", passwordHash, dbTime(now), id); err != nil {
		return fmt.Errorf("update operator password: %w", err)
	}
	return nil
}

// Session is an operator's signed-in session, as stored: found by the
// SHA-256 of its token.
type Session struct {
	TokenHash  string
	Operator   lipa.Operator
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // the absolute end, whatever the activity
	SourceAddr string    // where the sign-in came from
	UserAgent  string
}

// InsertSession stores a new session and records the operator's sign-in.
func (t *Tx) InsertSession(ctx context.Context, s *Session) error {
	_, err := t.exec(ctx, `INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at, expires_at, source_addr, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, s.TokenHash, s.Operator.ID, dbTime(s.CreatedAt), dbTime(s.LastSeenAt), dbTime(s.ExpiresAt),
		s.SourceAddr, s.UserAgent)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	if _, err := t.exec(ctx, "UPDATE operators SET last_sign_in_at = ? WHERE id = ?", dbTime(s.CreatedAt), s.Operator.ID); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	return nil
}

// SessionByTokenHash returns the session with its operator, or a NotFound
// error with code "session_not_found". It does not check expiry.
func (t *Tx) SessionByTokenHash(ctx context.Context, tokenHash string) (*Session, error) {
	s := Session{TokenHash: tokenHash}
	var last sql.NullTime
	o := &s.Operator
	err := t.queryRow(ctx, `SELECT o.id, o.username, o.role, o.disabled, o.last_sign_in_at, o.created_at, o.updated_at,
		s.created_at, s.last_seen_at, s.expires_at, s.source_addr, s.user_agent
		FROM operator_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ?`, tokenHash).
		Scan(&o.ID, &o.Username, &o.Role, &o.Disabled, &last, &o.CreatedAt, &o.UpdatedAt,
			&s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.SourceAddr, &s.UserAgent)
	if err != nil {
		return nil, notFound(err, "session_not_found", "no such session")
	}
	o.LastSignInAt, o.CreatedAt, o.UpdatedAt = fromNull(last), o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// TouchSession records activity on the session at now.
func (t *Tx) TouchSession(ctx context.Context, tokenHash string, now time.Time) error {
	if _, err := t.exec(ctx, "UPDATE operator_sessions SET last_seen_at = ? WHERE token_hash = ?", dbTime(now), tokenHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session; an unknown one is no error.
func (t *Tx) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := t.exec(ctx, "DELETE FROM operator_sessions WHERE token_hash = ?", tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteOperatorSessions ends every session of the operator and returns
// how many there were.
func (t *Tx) DeleteOperatorSessions(ctx context.Context, id lipa.OperatorID) (int64, error) {
	res, err := t.exec(ctx, "DELETE FROM operator_sessions WHERE operator_id = ?", id)
	if err != nil {
		return 0, fmt.Errorf("delete sessions: %w", err)
	}
	return res.RowsAffected()
}

// DeleteSessionsBefore removes sessions whose absolute end or last activity
// is before the given times (expired sessions), at most limit of them, and
// returns how many it removed.
func (t *Tx) DeleteSessionsBefore(ctx context.Context, expiresBefore, seenBefore time.Time, limit int) (int64, error) {
	res, err := t.exec(ctx, `DELETE FROM operator_sessions WHERE token_hash IN (SELECT token_hash FROM operator_sessions
		WHERE expires_at < ? OR last_seen_at < ? LIMIT ?)`, dbTime(expiresBefore), dbTime(seenBefore), limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}
