package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// environment prepares the interpreter a deployment's instances run with: the built
// environment of its conda file, or the server's interpreter. Fields the process runtime
// cannot honour fail with ImageBuildFailure instead of being ignored.
func (c *Controller) environment(ctx context.Context, d *spec.Deployment, progress io.Writer) (python string, warnings []string, err error) {
	python = c.cfg.Python
	if python == "" {
		python = "python3"
	}
	env := d.Environment
	if env == nil {
		return python, nil, nil
	}
	if env.Ref != "" {
		a, err := c.ResolveAsset(ctx, AssetEnvironment, env.Ref)
		if err != nil {
			return "", nil, err
		}
		var registered spec.Environment
		if err := json.Unmarshal(a.Spec, &registered); err != nil {
			return "", nil, err
		}
		fmt.Fprintf(progress, "environment %s: registered environment %s version %s\n", env.Ref, a.Name, a.Version)
		env = &registered
	}
	switch {
	case env.Build != nil:
		return "", nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.build",
			Message: "environment.build asks for a Docker image build, which the process runtime cannot do: give the environment a conda_file (built into a Python virtual environment) or remove build"}
	case env.InferenceConfig != nil:
		return "", nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.inference_config",
			Message: "environment.inference_config describes a custom container (BYOC), which the process runtime cannot run: deploy the container's scoring code as code_configuration with a score.py instead"}
	}
	if env.CondaFile == nil {
		if env.Image != "" {
			fmt.Fprintf(progress, "environment: image %s is not used by the process runtime; score.py runs with %s\n", env.Image, python)
		}
		return python, nil, nil
	}
	var data []byte
	switch v := env.CondaFile.(type) {
	case string:
		return "", nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.conda_file",
			Message: fmt.Sprintf("the conda file %s was not sent with the deployment: deploy with the berth CLI, which sends its content", v)}
	default:
		if data, err = yaml.Marshal(v); err != nil {
			return "", nil, err
		}
	}
	reqs, err := envbuild.ParseConda(data)
	if err != nil {
		return "", nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "environment.conda_file", Message: err.Error()}
	}
	if c.cfg.Envs == nil {
		fmt.Fprintf(progress, "environment: conda files are not built by this server; score.py runs with %s\n", python)
		return python, nil, nil
	}
	base, err := exec.LookPath(python)
	if err != nil {
		return "", nil, &diag.Error{Code: diag.ImageBuildFailure, Target: "python",
			Message: fmt.Sprintf("the base interpreter %q is not found: install python3 or point `berth serve --python` at one", python)}
	}
	res, err := c.cfg.Envs.Build(ctx, base, reqs, progress)
	if err != nil {
		return "", nil, err
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(progress, "environment %s: %s\n", res.Key, strings.Join(res.Warnings, "; "))
	}
	return res.Python, res.Warnings, nil
}

// EnvironmentBuildLog returns the build log of a registered environment, if a deployment
// has built it on this server with the current settings.
func (c *Controller) EnvironmentBuildLog(a *store.Asset) string {
	if c.cfg.Envs == nil || a.Kind != AssetEnvironment {
		return ""
	}
	var env spec.Environment
	if json.Unmarshal(a.Spec, &env) != nil || env.CondaFile == nil {
		return ""
	}
	data, err := yaml.Marshal(env.CondaFile)
	if err != nil {
		return ""
	}
	reqs, err := envbuild.ParseConda(data)
	if err != nil {
		return ""
	}
	python := c.cfg.Python
	if python == "" {
		python = "python3"
	}
	base, err := exec.LookPath(python)
	if err != nil {
		return ""
	}
	path := filepath.Join(c.cfg.Envs.Root, envbuild.Key(base, reqs, c.cfg.Envs.Strict), "build.log")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
