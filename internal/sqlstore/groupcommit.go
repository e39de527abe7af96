package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// maxGroup bounds how many write transactions one commit carries.
const maxGroup = 64

// groupCommit is SQLite's writer. SQLite has one writer at a time, and a
// commit costs far more than the few statements most of Lipa's
// transactions run (each commit appends every page it changed to the WAL).
// So the write transactions of concurrent requests are queued to one
// goroutine, which runs all those waiting in one database transaction, each
// inside a SAVEPOINT of its own, commits once, and only then answers each:
//
//   - each request's changes are still all or nothing: a function that
//     fails (or panics) is rolled back to its savepoint, and its error is
//     its caller's alone; the others carry on;
//   - nobody hears of success before the commit that holds its changes;
//     if that commit fails, every request in it gets the error;
//   - the order is serial, as before: each function sees the changes of
//     those run before it, exactly as if they had committed just before;
//   - a transaction SQLite abandons by itself (a full disk, an I/O error)
//     fails the requests run in it so far; those not yet run go on in a
//     new transaction.
//
// A request waits in the queue while a group runs; alone, its transaction
// is run as it always was (no savepoint). Its context can stop it while it
// waits, not once it runs: its statements then run to the end, so that a
// client hanging up cannot make SQLite abandon the other requests' work
// (an interrupted write inside a transaction rolls back the whole
// transaction).
type groupCommit struct {
	db   *DB
	reqs chan *writeReq
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer has stopped

	groups atomic.Int64 // transactions begun, for tests
}

// writeReq is one InTx call waiting for the writer.
type writeReq struct {
	fn    func(*Tx) error
	state atomic.Int32 // reqQueued, reqTaken or reqAbandoned
	err   error
	panic any
	done  chan struct{}
	after []func() // the Tx's AfterCommit functions, run by run once the group has committed
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// errClosed is InTx's error once the DB is closed (database/sql's words).
var errClosed = errors.New("sql: database is closed")

func startGroupCommit(db *DB) *groupCommit {
	w := &groupCommit{db: db, reqs: make(chan *writeReq, 4*maxGroup), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// close stops the writer once the groups under way have committed; what
// is still queued fails with errClosed.
func (w *groupCommit) close() {
	close(w.stop)
	<-w.done
}

// run queues fn and waits for its outcome (see groupCommit).
func (w *groupCommit) run(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	r := &writeReq{fn: fn, done: make(chan struct{})}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("begin: %w", ctx.Err())
	case <-w.stop:
		return fmt.Errorf("begin: %w", errClosed)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("begin: %w", ctx.Err())
		}
		<-r.done // running: its statements finish, see groupCommit
	}
	if r.panic != nil {
		panic(r.panic)
	}
	if r.err == nil {
		for _, f := range r.after { // committed: see Tx.AfterCommit
			f()
		}
	}
	return r.err
}

func (w *groupCommit) loop() {
	defer close(w.done)
	group := make([]*writeReq, 0, maxGroup)
	for {
		var first *writeReq
		select {
		case first = <-w.reqs:
		case <-w.stop:
			for {
				select {
				case r := <-w.reqs:
					r.err = fmt.Errorf("begin: %w", errClosed)
					close(r.done)
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	more:
		for len(group) < maxGroup {
			select {
			case r := <-w.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		live := group[:0]
		for _, r := range group {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				live = append(live, r)
			}
		}
		for len(live) > 0 {
			live = w.commit(live)
		}
	}
}

// commit runs group in one transaction and answers each request; it
// returns the requests it could not run because SQLite abandoned the
// transaction, for a new one.
func (w *groupCommit) commit(group []*writeReq) (rest []*writeReq) {
	db := w.db
	var missed []string
	defer func() { db.writeStmts.prepare(missed) }()
	w.groups.Add(1)
	tx, err := db.sql.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range group {
			r.err = fmt.Errorf("begin: %w", err)
			close(r.done)
		}
		return nil
	}
	single := len(group) == 1
	// savepoint runs a SAVEPOINT, RELEASE or ROLLBACK TO statement.
	savepoint := func(verb string) error {
		t := &Tx{tx: tx, q: tx, backend: db.backend, stmts: db.writeStmts}
		_, err := t.exec(context.Background(), verb+" lipa_request")
		missed = append(missed, t.missed...)
		return err
	}
	ok := make([]*writeReq, 0, len(group))
	for i, r := range group {
		if !single {
			if err := savepoint("SAVEPOINT"); err != nil {
				tx.Rollback()
				return w.abandoned(ok, group[i:], err)
			}
		}
		t := &Tx{tx: tx, q: tx, backend: db.backend, stmts: db.writeStmts, detached: true}
		r.err, r.panic = call(r.fn, t)
		missed = append(missed, t.missed...)
		switch {
		case r.err == nil && r.panic == nil:
			r.after = t.after
			ok = append(ok, r)
			if !single {
				if err := savepoint("RELEASE"); err != nil {
					tx.Rollback()
					return w.abandoned(ok, group[i+1:], err)
				}
			}
			continue
		case single:
			tx.Rollback()
			close(r.done)
			return nil
		}
		if err := savepoint("ROLLBACK TO"); err != nil {
			// SQLite has rolled back the whole transaction by itself (it
			// does after a full disk or an I/O error): the requests run
			// so far lost their changes with it.
			tx.Rollback()
			cause := r.err
			if cause == nil {
				cause = err
			}
			close(r.done)
			return w.abandoned(ok, group[i+1:], cause)
		}
		if err := savepoint("RELEASE"); err != nil {
			tx.Rollback()
			close(r.done)
			return w.abandoned(ok, group[i+1:], err)
		}
		close(r.done) // nothing of it will be committed: it can have its answer now
	}
	if err := tx.Commit(); err != nil {
		for _, r := range ok {
			r.err = fmt.Errorf("commit: %w", err)
		}
	}
	for _, r := range ok {
		close(r.done)
	}
	return nil
}

// abandoned answers the requests whose changes were lost with the
// transaction SQLite abandoned (cause says why) and returns those not yet
// run.
func (w *groupCommit) abandoned(lost, notRun []*writeReq, cause error) []*writeReq {
	for _, r := range lost {
		r.err = fmt.Errorf("commit: the transaction this request shared was rolled back: %w", cause)
		close(r.done)
	}
	return notRun
}

// call runs fn(t), turning a panic into the value returned.
func call(fn func(*Tx) error, t *Tx) (err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return fn(t), nil
}
