package stage

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/spec"
)

// deploymentPython checks the interpreter a deployment names in
// environment_variables.BERTH_PYTHON: an absolute path to an executable file that runs.
// It returns the interpreter's version.
func deploymentPython(ctx context.Context, py string) (string, error) {
	field := "environment_variables." + instance.EnvPython
	fail := func(format string, args ...any) (string, error) {
		return "", &diag.Error{Code: diag.ImageBuildFailure, Target: field,
			Message: fmt.Sprintf("%s %s: %s; set it to the absolute path of a Python 3 interpreter on the server's machine (such as %s), or remove it to use the server's (berth serve --python)",
				field, py, fmt.Sprintf(format, args...), instance.SystemPython)}
	}
	if !filepath.IsAbs(py) {
		return fail("not an absolute path")
	}
	fi, err := os.Stat(py)
	switch {
	case err != nil:
		return fail("no such file")
	case !fi.Mode().IsRegular():
		return fail("not a file")
	case fi.Mode().Perm()&0o111 == 0:
		return fail("not executable")
	}
	version, _, err := instance.PythonVersion(ctx, py)
	if err != nil {
		return fail("it does not run (%v)", err)
	}
	return version, nil
}

// keptPython returns the interpreter a deployment runs on: kept, the one it was built
// on before, while it can be run; else the server's, saying why. A version probe that
// fails (a slow start under load) does not drop it: only a missing or non-executable
// file does.
func (s *Stager) keptPython(ctx context.Context, kept string, progress io.Writer) string {
	if s.ServerRuns(kept) {
		return s.cfg.Python
	}
	server := s.cfg.Python
	if found, err := exec.LookPath(s.cfg.Python); err == nil {
		server, _ = filepath.Abs(found)
	}
	if _, err := exec.LookPath(kept); err != nil {
		fmt.Fprintf(progress, "python: %s, which this deployment was built on, can no longer be run (%v): building it on the server's %s\n", kept, err, server)
		return s.cfg.Python
	}
	version := ""
	if v, _, err := instance.PythonVersion(ctx, kept); err == nil {
		version = " (Python " + v + ")"
	}
	fmt.Fprintf(progress, "python: %s%s, which this deployment was built on; the server's is now %s: update the deployment to build it there\n", kept, version, server)
	return kept
}

// CuratedFallback reports whether ref, which the registry could not resolve (err), names
// one of Azure's curated environments, which run on this machine's interpreter, and
// returns its name; one registered here under that name is used as registered.
func CuratedFallback(ref string, err error) (name string, ok bool) {
	name, curated := spec.CuratedEnvironment(ref)
	de := diag.As(err)
	return name, curated && de != nil && de.Code == diag.ResourceNotFound
}

// ServerRuns reports whether python is the interpreter the server runs score.py with.
func (s *Stager) ServerRuns(python string) bool {
	found, err := exec.LookPath(s.cfg.Python)
	return err == nil && instance.SameInterpreter(python, found)
}

// curatedFrameworks are the packages Azure's curated environments are named after.
var curatedFrameworks = []struct{ word, dist, debian string }{
	{"sklearn", "scikit-learn", "python3-sklearn"}, {"lightgbm", "lightgbm", "python3-lightgbm"},
	{"xgboost", "xgboost", "python3-xgboost"}, {"tensorflow", "tensorflow", ""}, {"torch", "torch", "python3-torch"},
}

// curatedEnvironment says that Azure's curated environment name is an image this
// machine does not have, so score.py runs with python, and returns a warning for each
// framework the name promises that python lacks.
func curatedEnvironment(ctx context.Context, name, python string, progress io.Writer) []string {
	fmt.Fprintf(progress, "environment: %s is Azure's curated environment, an image the process runtime does not run; score.py runs with %s\n", name, python)
	var warnings []string
	for _, f := range curatedFrameworks {
		if !strings.Contains(strings.ToLower(name), f.word) {
			continue
		}
		if _, ok := envbuild.HasAll(ctx, python, []envbuild.Requirement{{Name: f.dist, Line: f.dist}}); ok {
			continue
		}
		fix := "install it into " + python
		if f.debian != "" {
			fix = fmt.Sprintf("install it (Debian: apt-get install %s, into %s)", f.debian, instance.SystemPython)
		}
		w := fmt.Sprintf("the curated environment %s provides %s, which %s does not have: %s, or give the deployment an environment with a conda file that lists it", name, f.dist, python, fix)
		fmt.Fprintf(progress, "environment: WARNING: %s\n", w)
		warnings = append(warnings, w)
	}
	return warnings
}

// withInterpreterHint adds to a failed environment build the interpreter of this
// machine that has every package pip could not install, and the command that uses it.
func (s *Stager) withInterpreterHint(ctx context.Context, base, before string, built *envbuild.Result, err error) error {
	de := diag.As(err)
	if de == nil || built == nil || len(built.Missing) == 0 {
		return err
	}
	in := instance.MachineInterpreters()
	if s.cfg.Interpreters != nil {
		in = *s.cfg.Interpreters
	}
	if before != "" {
		in.Known = append([]string{before}, in.Known...) // it ran there: the likeliest to have them
	}
	py, version, ferr := in.First(ctx, base, func(ctx context.Context, python string) string {
		v, _ := envbuild.HasAll(ctx, python, built.Missing)
		return v
	})
	if ferr != nil {
		return err
	}
	names := make([]string, len(built.Missing))
	for i, r := range built.Missing {
		names[i] = r.Name
	}
	// This machine has them already: that is the fix to try first.
	hint := instance.Found{Python: py, Version: version, Module: strings.Join(names, ", ")}.Hint()
	hinted := *de
	hinted.Message = envbuild.FailureMessage(built.Failure, hint+". Otherwise: "+envbuild.PipFix(built.LogPath), built.LogPath)
	return &hinted
}
