// Package stage owns the storage-initializer step of a deployment: it prepares what the
// instances run with (the Python environment, variables with secrets resolved) and lays
// out each instance folder as Azure mounts it — the model under azureml-models, the
// code as the working directory, logs — writing the storage-initializer log.
package stage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// Registry is what staging needs of the asset registry.
type Registry interface {
	Resolve(ctx context.Context, kind, reference string) (*store.Asset, error)
	ResolveSecrets(ctx context.Context, env map[string]string) (int, error)
}

// Config is what a Stager needs; Envs may be nil (conda files are then not built).
type Config struct {
	Artifacts *artifacts.Store
	Registry  Registry
	Envs      *envbuild.Builder
	Quota     quota.Checker
	// Python is the server's interpreter, the base of every environment.
	Python string
	// Interpreters are searched for packages an environment build could not install
	// (nil: this machine's, instance.MachineInterpreters).
	Interpreters *instance.Interpreters
	// Now returns the time for log lines (default time.Now).
	Now func() time.Time
}

// Stager prepares environments and instance folders. It is safe for concurrent use.
type Stager struct{ cfg Config }

// New returns a Stager.
func New(cfg Config) *Stager {
	if cfg.Python == "" {
		cfg.Python = instance.DefaultPython
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Stager{cfg: cfg}
}

// Instance names one instance of a stored deployment and where its folder goes.
type Instance struct {
	Deployment *store.Deployment
	Spec       *spec.Deployment
	Index      int
	Dir        string // instances/<endpoint>/<deployment>/<index>
}

// LogFile is the log of one container ("inference-server", "storage-initializer") in an
// instance folder.
func LogFile(dir, container string) string {
	return filepath.Join(dir, "logs", container+".log")
}

// WorkerCount is WORKER_COUNT from the deployment's environment variables (default 1).
func WorkerCount(d *spec.Deployment) int {
	if n, err := strconv.Atoi(d.EnvironmentVariables["WORKER_COUNT"]); err == nil && n > 0 {
		return n
	}
	return 1
}

// Prepare lays out an instance folder as Azure mounts it — the model under
// azureml-models/ (AZUREML_MODEL_DIR), the code as the working directory, and logs/ —
// and returns how to start the instance.
func (s *Stager) Prepare(ctx context.Context, in Instance, env Env) (runtime.InstanceSpec, error) {
	rec, d, index, dir := in.Deployment, in.Spec, in.Index, in.Dir
	is := runtime.InstanceSpec{
		Endpoint: rec.Endpoint, Deployment: rec.Name, Index: index, Dir: dir,
		CodeDir:     filepath.Join(dir, "code"),
		ModelDir:    filepath.Join(dir, "azureml-models"),
		WorkerCount: WorkerCount(d),
		Python:      env.Python,
		LogPath:     LogFile(dir, "inference-server"),
		StatusFile:  filepath.Join(dir, "status.json"),
		Env:         map[string]string{},
	}
	if err := os.RemoveAll(dir); err != nil {
		return is, fmt.Errorf("clear instance folder: %w", err)
	}
	f, err := logs.OpenAppend(LogFile(dir, "storage-initializer"))
	if err != nil {
		return is, err
	}
	defer f.Close()
	w := logs.NewTimestamped(f, s.cfg.Now)
	fmt.Fprintf(w, "storage-initializer: preparing instance %d of deployment %s/%s in %s\n", index, rec.Endpoint, rec.Name, dir)
	modelFiles, err := s.mountModel(ctx, w, rec, d, &is)
	if err != nil {
		fmt.Fprintf(w, "%v\n", err)
		return is, err
	}
	if err := s.mountCode(w, rec, d, &is, modelFiles); err != nil {
		fmt.Fprintf(w, "%v\n", err)
		return is, err
	}
	s.writeEnvironment(w, d, env, &is)
	if err := collector(w, d, &is); err != nil {
		fmt.Fprintf(w, "%v\n", err)
		return is, err
	}
	return is, nil
}

// mountModel copies the model under AZUREML_MODEL_DIR and returns where its files are:
// a registered model sits under <name>/<version>, as Azure mounts it.
func (s *Stager) mountModel(ctx context.Context, w io.Writer, rec *store.Deployment, d *spec.Deployment, is *runtime.InstanceSpec) (string, error) {
	if err := os.MkdirAll(is.ModelDir, 0o755); err != nil {
		return "", err
	}
	if rec.ModelArtifact == "" {
		fmt.Fprintf(w, "no model in the deployment spec: %s is empty\n", is.ModelDir)
		return "", nil
	}
	target := s.modelTarget(rec.ModelArtifact, filepath.Base(filepath.Clean(d.Model.Path)), is.ModelDir)
	if d.Model.IsRef() {
		reg, err := s.cfg.Registry.Resolve(ctx, store.KindModel, d.Model.Ref)
		if err != nil {
			return "", err
		}
		is.ModelDir = filepath.Join(is.ModelDir, reg.Name, reg.Version)
		target = s.modelTarget(reg.Artifact, reg.PathBase, is.ModelDir)
	}
	return target, s.copyArtifact(w, "model", rec.ModelArtifact, target)
}

// mountCode copies the code folder, or sets up Berth's own scorer for a no-code MLflow
// deployment.
func (s *Stager) mountCode(w io.Writer, rec *store.Deployment, d *spec.Deployment, is *runtime.InstanceSpec, modelFiles string) error {
	if d.CodeConfiguration != nil {
		if err := s.copyArtifact(w, "code", rec.CodeArtifact, is.CodeDir); err != nil {
			return err
		}
		is.EntryScript = filepath.Join(is.CodeDir, filepath.FromSlash(d.CodeConfiguration.ScoringScript))
		return nil
	}
	if err := os.MkdirAll(is.CodeDir, 0o755); err != nil {
		return err
	}
	mlmodel, err := readMLmodel(modelFiles)
	if err != nil {
		return err
	}
	is.EntryScript = instance.BuiltinMLflow
	is.Env["BERTH_MLMODEL"] = mlmodel
	is.Env["BERTH_MLFLOW_MODEL_DIR"] = modelFiles
	fmt.Fprintf(w, "no-code MLflow deployment: Berth's scoring script serves the model in %s\n", modelFiles)
	return nil
}

// writeEnvironment records the instance's interpreter, limits and variables.
func (s *Stager) writeEnvironment(w io.Writer, d *spec.Deployment, env Env, is *runtime.InstanceSpec) {
	if it, err := s.cfg.Quota.InstanceType(d.InstanceType); err == nil && it.MemoryBytes > 0 {
		is.MemoryLimit = it.MemoryBytes
		fmt.Fprintf(w, "instance_type %s: %g cores, memory capped at %s\n", it.Name, it.Cores, quota.Bytes(it.MemoryBytes))
	}
	w.Write(env.Log)
	fmt.Fprintf(w, "python: %s\n", env.Python)
	for k, v := range env.Vars {
		is.Env[k] = v
	}
	if env.Secrets > 0 {
		fmt.Fprintf(w, "resolved %d secret reference(s) in environment_variables (values are not shown)\n", env.Secrets)
	}
	workers := is.WorkerCount
	if mcr := d.RequestSettings.MaxConcurrentRequestsPerInstance; workers < mcr {
		fmt.Fprintf(w, "WARNING: WORKER_COUNT is %d but request_settings.max_concurrent_requests_per_instance is %d: "+
			"requests beyond %d per instance wait for a free Python worker; set environment_variables.WORKER_COUNT to %d\n", workers, mcr, workers, mcr)
	}
	fmt.Fprintf(w, "AZUREML_MODEL_DIR=%s\n", is.ModelDir)
	fmt.Fprintf(w, "entry script %s, working directory %s, %d worker(s)\n", is.EntryScript, is.CodeDir, workers)
}

// copyArtifact copies one stored artifact into an instance folder, logging how long it took.
func (s *Stager) copyArtifact(w io.Writer, what, digest, dst string) error {
	start := time.Now()
	lay, how := s.cfg.Artifacts.CopyTo, "copied"
	if what == "model" {
		// The model is mounted read-only, as Azure mounts it: links to the stored files.
		lay, how = s.cfg.Artifacts.LinkTo, "linked (read-only)"
	}
	files, size, err := lay(digest, dst)
	if err != nil {
		// Prepare writes the returned error to the log.
		return &diag.Error{Code: diag.BadArgument, Target: what,
			Message: fmt.Sprintf("unable to download user %s %s: %v; deploy again so the CLI uploads it", what, digest, err)}
	}
	fmt.Fprintf(w, "%s %s %s to %s: %d files, %d bytes in %s\n", how, what, digest, dst, files, size, time.Since(start).Round(time.Millisecond))
	return nil
}

// modelTarget is where a model artifact goes under its model dir, as Azure lays it
// out: a folder keeps its own name beneath the model dir ($AZUREML_MODEL_DIR/model/x.pkl
// for path: ./model), a single file named base sits directly in it.
func (s *Stager) modelTarget(digest, base, modelDir string) string {
	if root, err := s.cfg.Artifacts.Path(digest); err == nil {
		entries, err := os.ReadDir(root)
		if err == nil && len(entries) == 1 && entries[0].Name() == base && entries[0].Type().IsRegular() {
			return modelDir
		}
	}
	return filepath.Join(modelDir, base)
}

// readMLmodel finds the MLmodel file of an MLflow model folder and returns it as JSON
// (the worker has no YAML parser).
func readMLmodel(dir string) (string, error) {
	path := filepath.Join(dir, "MLmodel")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &diag.Error{Code: diag.BadArgument, Target: "model",
			Message: fmt.Sprintf("a deployment without code_configuration needs an MLflow model (a folder with an MLmodel file), but %s has none: add code_configuration with a scoring script, or register the model with --type mlflow_model", dir)}
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", &diag.Error{Code: diag.BadArgument, Target: "model",
			Message: fmt.Sprintf("the MLmodel file %s is not valid YAML: %v", path, err)}
	}
	b, err := json.Marshal(doc)
	return string(b), err
}
