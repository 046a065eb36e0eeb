// Package arch checks the import rules of docs/architecture.md with `go list`.
package arch

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const mod = "github.com/berthml/berth/"

// allowed lists, for each package, the Berth packages it may import directly.
var allowed = map[string][]string{
	"internal/diag":              {},
	"internal/wire":              {},
	"internal/spec":              {"internal/diag", "internal/autoscale"},
	"internal/supervise":         {},
	"internal/autoscale":         {},
	"internal/instance":          {"internal/diag", "internal/supervise"},
	"internal/logs":              {},
	"internal/router/table":      {},
	"internal/auth":              {},
	"internal/artifacts/archive": {},
	"internal/envbuild":          {"internal/diag"},
	"internal/artifacts":         {"internal/artifacts/archive"},
	"internal/store":             {},
	"internal/store/storetest":   {"internal/store"},
	"internal/inference/python":  {},
	"internal/store/sqlite":      {"internal/store"},
	"internal/store/memory":      {"internal/store"},
	"internal/store/sealed":      {"internal/store", "internal/auth"},
	"internal/client":            {"internal/wire", "internal/diag"},
	"internal/cli":               {"internal/client", "internal/wire", "internal/spec", "internal/diag", "internal/artifacts/archive"},
	"internal/api":               {"internal/controller", "internal/registry", "internal/jobs", "internal/store", "internal/wire", "internal/spec", "internal/diag", "internal/auth", "internal/artifacts/archive"},
	"internal/rollout":           {"internal/instance"},
	"internal/quota":             {"internal/diag"},
	"internal/stage":             {"internal/store", "internal/artifacts", "internal/envbuild", "internal/quota", "internal/runtime", "internal/spec", "internal/instance", "internal/logs", "internal/diag"},
	"internal/registry":          {"internal/store", "internal/artifacts", "internal/artifacts/archive", "internal/auth", "internal/diag"},
	"internal/fleet":             {"internal/rollout", "internal/runtime", "internal/instance", "internal/router/table", "internal/logs", "internal/quota", "internal/diag"},
	"internal/router":            {"internal/router/table", "internal/auth", "internal/diag", "internal/logs", "internal/instance", "internal/telemetry"},
	"internal/telemetry":         {"internal/wire"},
	"internal/controller": {"internal/autoscale", "internal/store", "internal/registry", "internal/stage", "internal/fleet", "internal/rollout", "internal/quota", "internal/runtime", "internal/spec",
		"internal/artifacts", "internal/envbuild", "internal/router/table", "internal/instance", "internal/diag", "internal/auth", "internal/logs", "internal/wire"},
	"internal/batch": {"internal/diag", "internal/inference", "internal/inference/python", "internal/instance", "internal/logs", "internal/supervise", "internal/spec"},
	"internal/jobs": {"internal/batch", "internal/store", "internal/registry", "internal/stage", "internal/artifacts", "internal/spec", "internal/diag", "internal/logs",
		"internal/wire", "internal/runtime"},
	"internal/runtime":         {},
	"internal/runtime/process": {"internal/runtime", "internal/logs", "internal/inference"},
	// runtime/kubernetes is the only package that imports k8s.io/* (api, apimachinery).
	"internal/runtime/kubernetes": {"internal/diag", "internal/runtime"},
	"internal/inference":          {"internal/supervise", "internal/diag", "internal/logs", "internal/inference/python", "internal/instance"},
	"internal/server": {"internal/api", "internal/artifacts", "internal/auth", "internal/controller", "internal/envbuild", "internal/registry", "internal/quota",
		"internal/router", "internal/runtime/process", "internal/runtime/kubernetes", "internal/store/sqlite", "internal/store/sealed", "internal/wire", "internal/spec", "internal/instance",
		"internal/jobs", "internal/stage", "internal/telemetry", "internal/runtime", "web"},
	// web, the studio, is static files and their handler: it imports nothing of Berth.
	"web":       {},
	"cmd/berth": {"internal/cli", "internal/inference", "internal/batch", "internal/server"},
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func goList(t *testing.T, format string, pkgs ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", format}, pkgs...)...)
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestImportRules(t *testing.T) {
	for _, line := range goList(t, "{{.ImportPath}} {{join .Imports \" \"}}", "./cmd/...", "./internal/...", "./web/...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("%s is not in the import rules: add it to docs/architecture.md and this test", pkg)
			continue
		}
		set := map[string]bool{}
		for _, a := range ok {
			set[a] = true
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			if dep := strings.TrimPrefix(imp, mod); !set[dep] {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow", pkg, dep)
			}
		}
	}
}

func TestCLILinksNoServerCode(t *testing.T) {
	deps := goList(t, "{{join .Deps \"\\n\"}}", "./internal/cli")
	var bad []string
	for _, d := range deps {
		for _, server := range []string{"internal/server", "internal/controller", "internal/store", "internal/api", "internal/router", "internal/inference", "internal/runtime"} {
			if strings.HasPrefix(d, mod+server) {
				bad = append(bad, d)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("the CLI links server code: %v", bad)
	}
}

// k8sImporters are the only packages that may import the Kubernetes libraries
// (k8s.io/*, sigs.k8s.io/*): the runtime, and the test-only harness that starts
// a control plane for its tests.
var k8sImporters = map[string]bool{
	"internal/runtime/kubernetes": true,
	"test/k8senv":                 true,
}

// TestOnlyKubernetesRuntimeImportsK8s keeps the Kubernetes libraries inside
// runtime/kubernetes (and test/k8senv, for tests), as docs/architecture.md says.
func TestOnlyKubernetesRuntimeImportsK8s(t *testing.T) {
	for _, line := range goList(t, "{{.ImportPath}} {{join .Imports \" \"}}", "./cmd/...", "./internal/...", "./test/...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		if k8sImporters[pkg] || strings.HasPrefix(pkg, "internal/runtime/kubernetes/") {
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "k8s.io/") || strings.HasPrefix(imp, "sigs.k8s.io/") {
				t.Errorf("%s imports %s: only internal/runtime/kubernetes (and test/k8senv, for tests) may import the Kubernetes libraries", pkg, imp)
			}
		}
	}
}

// TestK8senvIsTestOnly keeps the harness, its envtest and child processes out
// of the berth binary: only _test.go files may import test/k8senv.
func TestK8senvIsTestOnly(t *testing.T) {
	for _, line := range goList(t, "{{.ImportPath}} {{join .Imports \" \"}}", "./cmd/...", "./internal/...", "./test/...") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if imp == mod+"test/k8senv" {
				t.Errorf("%s imports test/k8senv outside its tests", strings.TrimPrefix(fields[0], mod))
			}
		}
	}
}

// TestOnlyE2EImportsChromedp keeps the browser driver in the studio's browser tests
// (test/e2e), out of the binary.
func TestOnlyE2EImportsChromedp(t *testing.T) {
	for _, line := range goList(t, "{{.ImportPath}} {{join .Imports \" \"}} {{join .TestImports \" \"}}", "./cmd/...", "./internal/...", "./web/...", "./test/...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		if pkg == "test/e2e" {
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/chromedp/") {
				t.Errorf("%s imports %s: only test/e2e (the studio's browser tests) may", pkg, imp)
			}
		}
	}
}
