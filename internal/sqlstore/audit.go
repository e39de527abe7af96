package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one row of the audit log: an operator action. Before and
// After are JSON documents (nil when there is nothing to show).
type AuditEntry struct {
	ID        int64
	At        time.Time
	ActorKind string
	Actor     string
	Action    string
	Target    string
	Reason    string
	Before    []byte
	After     []byte
}

// InsertAudit appends an entry to the audit log and sets its ID. The log is
// append-only: nothing in Lipa updates or deletes its rows.
func (t *Tx) InsertAudit(ctx context.Context, e *AuditEntry) error {
	err := t.queryRow(ctx, `INSERT INTO audit_log (at, actor_kind, actor, action, target, reason, before_json, after_json)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, dbTime(e.At), e.ActorKind, e.Actor, e.Action, e.Target, e.Reason,
		nullJSON(e.Before), nullJSON(e.After)).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// AuditQuery selects audit entries. Empty fields do not filter.
type AuditQuery struct {
	ActorKind string
	Actor     string
	Action    string
	Target    string
	Targets   []string  // any of these targets (with Target, both must hold)
	Since     time.Time // at or after
	Until     time.Time // before
	Before    int64     // only entries with a smaller ID (paging newest first)
	Limit     int
}

// AuditEntries returns the entries matching q, newest first, at most
// q.Limit.
func (t *Tx) AuditEntries(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	s := "SELECT id, at, actor_kind, actor, action, target, reason, before_json, after_json FROM audit_log WHERE 1 = 1"
	var args []any
	add := func(cond string, v any) { s += " AND " + cond; args = append(args, v) }
	if q.ActorKind != "" {
		add("actor_kind = ?", q.ActorKind)
	}
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Target != "" {
		add("target = ?", q.Target)
	}
	if len(q.Targets) > 0 {
		s += " AND target IN (?" + strings.Repeat(", ?", len(q.Targets)-1) + ")"
		for _, t := range q.Targets {
			args = append(args, t)
		}
	}
	if !q.Since.IsZero() {
		add("at >= ?", dbTime(q.Since))
	}
	if !q.Until.IsZero() {
		add("at < ?", dbTime(q.Until))
	}
	if q.Before != 0 {
		add("id < ?", q.Before)
	}
	s += " ORDER BY id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := t.query(ctx, s, args...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &e.At, &e.ActorKind, &e.Actor, &e.Action, &e.Target, &e.Reason, &before, &after); err != nil {
			return nil, fmt.Errorf("scan audit entry: %w", err)
		}
		e.At = e.At.UTC()
		if before.Valid {
			e.Before = []byte(before.String)
		}
		if after.Valid {
			e.After = []byte(after.String)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
