package spec

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
)

// update rewrites the golden files instead of comparing with them:
// go test ./internal/spec/ -run TestDiagnosticsGolden -update
var update = flag.Bool("update", false, "rewrite testdata/diagnostics/*.golden")

// renderDiag writes an error the way a user sees its parts: code, message, target, then
// every detail (nested details indented), one per line.
func renderDiag(b *strings.Builder, e *diag.Error, indent string) {
	fmt.Fprintf(b, "%scode: %s\n%smessage: %s\n%starget: %s\n", indent, e.Code, indent, e.Message, indent, e.Target)
	for _, d := range e.Details {
		fmt.Fprintf(b, "%sdetail: %s: %s\n", indent, d.Target, d.Message)
		if len(d.Details) > 0 {
			renderDiag(b, d, indent+"  ")
		}
	}
}

// goldenSets returns the --set arguments a case file asks for in "# set: path=value" lines.
func goldenSets(data []byte) []string {
	var sets []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# set: "); ok {
			sets = append(sets, v)
		}
	}
	return sets
}

// decodeCase decodes one case file and returns its warnings or its error.
func decodeCase(t *testing.T, name string, data []byte) ([]string, error) {
	t.Helper()
	sets := goldenSets(data)
	switch {
	case strings.HasPrefix(name, "endpoint-"):
		e, err := DecodeEndpoint(name, data, sets)
		if err != nil {
			return nil, err
		}
		return e.Warnings(), nil
	case strings.HasPrefix(name, "deployment-"):
		d, err := DecodeDeployment(name, data, sets)
		if err != nil {
			return nil, err
		}
		return d.Warnings(), nil
	}
	t.Fatalf("%s: name a case endpoint-*.yml or deployment-*.yml", name)
	return nil, nil
}

// TestDiagnosticsGolden decodes every testdata/diagnostics/*.yml (endpoint-*.yml with
// DecodeEndpoint, deployment-*.yml with DecodeDeployment) and compares the rendered
// error, or the warnings of a spec that decodes, with the .golden file next to it. Every
// case must fail or warn.
func TestDiagnosticsGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "diagnostics", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d cases in testdata/diagnostics, want at least 10", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := decodeCase(t, name, data)
			var b strings.Builder
			switch {
			case err != nil:
				de := diag.As(err)
				if de == nil {
					t.Fatalf("%s: error is %T, want a *diag.Error: %v", name, err, err)
				}
				renderDiag(&b, de, "")
			case len(warnings) > 0:
				for _, w := range warnings {
					fmt.Fprintf(&b, "warning: %s\n", w)
				}
			default:
				t.Fatalf("%s decoded without an error or a warning; every case must be a bad or doubtful spec", name)
			}
			got := b.String()
			golden := strings.TrimSuffix(file, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-golden +got), run with -update if the change is intended:\n%s", name, diff)
			}
		})
	}
}
