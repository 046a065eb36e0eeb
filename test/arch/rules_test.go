package arch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHouseRules(t *testing.T) {
	vs, err := Check(repoRoot())
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, v := range vs {
		t.Errorf("%s", v)
	}
}

// writeLines writes a Go file of package pkg at path with exactly n lines,
// the first two being its package doc and clause.
func writeLines(t *testing.T, path, pkg string, n int) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "// Package %s is %d lines long.\npackage %s\n", pkg, n, pkg)
	for i := 3; i <= n; i++ {
		fmt.Fprintf(&b, "// line %d\n", i)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// key identifies a violation without its wording.
func key(v Violation) string {
	return fmt.Sprintf("%s %s:%d", v.Rule, v.File, v.Line)
}

func TestHouseRulesCatchBadTree(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "badtree"))); err != nil {
		t.Fatal(err)
	}
	// The long files are generated rather than committed: one over the
	// limit and one exactly at it.
	writeLines(t, filepath.Join(root, "internal", "big", "big.go"), "big", MaxFileLines+1)
	// A grab-bag package, generated so that no folder of the repository has the name.
	grabBag := filepath.Join(root, "internal", "util")
	if err := os.MkdirAll(grabBag, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(grabBag, "util.go"), []byte("// Package util is a grab bag, which Check must report by its name.\npackage util\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeLines(t, filepath.Join(root, "internal", "big", "edge.go"), "big", MaxFileLines)

	vs, err := Check(root)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	want := []string{
		"file-length internal/big/big.go:0",
		"stored-context internal/ctxkeep/ctxkeep.go:8",
		"background-context internal/ctxkeep/ctxkeep.go:12",
		"no-init internal/initpkg/initpkg.go:6",
		"func-length internal/longfunc/longfunc.go:8",
		"package-doc internal/nodoc:0",
		"package-name internal/util:0",
	}
	var got []string
	for _, v := range vs {
		got = append(got, key(v))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check(badtree) reported\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	for _, v := range vs {
		if v.Message == "" {
			t.Errorf("%s has no message", key(v))
		}
	}
}

func TestHouseRulesPassGoodTree(t *testing.T) {
	vs, err := Check(filepath.Join("testdata", "goodtree"))
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, v := range vs {
		t.Errorf("Check(goodtree) reported %s", v)
	}
}

func TestHouseRulesMessages(t *testing.T) {
	root := t.TempDir()
	writeLines(t, filepath.Join(root, "internal", "api", "api.go"), "api", 616)
	vs, err := Check(root)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	want := "internal/api/api.go: 616 lines, over 500: split it by concern, one idea per file [file-length]"
	if len(vs) != 1 || vs[0].String() != want {
		t.Errorf("Check reported %v, want [%s]", vs, want)
	}
}

func TestCheckReportsParseErrors(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "cmd", "broken", "main.go")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("package main\nfunc {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(root); err == nil {
		t.Fatal("Check of a file that does not parse returned no error")
	}
}
