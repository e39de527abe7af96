package sqlstore

import (
	"context"
	"sync"
	"time"
)

// Bounds of CheckWritable.
const (
	// probeEvery is how long a write probe's answer is reused: however
	// often /readyz is asked, each process writes at most once per
	// probeEvery.
	probeEvery = 2 * time.Second
	// probeTimeout bounds one probe, including the wait for SQLite's one
	// connection while a request holds it.
	probeTimeout = 5 * time.Second
	// failureHold is how long a transaction that failed for want of the
	// database keeps CheckWritable failing, whatever the probe says: a
	// full SQLite disk can still take the probe's small update in place
	// while every insert fails.
	failureHold = 5 * time.Second
)

// writeProbe is what CheckWritable knows of the database's health.
type writeProbe struct {
	running sync.Mutex // held by the one probe under way

	mu       sync.Mutex
	at       time.Time // when err was found; zero: probe again now
	err      error
	failedAt time.Time // when a transaction last failed for want of the database
	failErr  error     // and its error
	hold     time.Duration
}

// failed records that a transaction has just failed with err (a
// database_unavailable error), and forgets the last probe's answer.
func (p *writeProbe) failed(err error) {
	p.mu.Lock()
	p.at = time.Time{}
	p.failedAt, p.failErr = time.Now(), err
	p.mu.Unlock()
}

// recentFailure returns the error of a transaction that failed for want of
// the database within the hold, or nil.
func (p *writeProbe) recentFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	hold := p.hold
	if hold == 0 {
		hold = failureHold
	}
	if !p.failedAt.IsZero() && time.Since(p.failedAt) < hold {
		return p.failErr
	}
	return nil
}

// last returns the last probe's answer and when it was found (zero when
// there is none to reuse).
func (p *writeProbe) last() (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at, p.err
}

// CheckWritable reports whether the database takes writes now: nil, or a
// lipa Unavailable error with code "database_unavailable" when it cannot be
// reached or cannot write (a full disk, a read-only file, a standby).
//
// It answers the error of any transaction that failed for want of the
// database in the last 5 s; otherwise it proves the database writable by
// writing: one row of the settings table ("write_probe") gets the current
// time, in a transaction of its own. So that a busy /readyz stays cheap, a
// probe's answer is reused for 2 s, and callers arriving while a probe is
// under way get the previous answer instead of queueing for SQLite's one
// connection. Safe for concurrent use.
func (db *DB) CheckWritable(ctx context.Context) error {
	if err := db.probe.recentFailure(); err != nil {
		return err
	}
	at, err := db.probe.last()
	if !at.IsZero() && time.Since(at) < probeEvery {
		return err
	}
	if !db.probe.running.TryLock() {
		if at.IsZero() {
			// No answer yet: wait for the probe under way.
			db.probe.running.Lock()
			db.probe.running.Unlock()
			_, err = db.probe.last()
		}
		return err
	}
	defer db.probe.running.Unlock()
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	err = db.inTx(pctx, func(tx *Tx) error {
		_, err := tx.exec(pctx, `INSERT INTO settings (name, value) VALUES ('write_probe', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
		return err
	})
	if err != nil {
		// Whatever stopped the probe (its timeout included), the database
		// did not take a write.
		err = unavailableError(err)
	}
	db.probe.mu.Lock()
	db.probe.at, db.probe.err = time.Now(), err
	db.probe.mu.Unlock()
	return err
}
