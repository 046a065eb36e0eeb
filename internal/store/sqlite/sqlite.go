// Package sqlite owns the SQLite implementation of store.Store: one file, WAL journal,
// pure Go (modernc.org/sqlite), schema versioned with PRAGMA user_version.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

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

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// nonNil keeps NOT NULL blob columns satisfied for an empty spec.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

type scanner interface{ Scan(...any) error }

const endpointCols = `name, spec, traffic, mirror_traffic, primary_key, secondary_key, state, error, created_at, updated_at`

func scanEndpoint(r scanner) (*store.Endpoint, error) {
	var e store.Endpoint
	var traffic, mirror, created, updated string
	var spec, errb []byte
	if err := r.Scan(&e.Name, &spec, &traffic, &mirror, &e.PrimaryKey, &e.SecondaryKey, &e.State, &errb, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	e.Spec, e.Error = spec, errb
	if len(e.Error) == 0 {
		e.Error = nil
	}
	json.Unmarshal([]byte(traffic), &e.Traffic)
	json.Unmarshal([]byte(mirror), &e.MirrorTraffic)
	e.CreatedAt, e.UpdatedAt = parseTime(created), parseTime(updated)
	return &e, nil
}

// CreateEndpoint stores a new endpoint; store.ErrExists if the name is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *store.Endpoint) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		e.Name, nonNil(e.Spec), mapJSON(e.Traffic), mapJSON(e.MirrorTraffic), e.PrimaryKey, e.SecondaryKey, e.State, []byte(e.Error), t, t)
	if isUnique(err) {
		return fmt.Errorf("endpoint %q: %w", e.Name, store.ErrExists)
	}
	return err
}

// GetEndpoint returns an endpoint or store.ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	return scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE name = ?`, name))
}

// ListEndpoints returns every endpoint by name.
func (s *Store) ListEndpoints(ctx context.Context) ([]*store.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// UpdateEndpoint applies fn to the stored endpoint in one transaction.
func (s *Store) UpdateEndpoint(ctx context.Context, name string, fn func(*store.Endpoint) error) (*store.Endpoint, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	e, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE name = ?`, name))
	if err != nil {
		return nil, err
	}
	if err := fn(e); err != nil {
		return nil, err
	}
	e.UpdatedAt = parseTime(now())
	if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET spec=?, traffic=?, mirror_traffic=?, primary_key=?, secondary_key=?, state=?, error=?, updated_at=? WHERE name=?`,
		nonNil(e.Spec), mapJSON(e.Traffic), mapJSON(e.MirrorTraffic), e.PrimaryKey, e.SecondaryKey, e.State, []byte(e.Error), e.UpdatedAt.Format(time.RFC3339Nano), name); err != nil {
		return nil, err
	}
	return e, tx.Commit()
}

// DeleteEndpoint deletes an endpoint and, by cascade, its deployments.
func (s *Store) DeleteEndpoint(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM endpoints WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("endpoint %q: %w", name, store.ErrNotFound)
	}
	return nil
}

const deploymentCols = `endpoint, name, spec, model_artifact, code_artifact, state, error, created_at, updated_at`

func scanDeployment(r scanner) (*store.Deployment, error) {
	var d store.Deployment
	var created, updated string
	var spec, errb []byte
	if err := r.Scan(&d.Endpoint, &d.Name, &spec, &d.ModelArtifact, &d.CodeArtifact, &d.State, &errb, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	d.Spec, d.Error = spec, errb
	if len(d.Error) == 0 {
		d.Error = nil
	}
	d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
	return &d, nil
}

// CreateDeployment stores a new deployment; store.ErrNotFound without its endpoint.
func (s *Store) CreateDeployment(ctx context.Context, d *store.Deployment) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO deployments (`+deploymentCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		d.Endpoint, d.Name, nonNil(d.Spec), d.ModelArtifact, d.CodeArtifact, d.State, []byte(d.Error), t, t)
	switch {
	case isUnique(err):
		return fmt.Errorf("deployment %q: %w", d.Name, store.ErrExists)
	case err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
		return fmt.Errorf("endpoint %q: %w", d.Endpoint, store.ErrNotFound)
	}
	return err
}

// GetDeployment returns a deployment or store.ErrNotFound.
func (s *Store) GetDeployment(ctx context.Context, endpoint, name string) (*store.Deployment, error) {
	return scanDeployment(s.db.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name))
}

// ListDeployments returns one endpoint's deployments, or all when endpoint is "".
func (s *Store) ListDeployments(ctx context.Context, endpoint string) ([]*store.Deployment, error) {
	q := `SELECT ` + deploymentCols + ` FROM deployments WHERE (? = '' OR endpoint = ?) ORDER BY endpoint, name`
	rows, err := s.db.QueryContext(ctx, q, endpoint, endpoint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpdateDeployment applies fn to the stored deployment in one transaction.
func (s *Store) UpdateDeployment(ctx context.Context, endpoint, name string, fn func(*store.Deployment) error) (*store.Deployment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	d, err := scanDeployment(tx.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name))
	if err != nil {
		return nil, err
	}
	if err := fn(d); err != nil {
		return nil, err
	}
	d.UpdatedAt = parseTime(now())
	if _, err := tx.ExecContext(ctx, `UPDATE deployments SET spec=?, model_artifact=?, code_artifact=?, state=?, error=?, updated_at=? WHERE endpoint=? AND name=?`,
		nonNil(d.Spec), d.ModelArtifact, d.CodeArtifact, d.State, []byte(d.Error), d.UpdatedAt.Format(time.RFC3339Nano), endpoint, name); err != nil {
		return nil, err
	}
	return d, tx.Commit()
}

// DeleteDeployment deletes a deployment.
func (s *Store) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deployment %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// PutConnection creates or replaces a connection.
func (s *Store) PutConnection(ctx context.Context, c *store.Connection) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO connections (name, public, sealed, created_at, updated_at) VALUES (?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET public=excluded.public, sealed=excluded.sealed, updated_at=excluded.updated_at`,
		c.Name, nonNil(c.Public), nonNil(c.Sealed), t, t)
	return err
}

func scanConnection(r scanner) (*store.Connection, error) {
	var c store.Connection
	var created, updated string
	if err := r.Scan(&c.Name, &c.Public, &c.Sealed, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = parseTime(created), parseTime(updated)
	return &c, nil
}

// GetConnection returns a connection or store.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, name string) (*store.Connection, error) {
	return scanConnection(s.db.QueryRowContext(ctx, `SELECT name, public, sealed, created_at, updated_at FROM connections WHERE name = ?`, name))
}

// ListConnections returns every connection by name.
func (s *Store) ListConnections(ctx context.Context) ([]*store.Connection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, public, sealed, created_at, updated_at FROM connections ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteConnection deletes a connection.
func (s *Store) DeleteConnection(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM connections WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("connection %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// StartOperation records an operation as InProgress.
func (s *Store) StartOperation(ctx context.Context, op *store.Operation) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO operations (endpoint, deployment, kind, state, error, started_at, ended_at) VALUES (?,?,?,?,NULL,?,'')`,
		op.Endpoint, op.Deployment, op.Kind, "InProgress", now())
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// FinishOperation records how an operation ended.
func (s *Store) FinishOperation(ctx context.Context, id int64, state string, errJSON json.RawMessage) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET state = ?, error = ?, ended_at = ? WHERE id = ?`, state, []byte(errJSON), now(), id)
	return err
}

// ListOperations returns an endpoint's newest operations.
func (s *Store) ListOperations(ctx context.Context, endpoint string, limit int) ([]*store.Operation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, endpoint, deployment, kind, state, error, started_at, ended_at FROM operations WHERE endpoint = ? ORDER BY id DESC LIMIT ?`, endpoint, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Operation
	for rows.Next() {
		var op store.Operation
		var errb []byte
		var started, ended string
		if err := rows.Scan(&op.ID, &op.Endpoint, &op.Deployment, &op.Kind, &op.State, &errb, &started, &ended); err != nil {
			return nil, err
		}
		if len(errb) > 0 {
			op.Error = errb
		}
		op.StartedAt, op.EndedAt = parseTime(started), parseTime(ended)
		out = append(out, &op)
	}
	return out, rows.Err()
}

// CreateModel registers a model version.
func (s *Store) CreateModel(ctx context.Context, m *store.Model) error {
	tags, _ := json.Marshal(m.Tags)
	_, err := s.db.ExecContext(ctx, `INSERT INTO models (name, version, seq, type, description, tags, path_base, artifact, archived, created_at)
		VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM models WHERE name = ?), ?, ?, ?, ?, ?, 0, ?)`,
		m.Name, m.Version, m.Name, m.Type, m.Description, string(tags), m.PathBase, m.Artifact, now())
	if isUnique(err) {
		return fmt.Errorf("model %s version %s: %w", m.Name, m.Version, store.ErrExists)
	}
	return err
}

const modelCols = `name, version, type, description, tags, path_base, artifact, archived, created_at`

func scanModel(r scanner) (*store.Model, error) {
	var m store.Model
	var tags, created string
	if err := r.Scan(&m.Name, &m.Version, &m.Type, &m.Description, &tags, &m.PathBase, &m.Artifact, &m.Archived, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	json.Unmarshal([]byte(tags), &m.Tags)
	m.CreatedAt = parseTime(created)
	return &m, nil
}

// GetModel returns one model version.
func (s *Store) GetModel(ctx context.Context, name, version string) (*store.Model, error) {
	return scanModel(s.db.QueryRowContext(ctx, `SELECT `+modelCols+` FROM models WHERE name = ? AND version = ?`, name, version))
}

// ListModels returns the versions of name (or of all models), newest first.
func (s *Store) ListModels(ctx context.Context, name string) ([]*store.Model, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+modelCols+` FROM models WHERE (? = '' OR name = ?) ORDER BY name, seq DESC`, name, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Model
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetModelArchived archives or restores a version.
func (s *Store) SetModelArchived(ctx context.Context, name, version string, archived bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE models SET archived = ? WHERE name = ? AND version = ?`, archived, name, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("model %s version %s: %w", name, version, store.ErrNotFound)
	}
	return nil
}

// CreateAsset registers an asset version.
func (s *Store) CreateAsset(ctx context.Context, a *store.Asset) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO assets (kind, name, version, seq, spec, artifact, archived, created_at)
		VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM assets WHERE kind = ? AND name = ?), ?, ?, 0, ?)`,
		a.Kind, a.Name, a.Version, a.Kind, a.Name, nonNil(a.Spec), a.Artifact, now())
	if isUnique(err) {
		return fmt.Errorf("%s %s version %s: %w", a.Kind, a.Name, a.Version, store.ErrExists)
	}
	return err
}

const assetCols = `kind, name, version, spec, artifact, archived, created_at`

func scanAsset(r scanner) (*store.Asset, error) {
	var a store.Asset
	var spec []byte
	var created string
	if err := r.Scan(&a.Kind, &a.Name, &a.Version, &spec, &a.Artifact, &a.Archived, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	a.Spec, a.CreatedAt = spec, parseTime(created)
	return &a, nil
}

// GetAsset returns one asset version.
func (s *Store) GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error) {
	return scanAsset(s.db.QueryRowContext(ctx, `SELECT `+assetCols+` FROM assets WHERE kind = ? AND name = ? AND version = ?`, kind, name, version))
}

// ListAssets returns asset versions, newest first.
func (s *Store) ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+assetCols+` FROM assets WHERE kind = ? AND (? = '' OR name = ?) ORDER BY name, seq DESC`, kind, name, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Asset
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAssetArchived archives or restores an asset version.
func (s *Store) SetAssetArchived(ctx context.Context, kind, name, version string, archived bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE assets SET archived = ? WHERE kind = ? AND name = ? AND version = ?`, archived, kind, name, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %s version %s: %w", kind, name, version, store.ErrNotFound)
	}
	return nil
}
