package envbuild

import (
	"context"
	"io"
	"os/exec"
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
