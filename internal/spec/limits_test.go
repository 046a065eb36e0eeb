package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
)

// manyKeys returns a deployment whose environment_variables (or, with top, the document
// itself) holds n keys.
func manyKeys(n int, top bool) []byte {
	var b strings.Builder
	b.WriteString("name: blue\nendpoint_name: my-endpoint\n")
	indent := ""
	if !top {
		b.WriteString("environment_variables:\n")
		indent = "  "
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%sk%d: v\n", indent, i)
	}
	return []byte(b.String())
}

func TestSpecShapeLimits(t *testing.T) {
	var nested strings.Builder
	nested.WriteString("name: blue\nendpoint_name: my-endpoint\ndata_collector:\n  items:\n")
	for i := 0; i < MaxSpecNodes/2; i++ {
		nested.WriteString("  - {a: 1}\n")
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"top-level keys", string(manyKeys(20000, true)), "the document has 20002 keys, more than the limit of 1000"},
		{"environment_variables keys", string(manyKeys(20000, false)), "environment_variables has 20000 keys, more than the limit of 1000"},
		{"nodes", nested.String(), "more than 100000 YAML nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDeployment("big.yml", []byte(tc.data), nil)
			de := diag.As(err)
			if de == nil || de.Code != diag.BadArgument || !strings.Contains(de.Message, tc.want) {
				t.Fatalf("err = %v, want BadArgument containing %q", err, tc.want)
			}
		})
	}
	if _, err := DecodeDeployment("ok.yml", manyKeys(MaxMappingKeys, false), nil); err != nil {
		t.Errorf("%d environment variables: %v, want accepted", MaxMappingKeys, err)
	}
}

// BenchmarkRefuseManyKeys is how long a spec with 20,000 keys takes to be refused (the
// quadratic duplicate-key check it replaced took seconds; a wall-clock bound in a test
// failed on a loaded CI machine): go test -bench RefuseManyKeys ./internal/spec
func BenchmarkRefuseManyKeys(b *testing.B) {
	data := manyKeys(20000, false)
	for b.Loop() {
		if _, err := DecodeDeployment("big.yml", data, nil); err == nil {
			b.Fatal("accepted 20,000 environment variables")
		}
	}
}

func TestUnknownFieldListIsShort(t *testing.T) {
	_, err := DecodeDeployment("x.yml", manyKeys(500, true), nil)
	de := diag.As(err)
	if de == nil || !strings.Contains(de.Message, "and 480 more") || len(de.Message) > 2000 {
		t.Fatalf("err = %.300v, want a short list ending in \"and 480 more\"", err)
	}
}

func TestLoadRefusesLargeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.yml")
	body := "name: blue\nendpoint_name: my-endpoint\ndescription: " + strings.Repeat("x", MaxSpecFileBytes) + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("holds %d bytes, more than the limit of %d", len(body), MaxSpecFileBytes)
	_, err := LoadDeployment(path, nil)
	if de := diag.As(err); de == nil || de.Code != diag.BadArgument || !strings.Contains(de.Message, want) {
		t.Errorf("LoadDeployment: %v, want BadArgument containing %q", err, want)
	}
	_, err = LoadEndpoint(path, nil)
	if de := diag.As(err); de == nil || !strings.Contains(de.Message, want) || !strings.Contains(de.Message, "endpoint file") {
		t.Errorf("LoadEndpoint: %v, want BadArgument containing %q", err, want)
	}
	// A file of exactly the limit is read (and then judged on its content).
	ok := filepath.Join(dir, "ok.yml")
	head := "name: my-endpoint\ndescription: "
	if err := os.WriteFile(ok, []byte(head+strings.Repeat("x", MaxSpecFileBytes-len(head)-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEndpoint(ok, nil); err != nil {
		t.Errorf("LoadEndpoint of a %d-byte file: %v, want accepted", MaxSpecFileBytes, err)
	}
}
