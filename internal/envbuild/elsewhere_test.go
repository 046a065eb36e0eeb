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
	"github.com/berthml/berth/internal/instance"
)

// fakeChecker writes a script that answers check.py's question as an interpreter with
// numpy (has) or without it.
func fakeChecker(t *testing.T, path string, has bool) string {
	t.Helper()
	installed := "null"
	if has {
		installed = `"1.24.2"`
	}
	script := "#!/bin/sh\ncat >/dev/null\necho '{\"python\": \"3.10.4\", \"packages\": {\"numpy\": {\"installed\": " + installed + ", \"ok\": true}}}'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFailedInstallNamesAnInterpreterThatHasThePackages: when pip cannot install what
// the base lacks, the error names the interpreter that has it and the command.
func TestFailedInstallNamesAnInterpreterThatHasThePackages(t *testing.T) {
	if err := exec.Command(instance.SystemPython, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s has no numpy: %v", instance.SystemPython, err)
	}
	dir := t.TempDir()
	lacking := fakeChecker(t, filepath.Join(dir, "python3.10"), false)
	has := fakeChecker(t, filepath.Join(dir, "python3.12"), true)
	// The base: a virtual environment of the system Python without its packages.
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(instance.SystemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	base := filepath.Join(venv, "bin", "python3")
	missing := []Requirement{{Name: "numpy", Line: "numpy"}}

	b := &Builder{Interpreters: &instance.Interpreters{System: lacking, Path: dir}}
	hint := b.elsewhere(t.Context(), base, missing)
	if !strings.Contains(hint, has+" (Python 3.10.4) has numpy") || !strings.Contains(hint, "berth serve --python "+has) {
		t.Errorf("fake interpreters: hint %q, want %s", hint, has)
	}
	// The real system Python, found by check.py itself.
	b.Interpreters = &instance.Interpreters{System: instance.SystemPython}
	hint = b.elsewhere(t.Context(), base, missing)
	if !strings.Contains(hint, instance.SystemPython+" (Python 3.") || !strings.Contains(hint, "`berth serve --python "+instance.SystemPython+"`") {
		t.Errorf("system python: hint %q", hint)
	}
	// Nobody has it.
	b.Interpreters = &instance.Interpreters{System: lacking}
	if hint := b.elsewhere(t.Context(), base, missing); hint != "" {
		t.Errorf("no interpreter has numpy: hint %q", hint)
	}

	// The whole build, with a package no interpreter has (a venv made from a venv sees
	// the system's packages, so numpy would not be missing): pip fails, no interpreter is
	// named, and the fix for a base that is not Debian's is not apt-get alone.
	b = &Builder{Root: t.TempDir(), Interpreters: &instance.Interpreters{System: lacking, Path: dir},
		Pip: func(context.Context, string, []string, io.Writer) error { return errors.New("no index") }}
	_, err := b.Build(t.Context(), base, []Requirement{{Name: "berth-test-not-installed", Line: "berth-test-not-installed"}}, io.Discard)
	de := diag.As(err)
	if de == nil || de.Code != diag.ImageBuildFailure || !strings.Contains(de.Message, "pip could not install berth-test-not-installed") {
		t.Fatalf("build: %v", err)
	}
	if strings.Contains(de.Message, "has berth-test-not-installed") {
		t.Errorf("names an interpreter for a package none has: %s", de.Message)
	}
	if !strings.Contains(de.Message, "base the environment on /usr/bin/python3") {
		t.Errorf("a venv base: the fix must not be apt-get alone: %s", de.Message)
	}
}

func TestInstallFix(t *testing.T) {
	if _, err := os.Stat(instance.SystemPython); err != nil {
		t.Skip("no system python")
	}
	if got := installFix(instance.SystemPython); got != "install them from Debian (apt-get install python3-<name>)" {
		t.Errorf("Debian's python: %q", got)
	}
	if got := installFix("/root/.pyenv/shims/python3"); !strings.Contains(got, "`berth serve --python /usr/bin/python3`") || !strings.Contains(got, "environment_variables.BERTH_PYTHON") {
		t.Errorf("another python: %q", got)
	}
}
