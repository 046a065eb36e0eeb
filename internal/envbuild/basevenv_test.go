package envbuild

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildOnAVirtualEnvironmentKeepsItsPackages: an environment built on a virtual
// environment's interpreter sees that environment's packages (here one the system
// Python lacks), so nothing it has is sent to pip.
func TestBuildOnAVirtualEnvironmentKeepsItsPackages(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import venv").Run() != nil {
		t.Skip("no /usr/bin/python3 with venv")
	}
	venv := filepath.Join(t.TempDir(), "base-venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(sites) != 1 {
		t.Fatalf("site-packages: %v", sites)
	}
	files := map[string]string{
		"berthmark.py":                     "WHERE = 'base venv'\n",
		"berthmark-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: berthmark\nVersion: 1.0\n",
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
	out, err := exec.Command(r.Python, "-c", "import berthmark, json; print(berthmark.WHERE); import sys; print(sys.prefix)").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "base venv\n") {
		t.Fatalf("the built environment does not import the base's package: %v\n%s", err, out)
	}
	// The system's packages stay visible too, after the base's.
	if err := exec.Command(r.Python, "-c", "import json").Run(); err != nil {
		t.Fatal(err)
	}
}
