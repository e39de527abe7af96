package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lipa-gateway/lipa"
)

// translate returns err as a lipa Unavailable error with code
// "database_unavailable" (err its cause, for the logs) when it shows the
// database out of reach or unable to write, and err unchanged otherwise. An
// error that already has a kind other than Internal keeps it. The
// transaction was not committed (unless the connection was lost during the
// COMMIT itself, when its outcome is unknown). The same request may succeed
// once the database is back, which needs no restart.
func translate(err error) error {
	if err == nil || lipa.ErrorKind(err) != lipa.Internal || !unavailable(err) {
		return err
	}
	return unavailableError(err)
}

// unavailableError returns the lipa Unavailable error "database_unavailable"
// caused by cause.
func unavailableError(cause error) error {
	return lipa.Errorf(lipa.Unavailable, "database_unavailable",
		"the database cannot be reached or cannot write just now; try again shortly").Wrap(cause)
}

// unavailable reports whether err says the database cannot be reached or
// cannot write, as opposed to a bug in a query or bad data:
//   - any failure to connect (refused, reset, unknown host, a connect
//     timeout, a refused login), a connection lost mid-way (reset, broken
//     pipe, EOF, database/sql's bad or finished connection), and a
//     deadline that passed before the database answered;
//   - PostgreSQL SQLSTATE class 08 (connection exception), 57P01
//     admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53100
//     disk_full, 53300 too_many_connections, and 25006
//     read_only_sql_transaction (a standby after a fail-over);
//   - SQLite's SQLITE_FULL (disk or max_page_count full), SQLITE_IOERR,
//     SQLITE_CANTOPEN and SQLITE_READONLY, with any extended code.
//
// A request whose own context was cancelled is not an outage.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch code := pe.Code; {
		case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03",
			code == "53100", code == "53300", code == "25006":
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY:
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
