package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/test/k8senv"
)

// TestKubernetesPodFailures: pod states set through the API (no scheduler or kwok
// runs, so nothing overwrites them) fail the deployment with the documented code and
// Kubernetes' own words, and `berth diagnose` shows them.
func TestKubernetesPodFailures(t *testing.T) {
	c := k8senv.Start(t)
	ns := c.Namespace(t, "ml")
	example, _ := filepath.Abs("../../examples/sklearn-regression")
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", ns)
	s.ok("online-endpoint", "create", "-f", filepath.Join(example, "endpoint.yml"), "--set", "compute=azureml:k8s")

	for _, tc := range []struct {
		name, code, says string
		state            corev1.ContainerState
		last             corev1.ContainerState
	}{
		{"pull", "ImagePullLoopBackOff", "berth:latest",
			corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "berth:latest"`}}, corev1.ContainerState{}},
		{"crash", "DeploymentCrashLoopBackOff", "keeps exiting",
			corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 3}}},
		{"oom", "PodOutOfMemory", "OOMKilled",
			corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan result, 1)
			go func() {
				done <- s.berth("online-deployment", "create", "-f", filepath.Join(example, "blue-deployment.yml"), "--set", "name="+tc.name, "--set", "instance_type=defaultinstancetype")
			}()
			obj := "sklearn-regression-" + tc.name
			var tpl corev1.PodTemplateSpec
			deadline := time.Now().Add(30 * time.Second)
			for {
				d, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), obj, metav1.GetOptions{})
				if err == nil {
					tpl = d.Spec.Template
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the Deployment %s was not applied: %v", obj, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			pod, err := c.Client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: obj + "-0", Labels: tpl.Labels}, Spec: tpl.Spec}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "inference-server", Image: "berth:latest", RestartCount: 4, State: tc.state, LastTerminationState: tc.last}}}
			if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("create did not end once the pod failed")
			}
			if r.code == 0 || !strings.Contains(r.stderr, tc.code) || !strings.Contains(r.stderr, tc.says) {
				t.Fatalf("create: exit %d, want %s saying %q:\n%s", r.code, tc.code, tc.says, r.stderr)
			}
			out := s.ok("diagnose", "-e", "sklearn-regression", "-n", tc.name)
			if !strings.Contains(out, "Failed") || !strings.Contains(out, tc.code) || !strings.Contains(out, tc.says) || !strings.Contains(out, "Fix") {
				t.Errorf("diagnose does not show the pod failure:\n%s", out)
			}
		})
	}
	// After a restart nothing follows the Failed deployments; deleting one still deletes
	// its objects from the cluster.
	s.stop()
	s.start()
	s.ok("online-deployment", "delete", "-e", "sklearn-regression", "-n", "pull", "-y")
	if _, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "sklearn-regression-pull", metav1.GetOptions{}); err == nil {
		t.Fatal("the Deployment of a Failed deployment outlived its delete after a restart")
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Get(t.Context(), "sklearn-regression-pull-berth-token", metav1.GetOptions{}); err == nil {
		t.Fatal("the token Secret outlived the delete")
	}
}
