package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/berthml/berth/internal/instance"
)

// pythonChoice is the interpreter that runs score.py, why it was chosen and what it is.
type pythonChoice struct {
	Python  string // as configured
	Source  string // "flag --python", "env BERTH_PYTHON" or "PATH"
	Path    string // resolved
	Version string
}

// LogValue renders the choice in the startup log.
func (p pythonChoice) LogValue() slog.Value {
	return slog.GroupValue(slog.String("chosen_by", p.Source), slog.String("path", p.Path), slog.String("version", p.Version))
}

// checkPython runs the configured interpreter once for its version. One that cannot run
// stops the server with a message naming where the choice came from and how to change it.
func checkPython(ctx context.Context, cfg *Config) (pythonChoice, error) {
	python := cfg.Python
	if python == "" {
		python = instance.DefaultPython
	}
	choice := pythonChoice{Python: python}
	var fix string
	switch cfg.PythonSource {
	case "--python":
		choice.Source = "flag --python"
		fix = "pass --python an interpreter that runs, such as --python " + instance.SystemPython
	case instance.EnvPython:
		choice.Source = "env " + instance.EnvPython
		fix = fmt.Sprintf("set %s to an interpreter that runs, such as %s=%s, or unset it to use python3 on PATH", instance.EnvPython, instance.EnvPython, instance.SystemPython)
	default:
		choice.Source = "PATH"
		fix = "install Python 3 (apt-get install python3) or choose an interpreter with --python " + instance.SystemPython + " or " + instance.EnvPython
	}
	version, path, err := instance.PythonVersion(ctx, python)
	if err != nil {
		return choice, fmt.Errorf("the Python interpreter %q (chosen by %s) cannot run: %v; %s", python, choice.Source, err, fix)
	}
	choice.Path, choice.Version = path, version
	return choice, nil
}

// debianAdvice says, when the server's interpreter is not Debian's, how to use the
// packages apt-get installs; "" when it is Debian's or there is none.
func (p pythonChoice) debianAdvice() string {
	if _, err := os.Stat(instance.SystemPython); err != nil || instance.SameInterpreter(p.Path, instance.SystemPython) {
		return ""
	}
	return fmt.Sprintf("packages installed with apt-get (python3-<name>) live in %s, not in %s: to use them run `berth serve --python %s`, or set %s for one deployment in its environment_variables",
		instance.SystemPython, p.Path, instance.SystemPython, instance.EnvPython)
}
