package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/test/k8senv"
)

// podServers stands in for the kubelet on the data path: for every pod of ns that kwok
// runs on a loopback IP, it starts `berth inference-server` on that IP and port 5001
// with the example's script and model, as the pod's container would. logs returns the
// log file of each pod IP's server.
type podServers struct {
	mu   sync.Mutex
	logs map[string]string
}

func startPodServers(t *testing.T, c *k8senv.Cluster, ns, code, modelDir string) *podServers {
	ps := &podServers{logs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	var procs []*exec.Cmd
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "berth.ml/deployment"})
			if err == nil {
				for _, p := range pods.Items {
					ip := p.Status.PodIP
					ps.mu.Lock()
					_, seen := ps.logs[ip]
					ps.mu.Unlock()
					if ip == "" || seen || p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(ip, "127.") {
						continue
					}
					log := filepath.Join(t.TempDir(), ip+".log")
					f, _ := os.Create(log)
					cmd := exec.Command(berthBin, "inference-server", "--entry_script", filepath.Join(code, "score.py"),
						"--model_dir", modelDir, "--host", ip, "--port", "5001", "--python", "/usr/bin/python3")
					cmd.Stdout, cmd.Stderr = f, f
					if err := cmd.Start(); err != nil {
						t.Errorf("start the server of pod %s: %v", p.Name, err)
						return
					}
					procs = append(procs, cmd)
					ps.mu.Lock()
					ps.logs[ip] = log
					ps.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return ps
}

// served counts, per pod IP, the scoring requests its server answered.
func (ps *podServers) served() map[string]int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := map[string]int{}
	for ip, log := range ps.logs {
		b, _ := os.ReadFile(log)
		out[ip] = strings.Count(string(b), "POST /score 200")
	}
	return out
}

// TestKubernetesOnlineDeployment deploys the sklearn example on an attached Kubernetes
// compute: the Deployment and Service carry the mapped fields, the pods run on kwok,
// requests through Berth's router reach the pods' servers at the addresses the router
// learned by watching the pods, a scale to 3 spreads requests over 3 pods, and delete
// removes the objects.
func TestKubernetesOnlineDeployment(t *testing.T) {
	c := k8senv.Start(t, k8senv.WithPods())
	ns := c.Namespace(t, "ml")
	example, _ := filepath.Abs("../../examples/sklearn-regression")
	ps := startPodServers(t, c, ns, filepath.Join(example, "onlinescoring"), example)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", ns)
	s.ok("online-endpoint", "create", "-f", filepath.Join(example, "endpoint.yml"), "--set", "compute=azureml:k8s")
	// A managed SKU names no instance type of the cluster.
	if r := s.berth("online-deployment", "create", "-f", filepath.Join(example, "blue-deployment.yml")); r.code == 0 ||
		!strings.Contains(r.stderr, "BadArgument") || !strings.Contains(r.stderr, "defaultinstancetype") {
		t.Fatalf("instance_type Standard_DS3_v2 on a Kubernetes compute: exit %d\n%s", r.code, r.stderr)
	}
	// Requests above limits are refused before anything reaches the cluster.
	if r := s.berth("online-deployment", "create", "-f", filepath.Join(example, "blue-deployment.yml"), "--set", "instance_type=defaultinstancetype",
		"--set", "resources.requests.cpu=4", "--set", "resources.requests.memory=1Gi", "--set", "resources.limits.cpu=1", "--set", "resources.limits.memory=1Gi"); r.code == 0 ||
		!strings.Contains(r.stderr, "BadArgument") || !strings.Contains(r.stderr, "cpu") {
		t.Fatalf("requests above limits: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "sklearn-regression-blue", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused deployment reached the cluster")
	}
	s.ok("online-deployment", "create", "-f", filepath.Join(example, "blue-deployment.yml"), "--all-traffic",
		"--set", "instance_type=defaultinstancetype", "--set", "environment_variables.MODEL_FLAVOR=ridge",
		"--set", "readiness_probe.failure_threshold=7")
	dep, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "sklearn-regression-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Deployment was not applied: %v", err)
	}
	pod := dep.Spec.Template.Spec
	main := pod.Containers[0]
	env := map[string]string{}
	for _, e := range main.Env {
		env[e.Name] = e.Value
	}
	if *dep.Spec.Replicas != 1 || dep.Labels["berth.ml/endpoint"] != "sklearn-regression" || main.ReadinessProbe.FailureThreshold != 7 ||
		main.Resources.Limits.Memory().String() != "2Gi" || main.Resources.Requests.Cpu().String() != "100m" ||
		env["MODEL_FLAVOR"] != "ridge" || env["AZUREML_MODEL_DIR"] == "" || pod.InitContainers[0].Name != "storage-initializer" {
		t.Fatalf("the Deployment does not carry the deployment's fields: replicas %d, labels %v, probe %+v, env %v", *dep.Spec.Replicas, dep.Labels, main.ReadinessProbe, env)
	}
	// The init container fetches the uploaded model and code from this server.
	initArgs := strings.Join(pod.InitContainers[0].Args, " ")
	for _, want := range []string{"storage-initializer", "--server " + s.URL, "--model-artifact sha256:", "--model-base model", "--code-artifact sha256:"} {
		if !strings.Contains(initArgs, want) {
			t.Errorf("the storage-initializer's args lack %q: %s", want, initArgs)
		}
	}
	if _, err := c.Client.CoreV1().Services(ns).Get(t.Context(), "sklearn-regression-blue", metav1.GetOptions{}); err != nil {
		t.Fatalf("no Service: %v", err)
	}
	var shown struct {
		ProvisioningState string `json:"provisioning_state"`
	}
	s.okJSON(&shown, "online-deployment", "show", "-e", "sklearn-regression", "-n", "blue", "-o", "json")
	if shown.ProvisioningState != "Succeeded" {
		t.Fatalf("deployment state %q", shown.ProvisioningState)
	}

	for _, container := range []string{"inference-server", "storage-initializer"} {
		// kwok runs no containers, so each pod says it has no log; the pods are read.
		if out := s.ok("online-deployment", "get-logs", "-e", "sklearn-regression", "-n", "blue", "--container", container); !strings.Contains(out, "=== pod sklearn-regression-blue-") {
			t.Fatalf("get-logs --container %s does not read the pods:\n%s", container, out)
		}
	}
	key, _ := s.keys("sklearn-regression")
	body, _ := os.ReadFile(filepath.Join(example, "sample-request.json"))
	scoreUntil := func(n int, want func(map[string]int) bool) map[string]int {
		deadline := time.Now().Add(60 * time.Second)
		for {
			for i := 0; i < n; i++ {
				status, _, out := s.score("sklearn-regression", key, string(body))
				if status == 503 && time.Now().Before(deadline) {
					continue // kwok says Ready at once; the pod's server is still running init()
				}
				if status != 200 || !strings.HasPrefix(out, "[") {
					t.Fatalf("score: %d %s", status, out)
				}
			}
			if got := ps.served(); want(got) || time.Now().After(deadline) {
				return got
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if got := scoreUntil(3, func(m map[string]int) bool { return len(m) == 1 && total(m) >= 3 }); len(got) != 1 || total(got) < 3 {
		t.Fatalf("requests did not reach the pod's server: %v", got)
	}

	// A run() that raises is 424 on a managed endpoint; on a Kubernetes compute the
	// model's own 500 is answered 502 (spec §6.3).
	if status, _, out := s.score("sklearn-regression", key, `{"data": "not rows"}`); status != 502 {
		t.Fatalf("a failing run() on the Kubernetes compute: %d %s, want 502", status, out)
	}
	s.ok("online-deployment", "update", "-e", "sklearn-regression", "-n", "blue", "--set", "instance_count=3")
	got := scoreUntil(30, func(m map[string]int) bool {
		busy := 0
		for _, n := range m {
			if n > 0 {
				busy++
			}
		}
		return busy == 3
	})
	if len(got) != 3 {
		t.Fatalf("after the scale to 3, requests reached %d pod addresses: %v", len(got), got)
	}
	for ip, n := range got {
		if n == 0 {
			t.Errorf("pod %s got no request: %v", ip, got)
		}
	}

	if r := s.berth("compute", "detach", "-n", "k8s", "-y"); r.code == 0 || !strings.Contains(r.stderr, "sklearn-regression") {
		t.Fatalf("detach of a compute an endpoint runs on: exit %d\n%s", r.code, r.stderr)
	}
	s.ok("online-endpoint", "update", "-n", "sklearn-regression", "--traffic", "blue=0")
	s.ok("online-deployment", "delete", "-e", "sklearn-regression", "-n", "blue", "-y")
	if _, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "sklearn-regression-blue", metav1.GetOptions{}); err == nil {
		t.Fatal("the Deployment outlived the deployment's delete")
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
