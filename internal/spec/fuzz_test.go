package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

// lookup walks path (the same dot syntax as --set) in a mapping tree; nil when absent.
func lookup(root *yaml.Node, path string) *yaml.Node {
	node := root
	for _, key := range strings.Split(path, ".") {
		var next *yaml.Node
		switch node.Kind {
		case yaml.MappingNode:
			for j := 0; j+1 < len(node.Content); j += 2 {
				if node.Content[j].Value == key {
					next = node.Content[j+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(node.Content) {
				next = node.Content[i]
			}
		}
		if next == nil {
			return nil
		}
		node = next
	}
	return node
}

// FuzzApplySet checks --set on a parsed document: it never panics; when it succeeds the
// value is found again at its path (parsed as YAML, or the raw text when that is not
// YAML); when it fails the message quotes the whole --set argument.
func FuzzApplySet(f *testing.F) {
	f.Add("name: blue\nendpoint_name: ep\n", "name=green")
	f.Add("name: blue\n", "request_settings.request_timeout_ms=900")
	f.Add("tags: {a: b}\n", "tags.team=ml")
	f.Add("env: [1, 2]\n", "env.1=x")
	f.Add("env: [1, 2]\n", "env.2=x")
	f.Add("env: [1, 2]\n", "env.-1=x")
	f.Add("name: blue\n", "name.x=1")
	f.Add("{}", "a..b={c: [1, 2]}")
	f.Add("{}", "=1")
	f.Add("{}", "novalue")
	f.Add("{}", "model=azureml:m:1")
	f.Add("{}", "a=[unclosed")
	f.Add("a: &x {b: 1}\nc: *x\n", "c.b=2")
	f.Fuzz(func(t *testing.T, doc, set string) {
		root, err := parse("fuzz", []byte(doc), nil)
		if err != nil {
			return
		}
		err = applySet(root, set)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", set)) {
				t.Fatalf("applySet(%q) error does not quote the argument: %v", set, err)
			}
			return
		}
		path, value, ok := strings.Cut(set, "=")
		if !ok || path == "" {
			t.Fatalf("applySet(%q) accepted an argument without path=value", set)
		}
		got := lookup(root, path)
		if got == nil {
			t.Fatalf("applySet(%q) succeeded but %s is not in the document", set, path)
		}
		var want yaml.Node
		if err := yaml.Unmarshal([]byte(value), &want); err != nil || len(want.Content) == 0 {
			want = yaml.Node{Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}}}
		}
		w := want.Content[0]
		if got.Kind != w.Kind || got.Tag != w.Tag || got.Value != w.Value || len(got.Content) != len(w.Content) {
			t.Fatalf("applySet(%q): %s reads back as kind %v tag %s value %q, want kind %v tag %s value %q",
				set, path, got.Kind, got.Tag, got.Value, w.Kind, w.Tag, w.Value)
		}
	})
}

// FuzzDecodeDeployment checks that DecodeDeployment never panics on any document and
// --set, and that every failure is one BadArgument diag.Error that names its target.
func FuzzDecodeDeployment(f *testing.F) {
	f.Add([]byte("name: blue\nendpoint_name: ep1\nmodel: {path: x}\n"), "instance_count=2")
	f.Add([]byte("name: blue\nendpoint_name: ep1\n"), "instance_count=many")
	f.Add([]byte("name: blue\nendpoint_name: ep1\n"), "request_settings=5")
	f.Add([]byte("name: blue\nendpoint_name: ep1\n"), "request_settings.request_timeout_ms=200000")
	f.Add([]byte("name: blue\nendpoint_name: ep\nmodel: {path: x}\n"), "instance_count=2")
	f.Add([]byte("{}"), "a.b.c=1")
	f.Add([]byte("model: azureml:m:1\nenvironment: [1,2]\n"), "model.0=x")
	f.Add([]byte("- 1\n"), "name=x")
	f.Add([]byte("name: [\n"), "name=x")
	f.Add([]byte("name: blue\nendpoint_name: ep1\nresources: {requests: {cpu: '2'}, limits: {cpu: 1}}\n"), "resources.limits.cpu=NaN")
	f.Fuzz(func(t *testing.T, data []byte, set string) {
		d, err := DecodeDeployment("fuzz.yml", data, []string{set})
		if err == nil {
			if d == nil {
				t.Fatal("no error and no deployment")
			}
			if d.InstanceCount < 1 || d.RequestSettings.RequestTimeoutMs < 1 || d.RequestSettings.RequestTimeoutMs > MaxRequestTimeoutMs {
				t.Fatalf("accepted a deployment outside the limits: %+v", d)
			}
			return
		}
		de := diag.As(err)
		if de == nil || de.Code != diag.BadArgument {
			t.Fatalf("error is not a BadArgument diag.Error: %T %v", err, err)
		}
		if de.Target != "fuzz.yml" && de.Target != "--set" {
			t.Fatalf("error target %q, want the source or --set: %v", de.Target, err)
		}
		if de.Target == "--set" && !strings.Contains(de.Message, fmt.Sprintf("%q", set)) {
			t.Fatalf("a --set error does not quote the argument %q: %v", set, err)
		}
		if !strings.Contains(de.Message, "fuzz.yml") && de.Target != "--set" {
			t.Fatalf("message does not name the source: %v", err)
		}
	})
}

// FuzzParseQuantity checks that ParseQuantity never panics, never returns a negative
// quantity, and names the input when it refuses it.
func FuzzParseQuantity(f *testing.F) {
	for _, q := range []string{"2", "500m", "512Mi", "1.5Gi", "1G", "0", "-1", "-0", "1e3k", "", "Mi", "1.5.5Gi", "0x10", "1e400", "12Ti", "3K", "7M", "+4T", "NaN", "1e308T"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		v, err := ParseQuantity(q)
		if err != nil {
			if v != 0 || !strings.Contains(err.Error(), fmt.Sprintf("%q", q)) {
				t.Fatalf("ParseQuantity(%q) = %v, %v: a refusal returns 0 and quotes the input", q, v, err)
			}
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("ParseQuantity(%q) accepts a non-finite quantity %v", q, v)
		}
		if v < 0 {
			t.Fatalf("ParseQuantity(%q) = %v, want ≥ 0", q, v)
		}
	})
}

// FuzzQuantityUnits checks that "<n><unit>" is n times the unit's factor.
func FuzzQuantityUnits(f *testing.F) {
	units := []struct {
		suffix string
		factor float64
	}{{"", 1}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"m", 0.001}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	for i := range units {
		f.Add(uint32(0), uint8(i))
		f.Add(uint32(512), uint8(i))
		f.Add(uint32(math.MaxUint32), uint8(i))
	}
	f.Fuzz(func(t *testing.T, n uint32, unit uint8) {
		u := units[int(unit)%len(units)]
		q := strconv.FormatUint(uint64(n), 10) + u.suffix
		got, err := ParseQuantity(q)
		if err != nil {
			t.Fatalf("ParseQuantity(%q): %v", q, err)
		}
		want := float64(n) * u.factor
		// Binary units and whole decimal ones are exact; "m" multiplies by 0.001, which
		// is not exact in binary, so allow one rounding.
		if got != want && math.Abs(got-want) > want*1e-15 {
			t.Fatalf("ParseQuantity(%q) = %v, want %v", q, got, want)
		}
		if u.suffix == "Mi" && got != float64(uint64(n)<<20) {
			t.Fatalf("ParseQuantity(%q) = %v, want exactly %d", q, got, uint64(n)<<20)
		}
	})
}
