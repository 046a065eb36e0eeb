// Package envbuild owns Python environments built from conda files and pip
// requirements: a virtual environment per content hash on top of the base interpreter,
// reusing what the base already has and installing only what is missing.
package envbuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

//go:embed check.py
var checkScript string

// Requirement is one package a conda file or requirements file asks for.
type Requirement struct {
	Name string // distribution name, lower case
	Spec string // version constraint: "", "==1.2", ">=1", "=1.2" (conda: 1.2.*)
	Line string // as written, for messages and pip
}

// Builder builds environments under Root. It is safe for concurrent use; builds of the
// same environment wait for each other.
type Builder struct {
	Root   string // <data-dir>/envs
	Strict bool   // a version pin the base does not meet fails the build (else: a warning)
	// Pip installs the pip requirement strings reqs into the environment of python,
	// writing its output to log. Nil runs `python -m pip install`, which takes the index
	// and find-links from PIP_INDEX_URL / PIP_FIND_LINKS.
	Pip   func(ctx context.Context, python string, reqs []string, log io.Writer) error
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Result is a built environment, or, next to a build error, what the failed build
// left: its Key and LogPath, and Missing when pip could not install what the base lacks.
type Result struct {
	Key      string        `json:"key"`
	Python   string        `json:"python"` // interpreter of the environment
	Warnings []string      `json:"warnings,omitempty"`
	LogPath  string        `json:"log"` // path of build.log
	Reused   bool          `json:"-"`
	Took     time.Duration `json:"-"`
	// Missing, after a failed build, are the requirements the base lacks and pip could
	// not install: another interpreter may have them (HasAll).
	Missing []Requirement `json:"-"`
	// Failure, after a failed build, is why it failed, as its error's message begins.
	Failure string `json:"-"`
}

// ParseConda reads the dependencies of a conda environment file: conda packages and
// the pip list. "python" keeps its version constraint; "pip" itself is dropped.
func ParseConda(data []byte) ([]Requirement, error) {
	var env struct {
		Dependencies []any `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("conda file is not valid YAML: %w", err)
	}
	var reqs []Requirement
	for _, d := range env.Dependencies {
		switch v := d.(type) {
		case string:
			r := parseConda(v)
			if r.Name != "pip" {
				reqs = append(reqs, r)
			}
		case map[string]any:
			list, _ := v["pip"].([]any)
			for _, p := range list {
				if s, ok := p.(string); ok {
					if r, ok := parsePip(s); ok {
						reqs = append(reqs, r)
					}
				}
			}
		}
	}
	return reqs, nil
}

// ParseRequirements reads a pip requirements file.
func ParseRequirements(data []byte) []Requirement {
	var reqs []Requirement
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if r, ok := parsePip(sc.Text()); ok {
			reqs = append(reqs, r)
		}
	}
	return reqs
}

var pipLine = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([<>=!~].*)?$`)

func parsePip(line string) (Requirement, bool) {
	line = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
	if line == "" || strings.HasPrefix(line, "-") {
		return Requirement{}, false
	}
	m := pipLine.FindStringSubmatch(line)
	if m == nil {
		return Requirement{Name: strings.ToLower(line), Line: line}, true
	}
	return Requirement{Name: strings.ToLower(m[1]), Spec: strings.ReplaceAll(m[3], " ", ""), Line: line}, true
}

func parseConda(s string) Requirement {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "::"); i >= 0 { // channel::package
		s = s[i+2:]
	}
	name, spec := s, ""
	if i := strings.IndexAny(s, "=<>!~ "); i >= 0 {
		name, spec = s[:i], strings.ReplaceAll(s[i:], " ", "")
		// conda "pkg=1.2=build": keep the version only.
		if strings.HasPrefix(spec, "=") && !strings.HasPrefix(spec, "==") {
			parts := strings.Split(spec[1:], "=")
			spec = "=" + parts[0]
		}
	}
	return Requirement{Name: strings.ToLower(name), Spec: spec, Line: s}
}

// Key is the content hash that names an environment. Requirements Berth provides
// (azureml-inference-server-http, inference-schema, ...) do not count.
func Key(base string, reqs []Requirement, strict bool) string {
	reqs, _ = splitProvided(reqs)
	lines := make([]string, len(reqs))
	for i, r := range reqs {
		lines[i] = r.Name + " " + r.Spec
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\n%v\n%s", base, strict, strings.Join(lines, "\n"))))
	return hex.EncodeToString(h[:])[:16]
}

func (b *Builder) lock(key string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locks == nil {
		b.locks = map[string]*sync.Mutex{}
	}
	if b.locks[key] == nil {
		b.locks[key] = &sync.Mutex{}
	}
	return b.locks[key]
}

type checkResult struct {
	Python   string `json:"python"`
	Packages map[string]struct {
		Installed *string `json:"installed"`
		OK        bool    `json:"ok"`
		Where     string  `json:"where"` // the folder it is installed in
	} `json:"packages"`
}

// compare sorts reqs into those missing from the base and version pins the base does
// not meet; what the base has is noted in log.
func (check checkResult) compare(reqs []Requirement, base string, log io.Writer) (missing []Requirement, pins []string) {
	for _, r := range reqs {
		st := check.Packages[r.Name]
		switch {
		case r.Name == "python" && !st.OK:
			pins = append(pins, fmt.Sprintf("python%s is asked for but %s is %s", r.Spec, base, check.Python))
		case st.Installed == nil:
			missing = append(missing, r)
		case !st.OK:
			pins = append(pins, fmt.Sprintf("%s%s is asked for but %s is installed", r.Name, r.Spec, *st.Installed))
		default:
			if st.Where == "" { // python itself
				fmt.Fprintf(log, "%s: %s\n", r.Name, *st.Installed)
			} else {
				fmt.Fprintf(log, "%s: %s, already installed in %s\n", r.Name, *st.Installed, st.Where)
			}
		}
	}
	return missing, pins
}

// Build returns the environment for reqs on top of base, building it the first time.
// Requirements Berth provides are left out, and progress and the build log name them.
// progress receives one line per step. A build that was attempted and failed returns
// its *Result too, with Key and LogPath set, next to the *diag.Error.
func (b *Builder) Build(ctx context.Context, base string, reqs []Requirement, progress io.Writer) (*Result, error) {
	start := time.Now()
	reqs, provided := splitProvided(reqs)
	key := Key(base, reqs, b.Strict)
	if len(provided) > 0 {
		fmt.Fprintf(progress, "environment %s: %s\n", key, providedLine(provided))
	}
	l := b.lock(key)
	l.Lock()
	defer l.Unlock()
	dir := filepath.Join(b.Root, key)
	readyFile := filepath.Join(dir, "ready.json")
	if data, err := os.ReadFile(readyFile); err == nil {
		var r Result
		if json.Unmarshal(data, &r) == nil {
			r.Reused, r.Took = true, time.Since(start)
			fmt.Fprintf(progress, "environment %s: reusing the build in %s\n", key, dir)
			return &r, nil
		}
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if len(provided) > 0 {
		fmt.Fprintln(logf, providedLine(provided))
	}
	res := &Result{Key: key, LogPath: logPath}
	// fail ends a failed build: the caller gets the log's path with the error.
	fail := func(msg string) (*Result, error) {
		fmt.Fprintln(logf, "FAILED:", msg)
		return &Result{Key: key, LogPath: logPath, Missing: res.Missing, Failure: msg}, &diag.Error{Code: diag.ImageBuildFailure, Target: key,
			Message: FailureMessage(msg, GenericFix(base, logPath), logPath)}
	}
	if msg := b.populate(ctx, base, reqs, res, logf, progress); msg != "" {
		return fail(msg)
	}
	b2, _ := json.Marshal(res)
	if err := os.WriteFile(readyFile, b2, 0o644); err != nil {
		return &Result{Key: key, LogPath: logPath}, fmt.Errorf("environment %s: %w", key, err)
	}
	res.Took = time.Since(start)
	fmt.Fprintf(progress, "environment %s: built in %s\n", key, res.Took.Round(time.Millisecond))
	return res, nil
}

// populate creates the virtual environment of res in the directory of its build log
// logf, checks reqs against the base and pip-installs what is missing. It returns why
// the build failed, or "".
func (b *Builder) populate(ctx context.Context, base string, reqs []Requirement, res *Result, logf *os.File, progress io.Writer) string {
	key, logPath := res.Key, res.LogPath
	fmt.Fprintf(progress, "environment %s: creating a virtual environment on %s (its packages are reused)\n", key, base)
	venv := filepath.Join(filepath.Dir(logPath), "venv")
	info := askBase(ctx, base, logf)
	args := []string{"-m", "venv", "--without-pip"}
	if info.System {
		args = append(args, "--system-site-packages") // what the base sees, this one sees
	}
	if err := run(ctx, logf, "", base, append(args, venv)...); err != nil {
		return fmt.Sprintf("could not create a virtual environment with %s: %v", base, lastLine(logPath))
	}
	if err := keepBaseVenv(base, info.Sites, venv, logf); err != nil {
		return fmt.Sprintf("could not make the packages of %s visible in its virtual environment: %v", base, err)
	}
	res.Python = filepath.Join(venv, "bin", "python")

	fmt.Fprintf(progress, "environment %s: checking %d requirement(s) against the base\n", key, len(reqs))
	check, err := inspect(ctx, res.Python, reqs, logf)
	if err != nil {
		return fmt.Sprintf("could not inspect the packages of %s: %v", res.Python, err)
	}
	missing, pins := check.compare(reqs, base, logf)
	if len(pins) > 0 {
		if b.Strict {
			return "version pins not met: " + strings.Join(pins, "; ") + " (strict mode: `berth serve --env-strict=false` turns these into warnings)"
		}
		for _, p := range pins {
			res.Warnings = append(res.Warnings, "version pin not met, using what is installed: "+p)
			fmt.Fprintf(progress, "environment %s: WARNING: %s\n", key, p)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	specs, names := make([]string, len(missing)), make([]string, len(missing))
	for i, r := range missing {
		specs[i], names[i] = r.Name+r.pipSpec(), r.Line
	}
	fmt.Fprintf(progress, "environment %s: installing %s with pip (index and find-links from PIP_INDEX_URL / PIP_FIND_LINKS)\n", key, strings.Join(names, ", "))
	pip := b.Pip
	if pip == nil {
		pip = pipInstall
	}
	if err := pip(ctx, res.Python, specs, logf); err != nil {
		res.Missing = missing
		return fmt.Sprintf("pip could not install %s: %s", strings.Join(names, ", "), errorLine(logPath))
	}
	return ""
}

// HasAll reports whether python has every one of reqs installed (in any version), and
// its version.
func HasAll(ctx context.Context, python string, reqs []Requirement) (version string, ok bool) {
	check, err := inspect(ctx, python, reqs, io.Discard)
	if err != nil {
		return "", false
	}
	for _, r := range reqs {
		if check.Packages[r.Name].Installed == nil {
			return "", false
		}
	}
	return check.Python, true
}

// debianPython is where apt-get install python3-<name> puts packages.
const debianPython = "/usr/bin/python3"

// FailureMessage is the message of a failed build: why it failed, the fix, and where
// its log is.
func FailureMessage(failure, fix, logPath string) string {
	return fmt.Sprintf("%s. Fix: %s. The build log is %s (for an online deployment, `berth online-deployment get-logs --container storage-initializer` shows its tail)", failure, fix, logPath)
}

// GenericFix is the fix a failed build on base names when nothing better is known:
// PipFix, or installing the packages another way.
func GenericFix(base, logPath string) string {
	return PipFix(logPath) + ", or " + installFix(base)
}

// PipFix is what makes pip succeed, from the build log at logPath: reaching a package
// index when its log shows pip could not, else pins and names.
func PipFix(logPath string) string {
	if why := unreachableIndex(logPath); why != "" {
		return "no package index could be reached (" + why + "): set PIP_INDEX_URL to an index this machine reaches, or PIP_FIND_LINKS to a folder of wheels"
	}
	return "pin versions in the conda file (e.g. numpy==1.24.2) and check the package names"
}

// networkError finds the reason in pip's lines about a connection it could not make:
// "[Errno -2] Name or service not known", "[Errno 101] Network is unreachable", ...
var networkError = regexp.MustCompile(`\[Errno -?\d+\] [^'"\])]+`)

// unreachableIndex returns why pip could not reach its index, from the build log at
// path, or "" when the log shows no such failure.
func unreachableIndex(path string) string {
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.Contains(l, "NewConnectionError") && !strings.Contains(l, "Failed to establish a new connection") {
			continue
		}
		if m := networkError.FindString(l); m != "" {
			return strings.TrimSpace(m)
		}
		return "a connection failed"
	}
	return ""
}

// installFix says how to install packages for base: Debian's packages go to
// /usr/bin/python3 only, so for another base that is a change of interpreter.
func installFix(base string) string {
	system, err := filepath.EvalSymlinks(debianPython)
	if real, rerr := filepath.EvalSymlinks(base); err == nil && rerr == nil && real == system {
		return "install them from Debian (apt-get install python3-<name>)"
	}
	return fmt.Sprintf("install them with the pip of %s, or install them from Debian (apt-get install python3-<name>, into %s) and base the environment on it: `berth serve --python %s`, or environment_variables.BERTH_PYTHON: %s in the deployment",
		base, debianPython, debianPython, debianPython)
}

// pipInstall is the default Builder.Pip: python -m pip install reqs.
func pipInstall(ctx context.Context, python string, reqs []string, log io.Writer) error {
	args := append([]string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "15"}, reqs...)
	return run(ctx, log, "", python, args...)
}

// inspect runs check.py with python: which of reqs are installed, and whether their
// versions meet the constraints. Its stderr goes to log.
func inspect(ctx context.Context, python string, reqs []Requirement, log io.Writer) (checkResult, error) {
	var check checkResult
	pairs := make([][2]string, len(reqs))
	for i, r := range reqs {
		pairs[i] = [2]string{r.Name, r.Spec}
	}
	in, err := json.Marshal(pairs)
	if err != nil {
		return check, err
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", checkScript)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, log
	if err := cmd.Run(); err != nil {
		return check, err
	}
	if err := json.Unmarshal(stdout.Bytes(), &check); err != nil {
		return check, fmt.Errorf("read check.py output: %w", err)
	}
	return check, nil
}

// pipSpec turns a conda constraint into pip's: "=1.2" means 1.2.*.
func (r Requirement) pipSpec() string {
	if strings.HasPrefix(r.Spec, "=") && !strings.HasPrefix(r.Spec, "==") {
		return "==" + strings.TrimSuffix(r.Spec[1:], ".*") + ".*"
	}
	return r.Spec
}

func run(ctx context.Context, out io.Writer, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	fmt.Fprintf(out, "$ %s %s\n", name, strings.Join(args, " "))
	return cmd.Run()
}

// errorLine returns the first line of the log that reports an error (pip's "ERROR: ..."),
// else the last line.
func errorLine(path string) string {
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "ERROR:") {
			return strings.TrimSpace(l)
		}
	}
	return lastLine(path)
}

func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
