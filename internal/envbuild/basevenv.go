package envbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// baseSitesScript prints, as JSON, the site-packages folders of the interpreter running
// it when it is a virtual environment's ([] for a system one), and whether it sees the
// system's packages (its pyvenv.cfg's include-system-site-packages; true for a system one).
const baseSitesScript = `import json, os, site, sys
venv = sys.prefix != sys.base_prefix
dirs = site.getsitepackages() if venv else []
system = True
if venv:
    try:
        with open(os.path.join(sys.prefix, "pyvenv.cfg")) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip().lower() == "include-system-site-packages":
                    system = value.strip().lower() == "true"
    except OSError:
        pass
print(json.dumps({"sites": [d for d in dirs if os.path.isdir(d)], "system": system}))`

// baseInfo is what baseSitesScript prints.
type baseInfo struct {
	Sites  []string `json:"sites"`
	System bool     `json:"system"`
}

// baseVenvPth names the file that puts a virtual environment base's packages on the
// path of an environment built on it.
const baseVenvPth = "berth-base-venv.pth"

// askBase asks base whether it is a virtual environment's interpreter, and which
// package folders it sees. (Environments are cached by base and requirements, not by
// these answers: one built before a change of the base's pyvenv.cfg is reused as it is.) A base that cannot be asked is logged and taken as a system
// interpreter, which is what an environment built on it assumed before.
func askBase(ctx context.Context, base string, log io.Writer) baseInfo {
	info := baseInfo{System: true}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, base, "-c", baseSitesScript)
	cmd.Dir = "/" // not the server's folder: a json.py there would shadow the standard library
	cmd.Stdout, cmd.Stderr = &out, log
	err := cmd.Run()
	if err == nil {
		// The last line: a sitecustomize may print before the script runs.
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		err = json.Unmarshal([]byte(lines[len(lines)-1]), &info)
	}
	if err != nil {
		fmt.Fprintf(log, "WARNING: could not list the package folders of %s (%v): if it is a virtual environment's, its packages are not seen by this one\n", base, err)
		return baseInfo{System: true}
	}
	return info
}

// keepBaseVenv makes the packages of a virtual environment's base, its package folders
// sites, visible in venv. Python makes a virtual environment of a virtual environment on
// the system interpreter under both, so the new one alone would see the system's
// packages (when the base does) and lose the base's, which are why the user chose it: a
// .pth file in venv's site-packages adds the base's folders as site folders (so their
// own .pth files, editable installs among them, are read too), after venv's own and
// before the system's.
func keepBaseVenv(base string, sites []string, venv string, log io.Writer) error {
	if len(sites) == 0 {
		return nil
	}
	own, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if len(own) != 1 {
		return fmt.Errorf("no single site-packages folder in %s: %v", venv, own)
	}
	var pth strings.Builder
	for _, d := range sites {
		quoted, _ := json.Marshal(d) // a JSON string is a Python string literal
		fmt.Fprintf(&pth, "import site; site.addsitedir(%s)\n", quoted)
	}
	fmt.Fprintf(log, "%s is a virtual environment's interpreter: its packages (%s) stay visible through %s\n",
		base, strings.Join(sites, ", "), baseVenvPth)
	return os.WriteFile(filepath.Join(own[0], baseVenvPth), []byte(pth.String()), 0o644)
}
