package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// fakeRegistry resolves one registered model and one secret.
type fakeRegistry struct{ model *store.Asset }

func (f fakeRegistry) Resolve(_ context.Context, kind, ref string) (*store.Asset, error) {
	if kind == store.KindModel && f.model != nil {
		return f.model, nil
	}
	return nil, diag.New(diag.ResourceNotFound, "%s %s not found", kind, ref)
}

func (fakeRegistry) ResolveSecrets(_ context.Context, env map[string]string) (int, error) {
	n := 0
	for k, v := range env {
		if v == "${{azureml://connections/db/credentials/key}}" {
			env[k], n = "s3cret", n+1
		}
	}
	return n, nil
}

// put stores a folder of files as an artifact.
func put(t *testing.T, arts *artifacts.Store, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tar bytes.Buffer
	if err := archive.WriteTar(&tar, dir); err != nil {
		t.Fatal(err)
	}
	digest, _, err := arts.Put(&tar)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func deployment(t *testing.T, yml string) *spec.Deployment {
	t.Helper()
	d, err := spec.DecodeDeployment("test.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPrepareLaysOutAnInstanceAsAzureMountsIt(t *testing.T) {
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Artifacts: arts, Registry: fakeRegistry{}})
	model := put(t, arts, map[string]string{"weights.json": "[1]", "vocab.txt": "a"})
	code := put(t, arts, map[string]string{"score.py": "def init(): pass\ndef run(x): return x\n"})
	d := deployment(t, `name: blue
endpoint_name: shop
model: {path: ./model}
code_configuration: {code: ./src, scoring_script: score.py}
environment_variables: {WORKER_COUNT: "2", DB_KEY: "${{azureml://connections/db/credentials/key}}"}
instance_count: 1
`)
	env, err := s.Environment(t.Context(), d, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if env.Python != instance.DefaultPython || env.Vars["DB_KEY"] != "s3cret" || env.Vars["WORKER_COUNT"] != "2" || env.Secrets != 1 {
		t.Fatalf("environment: %+v", env)
	}
	dir := filepath.Join(t.TempDir(), "3")
	rec := &store.Deployment{Endpoint: "shop", Name: "blue", ModelArtifact: model, CodeArtifact: code}
	is, err := s.Prepare(t.Context(), Instance{Deployment: rec, Spec: d, Index: 3, Dir: dir}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(is.ModelDir, "model", "weights.json")); err != nil {
		t.Errorf("the model folder keeps its name under AZUREML_MODEL_DIR: %v", err)
	}
	if is.EntryScript != filepath.Join(dir, "code", "score.py") || is.WorkerCount != 2 || is.Env["DB_KEY"] != "s3cret" {
		t.Errorf("instance spec: %+v", is)
	}
	log, err := os.ReadFile(LogFile(dir, "storage-initializer"))
	if err != nil || !strings.Contains(string(log), "resolved 1 secret reference") || strings.Contains(string(log), "s3cret") {
		t.Errorf("storage-initializer log (must count secrets, never show them):\n%s", log)
	}
}

func TestPrepareNoCodeMLflowAndRegisteredModel(t *testing.T) {
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	model := put(t, arts, map[string]string{"MLmodel": "flavors:\n  python_function: {}\n"})
	reg := &store.Asset{Kind: store.KindModel, Name: "heart", Version: "4", Type: "mlflow_model", PathBase: "mlmodel", Artifact: model}
	s := New(Config{Artifacts: arts, Registry: fakeRegistry{model: reg}})
	d := deployment(t, `name: blue
endpoint_name: shop
model: azureml:heart:4
instance_count: 1
`)
	dir := t.TempDir()
	rec := &store.Deployment{Endpoint: "shop", Name: "blue", ModelArtifact: model}
	is, err := s.Prepare(t.Context(), Instance{Deployment: rec, Spec: d, Dir: dir}, Env{Python: "python3"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "azureml-models", "heart", "4"); is.ModelDir != want {
		t.Errorf("AZUREML_MODEL_DIR %s, want %s (registered models sit under <name>/<version>)", is.ModelDir, want)
	}
	if is.EntryScript != instance.BuiltinMLflow {
		t.Errorf("entry script %q, want the built-in MLflow scorer", is.EntryScript)
	}
	var mlmodel map[string]any
	if err := json.Unmarshal([]byte(is.Env["BERTH_MLMODEL"]), &mlmodel); err != nil || mlmodel["flavors"] == nil {
		t.Errorf("BERTH_MLMODEL is the MLmodel file as JSON: %q (%v)", is.Env["BERTH_MLMODEL"], err)
	}
}

func TestEnvironmentRefusesWhatTheProcessRuntimeCannotRun(t *testing.T) {
	s := New(Config{Registry: fakeRegistry{}})
	for _, yml := range []string{
		"environment: {build: {path: ./docker}}\n",
		"environment: {image: x, inference_config: {liveness_route: {path: /, port: 5001}}}\n",
	} {
		d := deployment(t, "name: blue\nendpoint_name: shop\ninstance_count: 1\ncode_configuration: {code: ., scoring_script: s.py}\n"+yml)
		_, err := s.Environment(t.Context(), d, io.Discard)
		if de := diag.As(err); de == nil || de.Code != diag.ImageBuildFailure {
			t.Errorf("%s: got %v, want ImageBuildFailure", strings.TrimSpace(yml), err)
		}
	}
}

// TestPrepareTellsTheInstanceWhatToCollect: the enabled collections of data_collector
// reach the instance in BERTH_DATA_COLLECTOR, with the folder beside instances/.
func TestPrepareTellsTheInstanceWhatToCollect(t *testing.T) {
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Artifacts: arts, Registry: fakeRegistry{}})
	code := put(t, arts, map[string]string{"score.py": "def init(): pass\ndef run(x): return x\n"})
	rec := &store.Deployment{Endpoint: "shop", Name: "blue", CodeArtifact: code}
	data := t.TempDir()
	dir := filepath.Join(data, "instances", "shop", "blue", "2")
	for yml, want := range map[string]*instance.Collector{
		"": nil,
		"data_collector: {collections: {model_inputs: {enabled: 'False'}}}\n": nil,
		"data_collector: {sampling_rate: 0.25, rolling_rate: minute, collections: {model_inputs: {enabled: 'True'}, request: {enabled: true}, x: {}}, request_logging: {capture_headers: [a]}}\n": {
			Dir: filepath.Join(data, "collections", "shop", "blue"), Endpoint: "shop", Deployment: "blue", Instance: 2,
			SamplingRate: 0.25, RollingRate: "Minute", Collections: []string{"model_inputs", "request"}, Headers: []string{"a"}},
	} {
		d := deployment(t, "name: blue\nendpoint_name: shop\ncode_configuration: {code: ./src, scoring_script: score.py}\n"+yml)
		is, err := s.Prepare(t.Context(), Instance{Deployment: rec, Spec: d, Index: 2, Dir: dir}, Env{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := instance.ReadCollector([]string{instance.EnvDataCollector + "=" + is.Env[instance.EnvDataCollector]}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if want != nil {
			want.MaxFileBytes = instance.DefaultCollectMaxFileBytes
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q: collector (-want +got):\n%s", yml, diff)
		}
	}
}
