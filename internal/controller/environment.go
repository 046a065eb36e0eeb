package controller

import (
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
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// envResult is what a deployment's instances run with.
type envResult struct {
	python   string
	warnings []string          // unmet pins of the environment build
	buildLog string            // the build log, when a build ran
	vars     map[string]string // environment_variables with secrets resolved, and WORKER_COUNT
	secrets  int               // how many secret references were resolved
}

// environment prepares the interpreter a deployment's instances run with: the built
// environment of its conda file, or the server's interpreter. Fields the process runtime
// cannot honour fail with ImageBuildFailure instead of being ignored.
func (c *Controller) environment(ctx context.Context, d *spec.Deployment, progress io.Writer) (envResult, error) {
	res := envResult{python: c.cfg.Python}
	env := d.Environment
	if env == nil {
		return res, nil
	}
	if env.Ref != "" {
		a, err := c.cfg.Registry.Resolve(ctx, store.KindEnvironment, env.Ref)
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
			fmt.Fprintf(progress, "environment: image %s is not used by the process runtime; score.py runs with %s\n", env.Image, res.python)
		}
		return res, nil
	}
	reqs, err := condaRequirements(env)
	if err != nil {
		return res, err
	}
	if c.cfg.Envs == nil {
		fmt.Fprintf(progress, "environment: conda files are not built by this server; score.py runs with %s\n", res.python)
		return res, nil
	}
	base, err := exec.LookPath(res.python)
	if err != nil {
		return res, &diag.Error{Code: diag.ImageBuildFailure, Target: "python",
			Message: fmt.Sprintf("the base interpreter %q is not found: install python3 or point `berth serve --python` at one", res.python)}
	}
	built, err := c.cfg.Envs.Build(ctx, base, reqs, progress)
	if built != nil {
		res.buildLog = built.LogPath
	}
	if err != nil {
		return res, err
	}
	if len(built.Warnings) > 0 {
		fmt.Fprintf(progress, "environment %s: %s\n", built.Key, strings.Join(built.Warnings, "; "))
	}
	res.python, res.warnings = built.Python, built.Warnings
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

// resolveEnv fills the environment variables instances get: the deployment's own with
// secret references resolved, and WORKER_COUNT.
func (c *Controller) resolveEnv(ctx context.Context, d *spec.Deployment, env *envResult) error {
	env.vars = maps.Clone(d.EnvironmentVariables)
	if env.vars == nil {
		env.vars = map[string]string{}
	}
	n, err := c.cfg.Registry.ResolveSecrets(ctx, env.vars)
	if err != nil {
		return err
	}
	env.secrets = n
	env.vars["WORKER_COUNT"] = strconv.Itoa(workerCount(d))
	return nil
}

// EnvironmentBuildLog returns the build log of a registered environment, if a deployment
// has built it on this server with the current settings.
func (c *Controller) EnvironmentBuildLog(a *store.Asset) string {
	if c.cfg.Envs == nil || a.Kind != store.KindEnvironment {
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
	base, err := exec.LookPath(c.cfg.Python)
	if err != nil {
		return ""
	}
	path := filepath.Join(c.cfg.Envs.Root, envbuild.Key(base, reqs, c.cfg.Envs.Strict), "build.log")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
