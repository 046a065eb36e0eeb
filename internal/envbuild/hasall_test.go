package envbuild

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
)

func TestHasAll(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s has no numpy: %v", debianPython, err)
	}
	if v, ok := HasAll(t.Context(), debianPython, []Requirement{{Name: "numpy"}}); !ok || !strings.HasPrefix(v, "3.") {
		t.Errorf("numpy in %s: %q, %v", debianPython, v, ok)
	}
	if _, ok := HasAll(t.Context(), debianPython, []Requirement{{Name: "numpy"}, {Name: "berth-test-not-installed"}}); ok {
		t.Error("a package that is not installed: ok")
	}
	// A virtual environment without the system's packages lacks it.
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(debianPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	if _, ok := HasAll(t.Context(), filepath.Join(venv, "bin", "python3"), []Requirement{{Name: "numpy"}}); ok {
		t.Error("numpy in a venv without system packages: ok")
	}
	if _, ok := HasAll(t.Context(), filepath.Join(venv, "missing"), []Requirement{{Name: "numpy"}}); ok {
		t.Error("an interpreter that does not exist: ok")
	}
}

// TestFailedInstallReportsWhatIsMissing: a build whose pip cannot install what the base
// lacks returns those requirements, for the caller to look for them elsewhere.
func TestFailedInstallReportsWhatIsMissing(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("no system python")
	}
	b := &Builder{Root: t.TempDir(), Pip: func(context.Context, string, []string, io.Writer) error { return errors.New("no index") }}
	reqs := []Requirement{{Name: "berth-test-not-installed", Line: "berth-test-not-installed"}}
	r, err := b.Build(t.Context(), debianPython, reqs, io.Discard)
	de := diag.As(err)
	if de == nil || de.Code != diag.ImageBuildFailure || !strings.Contains(de.Message, "pip could not install berth-test-not-installed") {
		t.Fatalf("build: %v", err)
	}
	if r == nil || len(r.Missing) != 1 || r.Missing[0].Name != "berth-test-not-installed" {
		t.Fatalf("result %+v, want Missing = the requirement", r)
	}
	if !strings.Contains(de.Message, "install them from Debian (apt-get install python3-<name>)") {
		t.Errorf("Debian's base: %s", de.Message)
	}
}

func TestInstallFix(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("no system python")
	}
	if got := installFix(debianPython); got != "install them from Debian (apt-get install python3-<name>)" {
		t.Errorf("Debian's python: %q", got)
	}
	if got := installFix("/root/.pyenv/shims/python3"); !strings.Contains(got, "`berth serve --python /usr/bin/python3`") || !strings.Contains(got, "environment_variables.BERTH_PYTHON") {
		t.Errorf("another python: %q", got)
	}
}
