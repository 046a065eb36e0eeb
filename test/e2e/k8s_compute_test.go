package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthml/berth/test/k8senv"
)

// TestComputeAttachKubernetes attaches a real kube-apiserver as a compute through the
// CLI: a wrong namespace or an unreachable cluster fails with the documented code,
// naming the kubeconfig, the server and the fix; the kubeconfig's content is never
// shown; detach forgets it.
func TestComputeAttachKubernetes(t *testing.T) {
	c := k8senv.Start(t)
	c.Namespace(t, "ml")
	s := startServer(t, "")

	r := s.berth("compute", "attach", "-n", "k8s", "--type", "Kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", "nowhere")
	if r.code == 0 || !strings.Contains(r.stderr, "NamespaceNotFound") || !strings.Contains(r.stderr, "kubectl create namespace nowhere") {
		t.Fatalf("missing namespace: exit %d\n%s", r.code, r.stderr)
	}
	kc, _ := os.ReadFile(c.Kubeconfig)
	down := filepath.Join(t.TempDir(), "down.yaml")
	// The same cluster on a port nothing listens on.
	os.WriteFile(down, regexp.MustCompile(`server: \S+`).ReplaceAll(kc, []byte("server: https://127.0.0.1:1")), 0o600)
	r = s.berth("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", down)
	if r.code == 0 || !strings.Contains(r.stderr, "KubernetesUnaccessible") || !strings.Contains(r.stderr, down) || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("unreachable cluster: exit %d\n%s", r.code, r.stderr)
	}
	if out := s.ok("compute", "list", "-o", "json"); strings.Contains(out, "k8s") {
		t.Fatalf("a compute that failed to attach is listed: %s", out)
	}

	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", "ml")
	out := s.ok("compute", "show", "-n", "k8s", "-o", "json")
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["type"] != "kubernetes" || shown["namespace"] != "ml" || shown["kubeconfig_file"] != c.Kubeconfig || shown["image"] != "berth:latest" {
		t.Fatalf("compute show: %s", out)
	}
	if strings.Contains(out, "client-certificate-data") || strings.Contains(out, "token") {
		t.Fatalf("compute show reveals the kubeconfig's credentials: %s", out)
	}
	db, _ := os.ReadFile(filepath.Join(s.dataDir, "berth.db"))
	if strings.Contains(string(db), "client-certificate-data") {
		t.Fatal("berth.db holds the kubeconfig in the clear")
	}
	r = s.berth("online-endpoint", "create", "-n", "heart", "--set", "compute=azureml:gone")
	if r.code == 0 || !strings.Contains(r.stderr, "ComputeNotFound") || !strings.Contains(r.stderr, "berth compute attach -n gone") {
		t.Fatalf("an online endpoint on a compute that does not exist: exit %d\n%s", r.code, r.stderr)
	}
	s.ok("compute", "detach", "-n", "k8s", "-y")
	if r := s.berth("compute", "show", "-n", "k8s"); r.code == 0 || !strings.Contains(r.stderr, "ComputeNotFound") {
		t.Fatalf("show after detach: exit %d\n%s", r.code, r.stderr)
	}
}
