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
// it: a .pth file in venv's site-packages adds the base's folders, after venv's own and
// before the system's.
func keepBaseVenv(ctx context.Context, base, venv string, log io.Writer) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, base, "-c", baseSitesScript)
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("list the packages folders of %s: %w", base, err)
	}
	var dirs []string
	if err := json.Unmarshal(out.Bytes(), &dirs); err != nil {
		return fmt.Errorf("list the packages folders of %s: %w", base, err)
	}
	if len(dirs) == 0 {
		return nil
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if len(sites) != 1 {
		return fmt.Errorf("no single site-packages folder in %s: %v", venv, sites)
	}
	fmt.Fprintf(log, "%s is a virtual environment's interpreter: its packages (%s) stay visible through %s\n",
		base, strings.Join(dirs, ", "), baseVenvPth)
	return os.WriteFile(filepath.Join(sites[0], baseVenvPth), []byte(strings.Join(dirs, "\n")+"\n"), 0o644)
}
