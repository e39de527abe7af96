package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// ErrNoDatabase is returned (wrapped) when there is no Lipa database where a
// read-only command looks: no SQLite file (Options.MustExist), or a database
// without Lipa's tables (SchemaVersion).
var ErrNoDatabase = errors.New("no Lipa database")

// SchemaVersion returns the newest migration applied to the database (have)
// and the newest this build of Lipa carries (want), reading only: unlike
// Migrate it creates nothing, not even goose's version table. A database
// with no migration applied is ErrNoDatabase.
func (db *DB) SchemaVersion(ctx context.Context) (have, want int64, err error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.backend))
	if err != nil {
		return 0, 0, err
	}
	dialect := goose.DialectSQLite3
	if db.backend == Postgres {
		dialect = goose.DialectPostgres
	}
	// NewProvider only reads the embedded files; it does not touch the
	// database.
	p, err := goose.NewProvider(dialect, db.sql, sub)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: %w", err)
	}
	if src := p.ListSources(); len(src) > 0 {
		want = src[len(src)-1].Version
	}
	exists := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'"
	if db.backend == Postgres {
		exists = "SELECT count(*) FROM (SELECT to_regclass('goose_db_version') AS t) v WHERE t IS NOT NULL"
	}
	var n int
	if err := db.sql.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return 0, want, fmt.Errorf("look for Lipa's tables: %w", err)
	}
	if n == 0 {
		return 0, want, fmt.Errorf("%w: the database has none of Lipa's tables", ErrNoDatabase)
	}
	if err := db.sql.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version").Scan(&have); err != nil {
		return 0, want, fmt.Errorf("read the schema version: %w", err)
	}
	if have == 0 {
		return 0, want, fmt.Errorf("%w: no migration has been applied to it", ErrNoDatabase)
	}
	return have, want, nil
}
