// Package sqlite owns the SQLite implementation of store.Store: one file, WAL journal,
// pure Go (modernc.org/sqlite), schema versioned with PRAGMA user_version. Constraint
// violations are told apart by the driver's result codes, never by message text.
package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/berthml/berth/internal/store"
)

// Store is a store.Store in one SQLite file.
type Store struct {
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

// migrations[i] takes the schema from version i to i+1.
var migrations = []string{
	`CREATE TABLE endpoints (
		name TEXT PRIMARY KEY,
		spec BLOB NOT NULL,
		traffic TEXT NOT NULL,
		mirror_traffic TEXT NOT NULL,
		primary_key TEXT NOT NULL,
		secondary_key TEXT NOT NULL,
		state TEXT NOT NULL,
		error BLOB,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE deployments (
		endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
		name TEXT NOT NULL,
		spec BLOB NOT NULL,
		model_artifact TEXT NOT NULL,
		code_artifact TEXT NOT NULL,
		state TEXT NOT NULL,
		error BLOB,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (endpoint, name)
	);`,
	`CREATE TABLE connections (
		name TEXT PRIMARY KEY,
		public BLOB NOT NULL,
		sealed BLOB NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);`,
	`CREATE TABLE operations (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		endpoint TEXT NOT NULL,
		deployment TEXT NOT NULL,
		kind TEXT NOT NULL,
		state TEXT NOT NULL,
		error BLOB,
		started_at TEXT NOT NULL,
		ended_at TEXT NOT NULL
	);
	CREATE INDEX operations_endpoint ON operations(endpoint, id);`,
	`CREATE TABLE models (
		name TEXT NOT NULL,
		version TEXT NOT NULL,
		seq INTEGER NOT NULL,
		type TEXT NOT NULL,
		description TEXT NOT NULL,
		tags TEXT NOT NULL,
		path_base TEXT NOT NULL,
		artifact TEXT NOT NULL,
		archived INTEGER NOT NULL DEFAULT 0,
		created_at TEXT NOT NULL,
		PRIMARY KEY (name, version)
	);`,
	`CREATE TABLE assets (
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		version TEXT NOT NULL,
		seq INTEGER NOT NULL,
		spec BLOB NOT NULL,
		artifact TEXT NOT NULL,
		archived INTEGER NOT NULL DEFAULT 0,
		created_at TEXT NOT NULL,
		PRIMARY KEY (kind, name, version)
	);`,
	// One asset kind: models become assets of kind 'model', keeping their order (seq),
	// creation time and archived flag.
	`ALTER TABLE assets ADD COLUMN type TEXT NOT NULL DEFAULT '';
	ALTER TABLE assets ADD COLUMN description TEXT NOT NULL DEFAULT '';
	ALTER TABLE assets ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE assets ADD COLUMN path_base TEXT NOT NULL DEFAULT '';
	INSERT INTO assets (kind, name, version, seq, spec, artifact, archived, created_at, type, description, tags, path_base)
		SELECT 'model', name, version, seq, X'', artifact, archived, created_at, type, description, tags, path_base FROM models;
	DROP TABLE models;`,
	// Local endpoints (`--local`): one name table, a flag per endpoint.
	`ALTER TABLE endpoints ADD COLUMN local INTEGER NOT NULL DEFAULT 0;`,
	// --all-traffic is stored with the deployment until it is applied.
	`ALTER TABLE deployments ADD COLUMN all_traffic INTEGER NOT NULL DEFAULT 0;`,
	// Batch: computes, batch endpoints with their deployments, and jobs, which outlive
	// the endpoint they ran on. jobs.created_at is fixed-width so it sorts as text.
	`CREATE TABLE computes (
		name TEXT PRIMARY KEY,
		spec BLOB NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE batch_endpoints (
		name TEXT PRIMARY KEY,
		spec BLOB NOT NULL,
		state TEXT NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE batch_deployments (
		endpoint TEXT NOT NULL REFERENCES batch_endpoints(name) ON DELETE CASCADE,
		name TEXT NOT NULL,
		spec BLOB NOT NULL,
		model_artifact TEXT NOT NULL,
		code_artifact TEXT NOT NULL,
		state TEXT NOT NULL,
		error BLOB,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (endpoint, name)
	);
	CREATE TABLE jobs (
		name TEXT PRIMARY KEY,
		endpoint TEXT NOT NULL,
		deployment TEXT NOT NULL,
		status TEXT NOT NULL,
		spec BLOB NOT NULL,
		progress BLOB,
		error BLOB,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		started_at TEXT NOT NULL,
		ended_at TEXT NOT NULL
	);
	CREATE INDEX jobs_endpoint ON jobs(endpoint, deployment, created_at);
	CREATE INDEX jobs_created ON jobs(created_at);`,
	// The interpreter a deployment was built on, so a restart keeps it.
	`ALTER TABLE deployments ADD COLUMN python TEXT NOT NULL DEFAULT '';`,
	// The interpreter a batch deployment was checked on, where its jobs run.
	`ALTER TABLE batch_deployments ADD COLUMN python TEXT NOT NULL DEFAULT '';`,
	// The version of a deployment that last succeeded, which a restart serves again
	// after a failed update.
	`ALTER TABLE deployments ADD COLUMN serving BLOB;`,
	// The warnings of a batch deployment's environment check, for show.
	`ALTER TABLE batch_deployments ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';`,
}

// Open opens (creating if needed) the database at path and brings its schema up to date.
func Open(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection serialises every transaction: metadata writes are rare and small,
	// and read-modify-write updates then need no retry on SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate() error {
	var version int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this berth (%d): use a newer berth", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// sortableTime is a fixed-width RFC 3339 time in UTC, which sorts as text in time order
// (RFC3339Nano trims trailing zeros, so "…05Z" would sort after "…05.1Z").
const sortableTime = "2006-01-02T15:04:05.000000000Z07:00"

// timeText formats t for a TEXT column: "" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(sortableTime)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func mapJSON(m map[string]int) string {
	if m == nil {
		m = map[string]int{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// errorCode returns the SQLite extended result code of err, 0 if it carries none.
func errorCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// isUnique reports whether err is a violated primary key or unique constraint.
func isUnique(err error) bool {
	switch errorCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isForeignKey reports whether err is a violated foreign key constraint.
func isForeignKey(err error) bool {
	return errorCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// nonNil keeps NOT NULL blob columns satisfied for an empty spec.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nilIfEmpty reads an empty blob back as nil.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

type scanner interface{ Scan(...any) error }
