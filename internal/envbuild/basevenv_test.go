package envbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildOnAVirtualEnvironmentKeepsItsPackages: an environment built on a virtual
// environment's interpreter sees that environment's packages (here one the system
// Python lacks), so nothing it has is sent to pip, and the system's packages exactly
// when the base sees them (its include-system-site-packages).
func TestBuildOnAVirtualEnvironmentKeepsItsPackages(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import venv").Run() != nil {
		t.Skip("no /usr/bin/python3 with venv")
	}
	for _, system := range []bool{false, true} {
		t.Run(fmt.Sprintf("system site packages %v", system), func(t *testing.T) { buildOnVenv(t, system) })
	}
}

func buildOnVenv(t *testing.T, withSystem bool) {
	venv := filepath.Join(t.TempDir(), "base-venv")
	args := []string{"-m", "venv", "--without-pip", venv}
	if withSystem {
		args = append(args, "--system-site-packages")
	}
	if out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(sites) != 1 {
		t.Fatalf("site-packages: %v", sites)
	}
	// An editable install (pip install -e) is a .pth file naming a folder elsewhere.
	editable := filepath.Join(t.TempDir(), "src")
	files := map[string]string{
		"berthmark.py":                     "WHERE = 'base venv'\n",
		"berthmark-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: berthmark\nVersion: 1.0\n",
		"__editable__.berthedit-1.0.pth":   editable + "\n",
	}
	if err := os.MkdirAll(editable, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(editable, "berthedit.py"), []byte("WHERE = 'editable'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		path := filepath.Join(sites[0], name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &Builder{Root: t.TempDir(), Pip: func(_ context.Context, _ string, reqs []string, _ io.Writer) error {
		t.Errorf("pip was asked for %v, which the base has", reqs)
		return nil
	}}
	base := filepath.Join(venv, "bin", "python3")
	r, err := b.Build(context.Background(), base, []Requirement{{Name: "berthmark", Spec: "==1.0", Line: "berthmark==1.0"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) > 0 {
		t.Fatalf("warnings: %v", r.Warnings)
	}
	out, err := exec.Command(r.Python, "-c", "import berthmark, berthedit; print(berthmark.WHERE, berthedit.WHERE)").CombinedOutput()
	if err != nil || string(out) != "base venv editable\n" {
		t.Fatalf("the built environment does not import the base's packages: %v\n%s", err, out)
	}
	// Its own packages first, then the base's, then the system's if the base sees them.
	out, err = exec.Command(r.Python, "-c", "import sys; print('\\n'.join(sys.path))").Output()
	if err != nil {
		t.Fatal(err)
	}
	ownDir := filepath.Dir(filepath.Dir(r.Python))
	own, theBase, system := -1, -1, -1
	for i, p := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(p, ownDir) && own < 0:
			own = i
		case strings.HasPrefix(p, venv) && theBase < 0:
			theBase = i
		case strings.HasSuffix(p, "-packages") && system < 0 && !strings.HasPrefix(p, ownDir) && !strings.HasPrefix(p, venv):
			system = i // the system's site-packages or dist-packages (the standard library comes before all)
		}
	}
	if own < 0 || theBase < 0 || !(own < theBase) || (system >= 0) != withSystem || (withSystem && system < theBase) {
		t.Fatalf("sys.path: own %d, base %d, system %d (want it: %v), want them in that order:\n%s", own, theBase, system, withSystem, out)
	}
}
