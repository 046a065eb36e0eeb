package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// SystemPython is the interpreter Debian's packages (apt-get install python3-<name>)
// install into.
const SystemPython = "/usr/bin/python3"

// EnvPython is the environment variable that names an interpreter: the server's
// (BERTH_PYTHON=... berth serve) or, in a deployment's environment_variables, that
// deployment's own.
const EnvPython = "BERTH_PYTHON"

// probeTimeout bounds one run of an interpreter that only imports a module or prints
// its version.
const probeTimeout = 10 * time.Second

// probeParallel is how many interpreters are tried at once.
const probeParallel = 4

// PythonVersion runs python once and returns its version (such as 3.11.2) and the
// absolute path it was found at.
func PythonVersion(ctx context.Context, python string) (version, path string, err error) {
	path, err = exec.LookPath(python)
	if err != nil {
		return "", "", err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	out, err := probe(ctx, path, "import sys; print(sys.version.split()[0])")
	if err != nil {
		return "", path, err
	}
	return strings.TrimSpace(string(out)), path, nil
}

// probe runs python -c code with a timeout and returns its stdout; a failure carries
// the last line python wrote to stderr.
func probe(ctx context.Context, python, code string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", code)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	// Not the caller's folder: python -c imports from its working directory first.
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		if line := lastLine(stderr.String()); line != "" {
			return nil, fmt.Errorf("%w: %s", err, line)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// importPatterns find the module an ImportError names, in Python's own words.
var importPatterns = []*regexp.Regexp{
	regexp.MustCompile(`No module named '([A-Za-z_][A-Za-z0-9_.]*)'`),
	regexp.MustCompile(`cannot import name '[A-Za-z_][A-Za-z0-9_]*' from '([A-Za-z_][A-Za-z0-9_.]*)'`),
}

// MissingModule returns the module a worker's import error names ("No module named
// 'sklearn'"), or "" when the text names none.
func MissingModule(text string) string {
	for _, re := range importPatterns {
		if m := re.FindStringSubmatch(text); m != nil {
			return m[1]
		}
	}
	return ""
}

// importStatement is the statement that fails the same way in another interpreter: the
// name a "cannot import name" error is about, or the module itself.
func importStatement(text, module string) string {
	re := regexp.MustCompile(`cannot import name '([A-Za-z_][A-Za-z0-9_]*)' from '` + regexp.QuoteMeta(module) + `'`)
	if m := re.FindStringSubmatch(text); m != nil {
		return "from " + module + " import " + m[1]
	}
	return "import " + module
}

// Interpreters are the Python interpreters of a machine that Berth considers when the
// chosen one lacks a module.
type Interpreters struct {
	// Known are tried first: interpreters the deployment ran on before.
	Known []string
	// System is tried next; "" means SystemPython.
	System string
	// Path is the PATH searched for python3 and python3.X, in its order.
	Path string
}

// MachineInterpreters are the interpreters of this machine: /usr/bin/python3, then
// python3 and python3.X on PATH.
func MachineInterpreters() Interpreters {
	return Interpreters{System: SystemPython, Path: os.Getenv("PATH")}
}

var versionedPython = regexp.MustCompile(`^python3(\.[0-9]+)?$`)

// Candidates lists the interpreters in the order they are tried, each once: two names
// of one program (a symlink, or the python and python3 of one virtual environment)
// count once, and the interpreter that failed is left out.
func (in Interpreters) Candidates(failed string) []string {
	system := in.System
	if system == "" {
		system = SystemPython
	}
	seen := map[string]bool{}
	if failed != "" {
		if p, err := exec.LookPath(failed); err == nil {
			seen[identity(p)] = true
		}
	}
	var out []string
	add := func(p string) {
		if !executable(p) {
			return
		}
		id := identity(p)
		if seen[id] {
			return
		}
		seen[id] = true
		out = append(out, p)
	}
	for _, p := range in.Known {
		add(p)
	}
	add(system)
	for _, dir := range filepath.SplitList(in.Path) {
		if dir == "" {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if versionedPython.MatchString(e.Name()) {
				add(filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// SameInterpreter reports whether paths a and b run the same interpreter with the same
// packages: one is a symlink to the other, or both are in one virtual environment.
func SameInterpreter(a, b string) bool {
	return identity(a) == identity(b)
}

// identity names the program an interpreter path runs. A virtual environment's python
// is a symlink to its base, but it is another interpreter (its own site-packages): it is
// named by its folder.
func identity(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	venv := filepath.Dir(filepath.Dir(abs))
	if _, err := os.Stat(filepath.Join(venv, "pyvenv.cfg")); err == nil {
		if real, err := filepath.EvalSymlinks(venv); err == nil {
			return "venv:" + real
		}
		return "venv:" + venv
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Found is an interpreter that has the module another lacked.
type Found struct {
	Python  string // its path
	Version string // its version, such as 3.11.2
	Module  string // the module it imports
}

// ErrNotFound means no other interpreter imports the module.
var ErrNotFound = errors.New("no other interpreter has the module")

// FindModule looks for an interpreter other than failed that imports what the import
// error text names: the first in the order of Candidates that does. ErrNotFound means
// none does, or the text names no module.
func (in Interpreters) FindModule(ctx context.Context, failed, text string) (Found, error) {
	module := MissingModule(text)
	if module == "" {
		return Found{}, ErrNotFound
	}
	code := importStatement(text, module) + "; import sys; print(sys.version.split()[0])"
	py, version, err := in.First(ctx, failed, func(ctx context.Context, python string) string {
		out, err := probe(ctx, python, code)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	})
	if err != nil {
		return Found{}, err
	}
	return Found{Python: py, Version: version, Module: module}, nil
}

// First tries has on the candidates other than failed, a few at a time, each bounded
// by a short timeout, and returns the first in their order for which has returns a
// version (""  means no). ErrNotFound means none.
func (in Interpreters) First(ctx context.Context, failed string, has func(ctx context.Context, python string) string) (python, version string, err error) {
	candidates := in.Candidates(failed)
	versions := make([]string, len(candidates)) // "" where has said no
	slots := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for i, py := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			versions[i] = has(pctx, py)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	for i, v := range versions {
		if v != "" {
			return candidates[i], v, nil
		}
	}
	return "", "", ErrNotFound
}

// Hint says how to run score.py with f.Python: for the whole server, or for one
// deployment.
func (f Found) Hint() string {
	return fmt.Sprintf("%s (Python %s) has %s: restart the server with `berth serve --python %s` (or %s=%s berth serve), "+
		"or run only this deployment with it: add `%s: %s` under environment_variables in its YAML and update the deployment",
		f.Python, f.Version, f.Module, f.Python, EnvPython, f.Python, EnvPython, f.Python)
}
