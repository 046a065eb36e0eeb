package stage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/instance"
)

const pythonDeployment = "name: blue\nendpoint_name: shop\ninstance_count: 1\ncode_configuration: {code: ., scoring_script: s.py}\n"

// TestDeploymentNamesItsPython: environment_variables.BERTH_PYTHON runs the
// deployment's instances instead of the server's interpreter.
func TestDeploymentNamesItsPython(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "python3")
	if err := os.WriteFile(py, []byte("#!/bin/sh\necho 3.12.7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Registry: fakeRegistry{}, Python: "/server/python3"})
	var progress bytes.Buffer
	env, err := s.Environment(t.Context(), deployment(t, pythonDeployment+"environment_variables: {BERTH_PYTHON: "+py+"}\n"), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if env.Python != py || env.Vars["BERTH_PYTHON"] != py {
		t.Errorf("python %q, vars %v; want %s", env.Python, env.Vars, py)
	}
	if want := "python: " + py + " (Python 3.12.7), from environment_variables.BERTH_PYTHON"; !strings.Contains(progress.String(), want) {
		t.Errorf("progress lacks %q:\n%s", want, progress.String())
	}

	// Without it, the server's.
	env, err = s.Environment(t.Context(), deployment(t, pythonDeployment), &progress)
	if err != nil || env.Python != "/server/python3" {
		t.Errorf("without BERTH_PYTHON: python %q, %v; want the server's", env.Python, err)
	}
}

func TestDeploymentPythonMustRun(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "python-noexec")
	os.WriteFile(notExec, []byte("#!/bin/sh\necho 3.12.7\n"), 0o644)
	broken := filepath.Join(dir, "python-broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot open shared object file' >&2\nexit 127\n"), 0o755)
	tests := []struct{ value, want string }{
		{"python3", "not an absolute path"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a file"},
		{notExec, "not executable"},
		{broken, "cannot open shared object file"},
	}
	s := New(Config{Registry: fakeRegistry{}})
	for _, tt := range tests {
		_, err := s.Environment(t.Context(), deployment(t, pythonDeployment+"environment_variables: {BERTH_PYTHON: "+tt.value+"}\n"), &bytes.Buffer{})
		de := diag.As(err)
		if de == nil || de.Code != diag.ImageBuildFailure || de.Target != "environment_variables.BERTH_PYTHON" {
			t.Errorf("%s: err = %v, want ImageBuildFailure on environment_variables.BERTH_PYTHON", tt.value, err)
			continue
		}
		for _, w := range []string{tt.want, "environment_variables.BERTH_PYTHON " + tt.value, "absolute path of a Python 3 interpreter", "or remove it"} {
			if !strings.Contains(de.Message, w) {
				t.Errorf("%s: message lacks %q: %s", tt.value, w, de.Message)
			}
		}
	}
}

// TestDeploymentPythonIsTheBaseOfItsEnvironment: a conda file is built into a virtual
// environment on the deployment's interpreter, not the server's.
func TestDeploymentPythonIsTheBaseOfItsEnvironment(t *testing.T) {
	if err := exec.Command(instance.SystemPython, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s has no numpy: %v", instance.SystemPython, err)
	}
	// The server's interpreter does not exist: only the deployment's can be the base.
	s := New(Config{Registry: fakeRegistry{}, Python: filepath.Join(t.TempDir(), "python3"), Envs: &envbuild.Builder{Root: t.TempDir()}})
	d := deployment(t, pythonDeployment+"environment_variables: {BERTH_PYTHON: "+instance.SystemPython+"}\n"+
		"environment: {image: x, conda_file: {dependencies: [python=3, numpy]}}\n")
	env, err := s.Environment(t.Context(), d, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if env.Python == instance.SystemPython || !strings.HasPrefix(env.Python, s.cfg.Envs.Root) {
		t.Fatalf("python %q, want the built environment's", env.Python)
	}
	if out, err := exec.Command(env.Python, "-c", "import numpy, sys; print(sys.base_prefix)").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "/usr" {
		t.Errorf("the environment is not built on %s: %s (%v)", instance.SystemPython, out, err)
	}
}

// TestFailedBuildNamesAnInterpreterThatHasThePackages: a package the base lacks and pip
// cannot install, but another interpreter has: the error names it and the command.
func TestFailedBuildNamesAnInterpreterThatHasThePackages(t *testing.T) {
	if _, err := os.Stat(instance.SystemPython); err != nil {
		t.Skip("no system python")
	}
	dir := t.TempDir()
	// Another interpreter, answering check.py: it has the package.
	other := filepath.Join(dir, "python3.12")
	script := "#!/bin/sh\ncat >/dev/null\necho '{\"python\": \"3.12.7\", \"packages\": {\"berth-test-pkg\": {\"installed\": \"1.0\", \"ok\": true}}}'\n"
	if err := os.WriteFile(other, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	noPip := func(context.Context, string, []string, io.Writer) error { return errors.New("no index") }
	d := deployment(t, pythonDeployment+"environment: {image: x, conda_file: {dependencies: [python=3, {pip: [berth-test-pkg]}]}}\n")
	found := "Fix: " + other + " (Python 3.12.7) has berth-test-pkg: restart the server with `berth serve --python " + other + "`"
	for _, tt := range []struct {
		name   string
		in     *instance.Interpreters
		before string // the interpreter the deployment's last good version ran on
		want   string
	}{
		// the interpreter that has it is the first fix named, the generic ones after it
		{"found", &instance.Interpreters{System: other}, "", found},
		{"none", &instance.Interpreters{System: instance.SystemPython}, "", ""},
		// not one of the machine's usual ones, but the deployment ran on it before
		{"ran on it before", &instance.Interpreters{System: instance.SystemPython}, other, found},
	} {
		s := New(Config{Registry: fakeRegistry{}, Python: instance.SystemPython, Interpreters: tt.in,
			Envs: &envbuild.Builder{Root: t.TempDir(), Pip: noPip}})
		_, err := s.EnvironmentOn(t.Context(), d, Past{Before: tt.before}, &bytes.Buffer{})
		de := diag.As(err)
		if de == nil || de.Code != diag.ImageBuildFailure || !strings.Contains(de.Message, "pip could not install berth-test-pkg") {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		// Found: the other fixes are pip's; installing elsewhere and switching is the hint.
		if tt.want != "" && (!strings.Contains(de.Message, tt.want) || !strings.Contains(de.Message, "Otherwise: pin versions") || strings.Contains(de.Message, "apt-get install")) {
			t.Errorf("%s: message lacks %q first, then the other fixes:\n%s", tt.name, tt.want, de.Message)
		}
		if tt.want == "" && strings.Contains(de.Message, "has berth-test-pkg") {
			t.Errorf("%s: names an interpreter that lacks the package:\n%s", tt.name, de.Message)
		}
	}
}

// TestDeploymentKeepsTheInterpreterItWasBuiltOn: a re-provision runs on the interpreter
// the deployment recorded while that one can be run, says so, and otherwise takes the
// server's; one named in the spec wins and is not recorded.
func TestDeploymentKeepsTheInterpreterItWasBuiltOn(t *testing.T) {
	dir := t.TempDir()
	server, kept, named := filepath.Join(dir, "server-python3"), filepath.Join(dir, "kept-python3"), filepath.Join(dir, "named-python3")
	for _, py := range []string{server, kept, named} {
		if err := os.WriteFile(py, []byte("#!/bin/sh\necho 3.12.7\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Registry: fakeRegistry{}, Python: server})
	for _, tc := range []struct {
		name, spec, kept string
		python, base     string // want
		says             string
	}{
		{"kept", pythonDeployment, kept, kept, kept, "python: " + kept + " (Python 3.12.7), which this deployment was built on; the server's is now " + server},
		{"kept is the server's", pythonDeployment, server, server, server, ""},
		{"nothing kept", pythonDeployment, "", server, server, ""},
		{"kept is gone", pythonDeployment, filepath.Join(dir, "removed-python3"), server, server, "which this deployment was built on, can no longer be run"},
		{"named in the spec", pythonDeployment + "environment_variables: {BERTH_PYTHON: " + named + "}\n", kept, named, "", "from environment_variables.BERTH_PYTHON"},
	} {
		var progress bytes.Buffer
		env, err := s.EnvironmentOn(t.Context(), deployment(t, tc.spec), Past{Kept: tc.kept}, &progress)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if env.Python != tc.python || env.Base != tc.base {
			t.Errorf("%s: python %q, base %q; want %q, %q", tc.name, env.Python, env.Base, tc.python, tc.base)
		}
		if tc.says == "" && progress.Len() > 0 || !strings.Contains(progress.String(), tc.says) {
			t.Errorf("%s: progress %q, want %q", tc.name, progress.String(), tc.says)
		}
	}
}

// TestCuratedEnvironmentRunsOnThisMachinesPython: an Azure curated environment is an
// image this machine does not have: the deployment runs on the server's interpreter,
// saying so, with a warning for each framework the name promises that it lacks.
func TestCuratedEnvironmentRunsOnThisMachinesPython(t *testing.T) {
	py := instance.SystemPython
	if exec.Command(py, "-c", "import sklearn").Run() != nil {
		t.Skipf("%s lacks scikit-learn (apt-get install python3-sklearn)", py)
	}
	hasLightGBM := exec.Command(py, "-c", "import lightgbm").Run() == nil
	s := New(Config{Registry: fakeRegistry{}, Python: py})
	for _, tc := range []struct {
		ref, name string
		warns     bool
	}{
		{"azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "sklearn-1.5", false},
		{"azureml:AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu:1", "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu", !hasLightGBM},
	} {
		var progress bytes.Buffer
		env, err := s.Environment(t.Context(), deployment(t, pythonDeployment+"environment: "+tc.ref+"\n"), &progress)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if env.Python != py || !strings.Contains(progress.String(), tc.name+" is Azure's curated environment") {
			t.Errorf("%s: python %q, progress:\n%s", tc.ref, env.Python, progress.String())
		}
		if warned := len(env.Warnings) > 0 && strings.Contains(env.Warnings[0], "apt-get install python3-lightgbm"); warned != tc.warns {
			t.Errorf("%s: warnings %q, want a lightgbm warning: %v", tc.ref, env.Warnings, tc.warns)
		}
	}
}
