package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/lipa-gateway/lipa/internal/gateway"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// openExistingDB opens the configured database for a command that only
// reads (`apps list`, `webhooks list`, `callbacks unmatched`): unlike
// openDB it creates nothing, neither a SQLite file nor a schema, and
// migrates nothing. The commands that use it open no log file either. A
// database that is not there is an error naming the DATABASE_URL looked at;
// one behind this build's migrations asks for `lipa migrate`.
func openExistingDB(ctx context.Context, cfg Config) (*sqlstore.DB, error) {
	where := "DATABASE_URL=" + redactDatabaseURL(cfg.DatabaseURL)
	none := func(err error) error {
		why := strings.TrimPrefix(err.Error(), sqlstore.ErrNoDatabase.Error()+": ")
		return fmt.Errorf("%w at %s: %s; check DATABASE_URL, or create the database with `lipa migrate` or `lipa serve`", sqlstore.ErrNoDatabase, where, why)
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, sqlstore.Options{MaxConns: cfg.DatabaseMaxConn, MustExist: true})
	if errors.Is(err, sqlstore.ErrNoDatabase) {
		return nil, none(err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	have, want, err := db.SchemaVersion(ctx)
	switch {
	case errors.Is(err, sqlstore.ErrNoDatabase):
		db.Close()
		return nil, none(err)
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	case have < want:
		db.Close()
		return nil, fmt.Errorf("the database at %s is at schema version %d and this lipa needs %d: run `lipa migrate` first", where, have, want)
	}
	return db, nil
}

// redactDatabaseURL hides the password of a database URL, for messages.
func redactDatabaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// commandGateway opens the database of a CLI command and builds its
// gateway. A readOnly command opens only an existing database (see
// openExistingDB) and writes no log; any other opens it as serve does and
// writes its audit lines to LOG_FILE. done closes both.
func commandGateway(ctx context.Context, cfg Config, readOnly bool) (gw *gateway.Gateway, done func(), err error) {
	open, log, closeLog := openDB, slog.New(slog.DiscardHandler), func() {}
	if readOnly {
		open = openExistingDB
	} else {
		log, closeLog = auditLogger(cfg)
	}
	db, err := open(ctx, cfg)
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	return gateway.New(db, nil, gatewayConfig(cfg, cfg.CallbackURL, log)), func() { db.Close(); closeLog() }, nil
}
