package envbuild

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
)

func TestParseConda(t *testing.T) {
	reqs, err := ParseConda([]byte(`name: env
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy>=1.20
  - conda-forge::scikit-learn=1.2.1=py311h_0
  - pip
  - pip:
    - joblib==1.2.0
    - requests[socks] >= 2.0  # comment
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Requirement{
		{Name: "python", Spec: "=3.11", Line: "python=3.11"},
		{Name: "numpy", Spec: ">=1.20", Line: "numpy>=1.20"},
		{Name: "scikit-learn", Spec: "=1.2.1", Line: "scikit-learn=1.2.1=py311h_0"},
		{Name: "joblib", Spec: "==1.2.0", Line: "joblib==1.2.0"},
		{Name: "requests", Spec: ">=2.0", Line: "requests[socks] >= 2.0"},
	}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got := (Requirement{Spec: "=1.2"}).pipSpec(); got != "==1.2.*" {
		t.Fatalf("pipSpec = %q", got)
	}
}

func TestBuildReusesTheBase(t *testing.T) {
	base := "/usr/bin/python3"
	if exec.Command(base, "-c", "import json").Run() != nil {
		t.Skip("no /usr/bin/python3")
	}
	b := &Builder{Root: t.TempDir()}
	reqs := []Requirement{{Name: "python", Spec: "=3", Line: "python=3"}}
	r, err := b.Build(context.Background(), base, reqs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reused || r.Python == "" {
		t.Fatalf("first build: %+v", r)
	}
	again, err := b.Build(context.Background(), base, reqs, io.Discard)
	if err != nil || !again.Reused || again.Python != r.Python {
		t.Fatalf("second build: %+v %v", again, err)
	}
	// A pin the base cannot meet: lenient warns, strict fails.
	pinned := []Requirement{{Name: "python", Spec: "==2.7", Line: "python==2.7"}}
	r, err = b.Build(context.Background(), base, pinned, io.Discard)
	if err != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "python==2.7") {
		t.Fatalf("lenient: %+v %v", r, err)
	}
	strict := &Builder{Root: t.TempDir(), Strict: true}
	if _, err := strict.Build(context.Background(), base, pinned, io.Discard); diag.As(err) == nil || diag.As(err).Code != diag.ImageBuildFailure {
		t.Fatalf("strict: %v", err)
	}
}

func TestFailedBuildReturnsItsLog(t *testing.T) {
	// An interpreter that cannot create a virtual environment: the first step fails.
	base, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1)")
	}
	root := t.TempDir()
	b := &Builder{Root: root}
	reqs := []Requirement{{Name: "numpy", Line: "numpy"}}
	r, err := b.Build(context.Background(), base, reqs, io.Discard)
	if de := diag.As(err); de == nil || de.Code != diag.ImageBuildFailure {
		t.Fatalf("err = %v, want %s", err, diag.ImageBuildFailure)
	}
	if r == nil {
		t.Fatal("a failed build returned no result")
	}
	want := filepath.Join(root, Key(base, reqs, false), "build.log")
	if r.LogPath != want || r.Key != Key(base, reqs, false) {
		t.Fatalf("result = %+v, want LogPath %s", r, want)
	}
	if log, rerr := os.ReadFile(r.LogPath); rerr != nil || !strings.Contains(string(log), "FAILED:") {
		t.Fatalf("build log %s: %q (%v)", r.LogPath, log, rerr)
	}
	// The error still names the log, as callers that read the message expect.
	if !strings.Contains(err.Error(), "The build log is "+want) {
		t.Fatalf("message does not name the log: %v", err)
	}
}
