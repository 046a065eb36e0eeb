package instance

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMissingModule(t *testing.T) {
	tests := []struct{ text, want string }{
		{"score.py failed to import: ModuleNotFoundError: No module named 'sklearn' (score.py, line 3, in <module>)", "sklearn"},
		{"ModuleNotFoundError: No module named 'sklearn.linear_model'", "sklearn.linear_model"},
		{"ImportError: cannot import name 'Thing' from 'pandas' (/usr/lib/python3/dist-packages/pandas/__init__.py)", "pandas"},
		{"NameError: name 'x' is not defined", ""},
		{"No module named 'os; import shutil'", ""}, // never code: only dotted names
	}
	for _, tt := range tests {
		if got := MissingModule(tt.text); got != tt.want {
			t.Errorf("MissingModule(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// fakePython writes a shell script that acts as python3 of the given version: it
// imports the modules in has and fails on any other import.
func fakePython(t *testing.T, path, version string, has ...string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var cases strings.Builder
	for _, m := range has {
		cases.WriteString("  *'import " + m + ";'*) echo " + version + "; exit 0;;\n")
	}
	script := "#!/bin/sh\ncase \"$2\" in\n" + cases.String() +
		"  'import sys; print'*) echo " + version + "; exit 0;;\n" +
		"  *) echo \"ModuleNotFoundError: No module named 'x'\" >&2; exit 1;;\nesac\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCandidatesOrderAndDeduplication(t *testing.T) {
	root := t.TempDir()
	system := fakePython(t, filepath.Join(root, "usr/bin/python3"), "3.11.2", "sklearn")
	a := fakePython(t, filepath.Join(root, "pyenv/shims/python3"), "3.12.1")
	if err := os.Symlink(a, filepath.Join(root, "pyenv/shims/python3.12")); err != nil {
		t.Fatal(err)
	}
	b := fakePython(t, filepath.Join(root, "opt/bin/python3.10"), "3.10.4")
	fakePython(t, filepath.Join(root, "opt/bin/python3-config"), "x")  // not an interpreter
	fakePython(t, filepath.Join(root, "opt/bin/python3.10d.txt"), "x") // not an interpreter
	if err := os.WriteFile(filepath.Join(root, "opt/bin/python3.9"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err) // not executable
	}
	// A virtual environment on the system Python is another interpreter, though its
	// python is a symlink to the base; its python and python3 are one.
	venv := filepath.Join(root, "venv")
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("include-system-site-packages = false\n"), 0o644)
	for _, n := range []string{"python3", "python3.11"} {
		if err := os.Symlink(system, filepath.Join(venv, "bin", n)); err != nil {
			t.Fatal(err)
		}
	}
	path := strings.Join([]string{filepath.Join(root, "pyenv/shims"), filepath.Join(venv, "bin"), filepath.Join(root, "nope"), filepath.Join(root, "opt/bin"), filepath.Join(root, "usr/bin")}, string(os.PathListSeparator))
	in := Interpreters{System: system, Path: path}

	want := []string{system, filepath.Join(venv, "bin", "python3"), b}
	if diff := cmp.Diff(want, in.Candidates(a)); diff != "" {
		t.Errorf("candidates without the failed pyenv python (-want +got):\n%s", diff)
	}
	want = []string{a, filepath.Join(venv, "bin", "python3"), b}
	if diff := cmp.Diff(want, in.Candidates(filepath.Join(root, "usr/bin/python3"))); diff != "" {
		t.Errorf("candidates without the failed system python (-want +got):\n%s", diff)
	}
}

func TestFindModuleFakeInterpreters(t *testing.T) {
	root := t.TempDir()
	system := fakePython(t, filepath.Join(root, "usr/bin/python3"), "3.11.2", "numpy")
	failed := fakePython(t, filepath.Join(root, "pyenv/python3"), "3.12.1", "numpy")
	other := fakePython(t, filepath.Join(root, "opt/python3.10"), "3.10.4", "numpy", "sklearn")
	in := Interpreters{System: system, Path: filepath.Join(root, "pyenv") + string(os.PathListSeparator) + filepath.Join(root, "opt")}

	got, err := in.FindModule(t.Context(), failed, "score.py failed to import: ModuleNotFoundError: No module named 'sklearn' (score.py, line 1, in <module>)")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Found{Python: other, Version: "3.10.4", Module: "sklearn"}, got); diff != "" {
		t.Errorf("found (-want +got):\n%s", diff)
	}
	hint := got.Hint()
	for _, want := range []string{"berth serve --python " + other, "BERTH_PYTHON=" + other, "`BERTH_PYTHON: " + other + "` under environment_variables"} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q lacks %q", hint, want)
		}
	}

	if _, err := in.FindModule(t.Context(), failed, "ModuleNotFoundError: No module named 'torch'"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a module no interpreter has: err = %v, want ErrNotFound", err)
	}
	if _, err := in.FindModule(t.Context(), failed, "SyntaxError: invalid syntax"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no module named: err = %v, want ErrNotFound", err)
	}
}

// TestFindModuleRealVenv is the case of a fresh machine: a virtual environment without
// Debian's packages runs score.py, and /usr/bin/python3 has scikit-learn.
func TestFindModuleRealVenv(t *testing.T) {
	if _, err := exec.Command(SystemPython, "-c", "import sklearn").CombinedOutput(); err != nil {
		t.Skipf("%s has no sklearn: %v", SystemPython, err)
	}
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(SystemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	failed := filepath.Join(venv, "bin", "python3")
	in := Interpreters{System: SystemPython, Path: filepath.Join(venv, "bin")}
	got, err := in.FindModule(t.Context(), failed, "ModuleNotFoundError: No module named 'sklearn'")
	if err != nil {
		t.Fatal(err)
	}
	if got.Python != SystemPython || got.Module != "sklearn" || got.Version == "" {
		t.Errorf("found %+v, want %s with sklearn", got, SystemPython)
	}
	// The other way round: the venv lacks what the system Python has.
	in = Interpreters{System: failed, Path: ""}
	if _, err := in.FindModule(t.Context(), SystemPython, "No module named 'sklearn'"); !errors.Is(err, ErrNotFound) {
		t.Errorf("venv without sklearn: err = %v, want ErrNotFound", err)
	}
}

func TestPythonVersion(t *testing.T) {
	dir := t.TempDir()
	py := fakePython(t, filepath.Join(dir, "python3"), "3.13.0")
	v, path, err := PythonVersion(t.Context(), py)
	if err != nil || v != "3.13.0" || path != py {
		t.Errorf("PythonVersion = %q, %q, %v; want 3.13.0, %s", v, path, err, py)
	}
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'libpython3.so: cannot open' >&2\nexit 127\n"), 0o755)
	if _, _, err := PythonVersion(t.Context(), broken); err == nil || !strings.Contains(err.Error(), "libpython3.so: cannot open") {
		t.Errorf("a python that cannot run: err = %v, want its last stderr line", err)
	}
	if _, _, err := PythonVersion(t.Context(), filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing python: no error")
	}
}
