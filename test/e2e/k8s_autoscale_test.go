package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/test/k8senv"
)

// TestKubernetesAutoscale: a deployment with scale_settings.type target_utilization
// (min 1, max 3, polling 1 s) scales out to max at once under load above its target,
// and back to min after the documented delay (20 polling intervals) once idle; a server
// restart in between keeps the scale. Every decision is in the server's log with its
// inputs.
func TestKubernetesAutoscale(t *testing.T) {
	c := k8senv.Start(t, k8senv.WithPods())
	ns := c.Namespace(t, "ml")
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	busyDeployment(t, dir, map[string]string{"endpoint.yml": "name: busy\nauth_mode: key\ncompute: azureml:k8s\n"})
	startPodServers(t, c, ns, code, dir)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", ns)
	s.ok("online-endpoint", "create", "-f", filepath.Join(dir, "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--all-traffic")
	replicas := func() int32 {
		d, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "busy-blue", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	waitReplicas := func(want int32, within time.Duration) time.Duration {
		start := time.Now()
		for replicas() != want {
			if time.Since(start) > within {
				t.Fatalf("replicas %d, want %d after %v; server log:\n%s", replicas(), want, within, s.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	if n := replicas(); n != 1 {
		t.Fatalf("starts with %d replicas, want min_instances 1", n)
	}

	// Six clients that never pause: utilization far above 70% of one replica.
	key, _ := s.keys("busy")
	stopLoad := s.load("busy", key, 6)
	up := waitReplicas(3, 15*time.Second)
	stopLoad()
	// A server restart applies the deployment again: the autoscaler's count stands.
	s.stop()
	s.start()
	time.Sleep(3 * time.Second)
	if n := replicas(); n != 3 {
		t.Fatalf("after a restart the Deployment has %d replicas: applying it again reset the autoscaler's 3", n)
	}
	down := waitReplicas(1, 60*time.Second)
	if down < 15*time.Second {
		t.Errorf("scaled back to 1 after %v: scale-down must wait 20 polling intervals below target", down)
	}
	log := s.log.String()
	if !strings.Contains(log, "autoscale") || !strings.Contains(log, "utilization") || !strings.Contains(log, "scale up 1 → 3") {
		t.Errorf("the server log lacks the autoscaler's decisions with their inputs:\n%s", log)
	}
	t.Logf("scaled 1 → 3 in %v under load, back to 1 in %v once idle", up.Round(time.Millisecond), down.Round(time.Millisecond))
}
