package sqlstore

import (
	"context"
	"time"
)

// Exec runs one statement outside any transaction (on SQLite, on its one
// connection), for tests that put the database in a state Lipa's own
// queries never would: PRAGMA max_page_count (a full database, SQLITE_FULL)
// or PRAGMA query_only (a read-only one, SQLITE_READONLY).
func (db *DB) Exec(ctx context.Context, q string) error {
	_, err := db.sql.ExecContext(ctx, q)
	return err
}

// SetFailureHold changes how long a failed transaction keeps CheckWritable
// failing (failureHold).
func (db *DB) SetFailureHold(d time.Duration) {
	db.probe.mu.Lock()
	db.probe.hold = d
	db.probe.mu.Unlock()
}

// Unavailable exposes the classification of database errors.
func Unavailable(err error) bool { return unavailable(err) }

// PreparedStatements returns how many statements are prepared for the
// writer and for the readers (SQLite; zero on PostgreSQL).
func (db *DB) PreparedStatements() (write, read int) {
	for _, c := range []struct {
		c *stmtCache
		n *int
	}{{db.writeStmts, &write}, {db.readStmts, &read}} {
		if c.c == nil {
			continue
		}
		c.c.mu.RLock()
		for _, s := range c.c.m {
			if s != nil {
				*c.n++
			}
		}
		c.c.mu.RUnlock()
	}
	return write, read
}

// QueuedWrites returns how many write transactions wait for SQLite's
// writer (groupCommit), and how many groups it has committed so far.
func (db *DB) QueuedWrites() (queued int, groups int64) {
	return len(db.writer.reqs), db.writer.groups.Load()
}
