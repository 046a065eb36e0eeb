package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berthml/berth/internal/store"
)

// modelsTableSchema is the last schema version with a separate models table.
const modelsTableSchema = 5

// batchTablesSchema is the last schema version without the batch tables.
const batchTablesSchema = 8

// openFromSchema writes a data dir at schema version, as the berth of that time did
// (its migrations, then rows), and opens it with this berth's Open.
func openFromSchema(t *testing.T, version int, rows ...string) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "berth.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(append(migrations[:version:version], fmt.Sprintf(`PRAGMA user_version = %d`, version)), rows...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestModelsBecomeAssets opens a data dir written at the schema that kept models in
// their own table, the way the berth of that time wrote it, and reads its models back
// as assets of kind model: same fields, same order, same archived flag.
func TestModelsBecomeAssets(t *testing.T) {
	old := []string{
		`INSERT INTO models (name, version, seq, type, description, tags, path_base, artifact, archived, created_at) VALUES
			('m', '2', 1, 'custom_model', 'first', '{"team":"a"}', 'model.pkl', 'sha256:2', 0, '2024-05-01T10:00:00Z'),
			('m', '10', 2, 'mlflow_model', 'second', 'null', 'mlflow', 'sha256:10', 1, '2024-05-02T10:00:00.5Z')`,
		`INSERT INTO assets (kind, name, version, seq, spec, artifact, archived, created_at) VALUES
			('environment', 'm', '1', 1, '{"image":"x"}', '', 0, '2024-05-03T10:00:00Z')`,
	}
	s := openFromSchema(t, modelsTableSchema, old...)
	ctx := context.Background()
	got, err := s.GetAsset(ctx, store.KindModel, "m", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "custom_model" || got.Description != "first" || got.Tags["team"] != "a" || got.PathBase != "model.pkl" ||
		got.Artifact != "sha256:2" || got.Archived || got.Spec != nil || got.CreatedAt.Format("2006-01-02T15:04:05Z") != "2024-05-01T10:00:00Z" {
		t.Fatalf("migrated model: %+v", got)
	}
	list, err := s.ListAssets(ctx, store.KindModel, "")
	if err != nil || len(list) != 2 || list[0].Version != "10" || !list[0].Archived || list[0].Tags != nil || list[1].Version != "2" {
		t.Fatalf("migrated models, newest first: %+v %v", list, err)
	}
	// A version registered after the migration is the newest, after the copied ones.
	if err := s.CreateAsset(ctx, &store.Asset{Kind: store.KindModel, Name: "m", Version: "3"}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListAssets(ctx, store.KindModel, "m"); len(l) != 3 || l[0].Version != "3" || l[1].Version != "10" {
		t.Fatalf("after a new version: %+v", l)
	}
	env, err := s.GetAsset(ctx, store.KindEnvironment, "m", "1")
	if err != nil || string(env.Spec) != `{"image":"x"}` || env.Type != "" || env.Tags != nil {
		t.Fatalf("environment kept: %+v %v", env, err)
	}
	var tables int
	s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'models'`).Scan(&tables)
	if tables != 0 {
		t.Fatal("the models table is still there")
	}
}

// TestBatchTablesAddedToOldSchema opens a data dir written before batch existed: its
// endpoints stay, and batch endpoints, deployments and jobs can be stored.
func TestBatchTablesAddedToOldSchema(t *testing.T) {
	s := openFromSchema(t, batchTablesSchema,
		`INSERT INTO endpoints (name, spec, traffic, mirror_traffic, primary_key, secondary_key, state, created_at, updated_at)
			VALUES ('ep', X'', '{}', '{}', 'k1', 'k2', 'Succeeded', '2024-05-01T10:00:00Z', '2024-05-01T10:00:00Z')`)
	ctx := context.Background()
	if e, err := s.GetEndpoint(ctx, "ep"); err != nil || e.PrimaryKey != "k1" {
		t.Fatalf("endpoint after migration: %+v %v", e, err)
	}
	if err := s.CreateBatchEndpoint(ctx, &store.BatchEndpoint{Name: "bep", State: "Succeeded"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatchDeployment(ctx, &store.BatchDeployment{Endpoint: "bep", Name: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatchDeployment(ctx, &store.BatchDeployment{Endpoint: "ep", Name: "d"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("batch deployment under an online endpoint: %v, want ErrNotFound", err)
	}
	if err := s.CreateJob(ctx, &store.Job{Name: "j", Endpoint: "bep", Deployment: "d", Status: "NotStarted"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCompute(ctx, &store.Compute{Name: "c"}); err != nil {
		t.Fatal(err)
	}
}

// interpreterSchema is the last schema version without the interpreters deployments keep.
const interpreterSchema = 9

// TestDeploymentsWrittenBeforeInterpretersWereKept: a data dir of the version before
// keeps its deployments and batch deployments, with no interpreter kept, and they can
// be given one.
func TestDeploymentsWrittenBeforeInterpretersWereKept(t *testing.T) {
	const at = `'2026-11-01T10:00:00Z'`
	s := openFromSchema(t, interpreterSchema,
		`INSERT INTO endpoints (name, spec, traffic, mirror_traffic, primary_key, secondary_key, state, created_at, updated_at)
			VALUES ('ep', X'', '{"blue":100}', '{}', 'k1', 'k2', 'Succeeded', `+at+`, `+at+`)`,
		`INSERT INTO deployments (endpoint, name, spec, model_artifact, code_artifact, state, error, created_at, updated_at)
			VALUES ('ep', 'blue', X'7B7D', 'sha256:m', 'sha256:c', 'Succeeded', NULL, `+at+`, `+at+`)`,
		`INSERT INTO batch_endpoints (name, spec, state, created_at, updated_at) VALUES ('bep', X'', 'Succeeded', `+at+`, `+at+`)`,
		`INSERT INTO batch_deployments (endpoint, name, spec, model_artifact, code_artifact, state, error, created_at, updated_at)
			VALUES ('bep', 'd', X'7B7D', 'sha256:m', '', 'Succeeded', NULL, `+at+`, `+at+`)`)
	ctx := context.Background()
	d, err := s.GetDeployment(ctx, "ep", "blue")
	if err != nil || d.State != "Succeeded" || d.ModelArtifact != "sha256:m" || d.Python != "" || d.Serving != nil {
		t.Fatalf("deployment after migration: %+v %v", d, err)
	}
	if d, err = s.UpdateDeployment(ctx, "ep", "blue", func(d *store.Deployment) error { d.Python = "/usr/bin/python3"; return nil }); err != nil || d.Python != "/usr/bin/python3" {
		t.Fatalf("keep an interpreter: %+v %v", d, err)
	}
	b, err := s.GetBatchDeployment(ctx, "bep", "d")
	if err != nil || b.State != "Succeeded" || b.Python != "" {
		t.Fatalf("batch deployment after migration: %+v %v", b, err)
	}
	b.Python = "/usr/bin/python3"
	if err := s.PutBatchDeployment(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b, err = s.GetBatchDeployment(ctx, "bep", "d"); err != nil || b.Python != "/usr/bin/python3" {
		t.Fatalf("batch deployment given an interpreter: %+v %v", b, err)
	}
}
