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

// baseSitesScript prints, as a JSON list, the site-packages folders of the interpreter
// running it when it is a virtual environment's, and nothing else: [] for a system one.
const baseSitesScript = `import json, os, site, sys
dirs = site.getsitepackages() if sys.prefix != sys.base_prefix else []
print(json.dumps([d for d in dirs if os.path.isdir(d)]))`

// baseVenvPth names the file that puts a virtual environment base's packages on the
// path of an environment built on it.
const baseVenvPth = "berth-base-venv.pth"

// keepBaseVenv makes the packages of base visible in venv when base is itself a virtual
// environment's interpreter. Python makes a virtual environment of a virtual
// environment on the system interpreter under both, so --system-site-packages alone
// would show the system's packages and lose the base's, which are why the user chose
// it: a .pth file in venv's site-packages adds the base's folders as site folders (so
// their own .pth files, editable installs among them, are read too), after venv's own
// and before the system's. A base that cannot be asked is logged and left as it is.
func keepBaseVenv(ctx context.Context, base, venv string, log io.Writer) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, base, "-c", baseSitesScript)
	cmd.Dir = "/" // not the server's folder: a json.py there would shadow the standard library
	cmd.Stdout, cmd.Stderr = &out, log
	var dirs []string
	err := cmd.Run()
	if err == nil {
		// The last line: a sitecustomize may print before the script runs.
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		err = json.Unmarshal([]byte(lines[len(lines)-1]), &dirs)
	}
	if err != nil {
		fmt.Fprintf(log, "WARNING: could not list the package folders of %s (%v): if it is a virtual environment's, its packages are not seen by this one\n", base, err)
		return nil
	}
	if len(dirs) == 0 {
		return nil
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if len(sites) != 1 {
		return fmt.Errorf("no single site-packages folder in %s: %v", venv, sites)
	}
	var pth strings.Builder
	for _, d := range dirs {
		quoted, _ := json.Marshal(d) // a JSON string is a Python string literal
		fmt.Fprintf(&pth, "import site; site.addsitedir(%s)\n", quoted)
	}
	fmt.Fprintf(log, "%s is a virtual environment's interpreter: its packages (%s) stay visible through %s\n",
		base, strings.Join(dirs, ", "), baseVenvPth)
	return os.WriteFile(filepath.Join(sites[0], baseVenvPth), []byte(pth.String()), 0o644)
}
