package envbuild

import (
	"context"
	"errors"
	"fmt"
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

// TestBuildThatCannotReachAnIndexSaysSo: pip's connection failures, deep in the build
// log, become the first fix the message names.
func TestBuildThatCannotReachAnIndexSaysSo(t *testing.T) {
	base := "/usr/bin/python3"
	if exec.Command(base, "-c", "import venv").Run() != nil {
		t.Skip("no /usr/bin/python3 with venv")
	}
	b := &Builder{Root: t.TempDir(), Pip: func(_ context.Context, _ string, _ []string, log io.Writer) error {
		fmt.Fprintln(log, "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by "+
			"'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -2] Name or service not known')': /simple/berth-offline-pkg/")
		fmt.Fprintln(log, "ERROR: Could not find a version that satisfies the requirement berth-offline-pkg (from versions: none)")
		return errors.New("exit status 1")
	}}
	_, err := b.Build(t.Context(), base, []Requirement{{Name: "berth-offline-pkg", Line: "berth-offline-pkg"}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Fix: no package index could be reached ([Errno -2] Name or service not known)") ||
		!strings.Contains(err.Error(), "PIP_INDEX_URL") || strings.Contains(err.Error(), "pin versions") {
		t.Fatalf("error: %v", err)
	}
}
