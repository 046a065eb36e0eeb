package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// Env is what a deployment's instances run with, prepared once per rollout.
type Env struct {
	Python   string            // the interpreter: the built environment's, or the server's
	Base     string            // the interpreter it stands on (absolute, symlinks kept), for the deployment to keep; "" when its environment_variables name one
	Warnings []string          // unmet pins of the environment build
	BuildLog string            // the build log, when a build ran
	Vars     map[string]string // environment_variables with secrets resolved, and WORKER_COUNT
	Secrets  int               // how many secret references were resolved
	Log      []byte            // what the build printed, for each instance's storage-initializer log
}

// Environment prepares what a deployment's instances run with: the built environment
// of its conda file (or the server's interpreter) and its environment variables with
// secrets resolved. progress receives the build's steps. Fields the process runtime
// cannot honour fail with ImageBuildFailure instead of being ignored.
func (s *Stager) Environment(ctx context.Context, d *spec.Deployment, progress io.Writer) (Env, error) {
	return s.EnvironmentOn(ctx, d, Past{}, progress)
}

// Past are the interpreters a deployment ran on before.
type Past struct {
	// Kept is the one its current version was built on (Env.Base, as recorded): it runs
	// there again while that file can be run and the deployment does not name its own,
	// so a server restarted with another default keeps a working deployment on the
	// interpreter that has its packages. "" is the server's.
	Kept string
	// Before is the one its last version that succeeded ran on: when a build lacks
	// packages, it is the first interpreter asked whether it has them.
	Before string
}

// EnvironmentOn is Environment for a deployment that ran on the interpreters past.
func (s *Stager) EnvironmentOn(ctx context.Context, d *spec.Deployment, past Past, progress io.Writer) (Env, error) {
	var log bytes.Buffer
	env, err := s.environment(ctx, d, past, io.MultiWriter(&log, progress))
	env.Log = log.Bytes()
	if err != nil {
		return env, err
	}
	return env, s.resolveVars(ctx, d, &env)
}

func (s *Stager) environment(ctx context.Context, d *spec.Deployment, past Past, progress io.Writer) (Env, error) {
	res := Env{Python: s.cfg.Python}
	named := d.EnvironmentVariables[instance.EnvPython]
	if py := named; py != "" {
		version, err := deploymentPython(ctx, py)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(progress, "python: %s (Python %s), from environment_variables.%s\n", py, version, instance.EnvPython)
		res.Python = py
	} else if past.Kept != "" {
		res.Python = s.keptPython(ctx, past.Kept, progress)
	}
	base := ""
	if found, err := exec.LookPath(res.Python); err == nil {
		base, _ = filepath.Abs(found) // not EvalSymlinks: a virtual environment's python links to another interpreter
	}
	if named == "" {
		res.Base = base // BERTH_PYTHON in the spec decides on every rollout: nothing to keep
	}
	env := d.Environment
	if env == nil {
		return res, nil
	}
	if env.Ref != "" {
		a, err := s.cfg.Registry.Resolve(ctx, store.KindEnvironment, env.Ref)
		if name, curated := CuratedFallback(env.Ref, err); curated {
			res.Warnings = curatedEnvironment(ctx, name, res.Python, progress)
			return res, nil
		}
		if err != nil {
			return res, err
		}
		var registered spec.Environment
		if err := json.Unmarshal(a.Spec, &registered); err != nil {
			return res, fmt.Errorf("read registered environment %s:%s: %w", a.Name, a.Version, err)
		}
		fmt.Fprintf(progress, "environment %s: registered environment %s version %s\n", env.Ref, a.Name, a.Version)
		env = &registered
	}
	if err := unsupportedEnvironment(env); err != nil {
		return res, err
	}
	if env.CondaFile == nil {
		if env.Image != "" {
			fmt.Fprintf(progress, "environment: image %s is not used by the process runtime; score.py runs with %s\n", env.Image, res.Python)
		}
		return res, nil
	}
	reqs, err := condaRequirements(env)
	if err != nil {
		return res, err
	}
	if s.cfg.Envs == nil {
		fmt.Fprintf(progress, "environment: conda files are not built by this server; score.py runs with %s\n", res.Python)
		return res, nil
	}
	if base == "" {
		return res, &diag.Error{Code: diag.ImageBuildFailure, Target: "python",
			Message: fmt.Sprintf("the base interpreter %q is not found: install python3 or point `berth serve --python` at one", res.Python)}
	}
	built, err := s.cfg.Envs.Build(ctx, base, reqs, progress)
	if built != nil {
		res.BuildLog = built.LogPath
	}
	if err != nil {
		return res, s.withInterpreterHint(ctx, base, past.Before, built, err)
	}
	if len(built.Warnings) > 0 {
		fmt.Fprintf(progress, "environment %s: %s\n", built.Key, strings.Join(built.Warnings, "; "))
	}
	res.Python, res.Warnings = built.Python, built.Warnings
	return res, nil
}

// unsupportedEnvironment refuses what asks for a container the process runtime cannot build or run.
func unsupportedEnvironment(env *spec.Environment) error {
	switch {
	case env.Build != nil:
		return &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.build",
			Message: "environment.build asks for a Docker image build, which the process runtime cannot do: give the environment a conda_file (built into a Python virtual environment) or remove build"}
	case env.InferenceConfig != nil:
		return &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.inference_config",
			Message: "environment.inference_config describes a custom container (BYOC), which the process runtime cannot run: deploy the container's scoring code as code_configuration with a score.py instead"}
	}
	return nil
}

// condaRequirements reads the conda file content the CLI sent with the spec.
func condaRequirements(env *spec.Environment) ([]envbuild.Requirement, error) {
	if path, ok := env.CondaFile.(string); ok {
		return nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.conda_file",
			Message: fmt.Sprintf("the conda file %s was not sent with the deployment: deploy with the berth CLI, which sends its content", path)}
	}
	data, err := yaml.Marshal(env.CondaFile)
	if err != nil {
		return nil, fmt.Errorf("read conda file: %w", err)
	}
	reqs, err := envbuild.ParseConda(data)
	if err != nil {
		return nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.conda_file", Message: err.Error()}
	}
	return reqs, nil
}

// resolveVars fills the environment variables instances get: the deployment's own with
// secret references resolved, and WORKER_COUNT.
func (s *Stager) resolveVars(ctx context.Context, d *spec.Deployment, env *Env) error {
	env.Vars = maps.Clone(d.EnvironmentVariables)
	if env.Vars == nil {
		env.Vars = map[string]string{}
	}
	n, err := s.cfg.Registry.ResolveSecrets(ctx, env.Vars)
	if err != nil {
		return err
	}
	env.Secrets = n
	env.Vars["WORKER_COUNT"] = strconv.Itoa(WorkerCount(d))
	return nil
}

// BuildLog returns the build log of a registered environment, if a deployment has built
// it on this server with the current settings.
func (s *Stager) BuildLog(a *store.Asset) string {
	if s.cfg.Envs == nil || a.Kind != store.KindEnvironment {
		return ""
	}
	var env spec.Environment
	if json.Unmarshal(a.Spec, &env) != nil || env.CondaFile == nil {
		return ""
	}
	reqs, err := condaRequirements(&env)
	if err != nil {
		return ""
	}
	base, err := exec.LookPath(s.cfg.Python)
	if err != nil {
		return ""
	}
	path := filepath.Join(s.cfg.Envs.Root, envbuild.Key(base, reqs, s.cfg.Envs.Strict), "build.log")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
