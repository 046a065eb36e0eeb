package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/test/k8senv"
)

// connect connects to c's API server as a user's attached kubeconfig does.
func connect(t *testing.T, c *k8senv.Cluster) *Cluster {
	t.Helper()
	b, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := Connect(b, c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func TestCheckNamespace(t *testing.T) {
	c := k8senv.Start(t)
	kc := connect(t, c)
	ns := c.Namespace(t, "ml")
	if err := kc.CheckNamespace(t.Context(), ns); err != nil {
		t.Fatalf("existing namespace: %v", err)
	}
	err := kc.CheckNamespace(t.Context(), "nowhere")
	if de := diag.As(err); de == nil || de.Code != diag.NamespaceNotFound || !strings.Contains(de.Message, "kubectl create namespace nowhere") {
		t.Fatalf("missing namespace: %v", err)
	}
	// The same cluster on a port nothing listens on.
	b, _ := os.ReadFile(c.Kubeconfig)
	bad := strings.Replace(string(b), kc.Config.Host, "https://127.0.0.1:1", 1)
	path := filepath.Join(t.TempDir(), "down.yaml")
	os.WriteFile(path, []byte(bad), 0o600)
	down, err := Connect([]byte(bad), path)
	if err != nil {
		t.Fatal(err)
	}
	err = down.CheckNamespace(t.Context(), ns)
	if de := diag.As(err); de == nil || de.Code != diag.KubernetesUnaccessible ||
		!strings.Contains(de.Message, "https://127.0.0.1:1") || !strings.Contains(de.Message, path) || !strings.Contains(de.Message, "connection refused") {
		t.Fatalf("unreachable cluster: %v", err)
	}
	if _, err := Connect([]byte("not: [a kubeconfig"), "junk.yaml"); diag.As(err) == nil || diag.As(err).Code != diag.BadArgument {
		t.Fatalf("junk kubeconfig: %v", err)
	}
}

// testSpec is a deployment of two replicas with a small resource request.
func testSpec(ns string) DeploymentSpec {
	return DeploymentSpec{Endpoint: "heart", Deployment: "blue", Namespace: ns, Image: "berth:test", Replicas: 2,
		Liveness:  Probe{InitialDelay: 1, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 30},
		Readiness: Probe{InitialDelay: 1, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 3},
		Resources: &Resources{Requests: map[string]string{"cpu": "100m", "memory": "256Mi"}, Limits: map[string]string{"cpu": "1", "memory": "1Gi"}},
		Env:       map[string]string{"MODEL_FLAVOR": "ridge"}, WorkerCount: 1, EntryScript: "score.py",
		ServerURL: "http://127.0.0.1:9", Token: "tok"}
}

// waitObserved polls the cluster until ok holds of what it says, or fails t.
func waitObserved(t *testing.T, kc *Cluster, ns string, what string, ok func(Observed) bool) Observed {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := kc.Observe(t.Context(), ns, "heart", "blue")
		if err != nil {
			t.Fatal(err)
		}
		if ok(o) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s; deployment %+v, %d pods", what, o.Deployment, len(o.Pods))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestApplyObserveDelete(t *testing.T) {
	c := k8senv.Start(t, k8senv.WithPods())
	kc := connect(t, c)
	ns := c.Namespace(t, "ml")
	set, err := Objects(testSpec(ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(t.Context(), ns, set); err != nil {
		t.Fatal(err)
	}
	o := waitObserved(t, kc, ns, "2 replicas ready", func(o Observed) bool { return o.Deployment != nil && Ready(o.Deployment) })
	if f := Classify(o.Deployment, o.Pods); f != nil {
		t.Fatalf("a ready deployment classified as %+v", f)
	}
	got, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), ObjectName("heart", "blue"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	main := got.Spec.Template.Spec.Containers[0]
	if got.Labels[LabelEndpoint] != "heart" || main.ReadinessProbe.FailureThreshold != 3 || main.Resources.Limits.Memory().String() != "1Gi" ||
		len(got.Spec.Template.Spec.InitContainers) != 1 || got.Spec.Template.Spec.InitContainers[0].Name != ContainerStorageInitializer {
		t.Fatalf("the applied Deployment lost the mapping: %+v", got.Spec.Template.Spec)
	}
	// Applying the same set again changes nothing; a changed count scales in place.
	gen := got.Generation
	if err := kc.Apply(t.Context(), ns, set); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Client.AppsV1().Deployments(ns).Get(t.Context(), got.Name, metav1.GetOptions{}); again.Generation != gen {
		t.Fatalf("a second apply of the same set changed the Deployment (generation %d → %d)", gen, again.Generation)
	}
	three := testSpec(ns)
	three.Replicas = 3
	set3, _ := Objects(three)
	if err := kc.Apply(t.Context(), ns, set3); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, kc, ns, "3 replicas ready", func(o Observed) bool {
		return o.Deployment != nil && Ready(o.Deployment) && *o.Deployment.Spec.Replicas == 3
	})
	if err := kc.Delete(t.Context(), ns, "heart", "blue"); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, kc, ns, "deleted", func(o Observed) bool { return o.Deployment == nil })
	if _, err := c.Client.CoreV1().Services(ns).Get(t.Context(), ObjectName("heart", "blue"), metav1.GetOptions{}); err == nil {
		t.Fatal("the Service outlived Delete")
	}
	if err := kc.Delete(t.Context(), ns, "heart", "blue"); err != nil {
		t.Fatalf("a second Delete: %v", err)
	}
}

// TestInjectedPodStates: pod states set through the API (no scheduler runs, so nothing
// overwrites them) give the documented codes with Kubernetes' own words.
func TestInjectedPodStates(t *testing.T) {
	c := k8senv.Start(t)
	kc := connect(t, c)
	ns := c.Namespace(t, "ml")
	set, err := Objects(testSpec(ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(t.Context(), ns, set); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		status corev1.PodStatus
		code   diag.Code
		says   string
	}{
		{"unschedulable", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient memory."}}},
			diag.PodUnschedulable, "Insufficient memory"},
		{"image-pull", waitingStatus("ImagePullBackOff", `Back-off pulling image "berth:test"`), diag.ImagePullLoopBackOff, "berth:test"},
		{"crash-loop", waitingStatus("CrashLoopBackOff", "back-off 40s restarting failed container"), diag.DeploymentCrashLoopBackOff, "keeps exiting"},
		{"oom", terminatedStatus("OOMKilled", 137), diag.PodOutOfMemory, "OOMKilled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := injectPod(t, c, ns, set, tc.name, tc.status)
			defer c.Client.CoreV1().Pods(ns).Delete(context.WithoutCancel(t.Context()), pod, metav1.DeleteOptions{})
			o, err := kc.Observe(t.Context(), ns, "heart", "blue")
			if err != nil {
				t.Fatal(err)
			}
			f := Classify(o.Deployment, o.Pods)
			if f == nil {
				t.Fatalf("no failure read from %d pods", len(o.Pods))
			}
			de := f.Err([]string{"Traceback (most recent call last):", "MemoryError"})
			if de.Code != tc.code || !strings.Contains(de.Message, tc.says) {
				t.Fatalf("got %s: %s; want %s saying %q", de.Code, de.Message, tc.code, tc.says)
			}
		})
	}
}

func waitingStatus(reason, msg string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerInferenceServer,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}, Image: "berth:test"}}}
}

func terminatedStatus(reason string, code int32) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerInferenceServer,
		RestartCount: 3, Image: "berth:test",
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}}}}
}

// injectPod creates a pod of the deployment (from its template) and sets its status.
func injectPod(t *testing.T, c *k8senv.Cluster, ns string, set *Set, name string, status corev1.PodStatus) string {
	t.Helper()
	tpl := set.Deployment.Spec.Template
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "heart-blue-" + name, Namespace: ns, Labels: tpl.Labels}, Spec: tpl.Spec}
	created, err := c.Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = status
	if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return created.Name
}

// TestNameCollision: endpoint "heart" + deployment "blue-x" and endpoint "heart-blue" +
// deployment "x" give the same Kubernetes name; the second is refused with Conflict,
// and neither Observe nor Delete of it touches the first one's objects.
func TestNameCollision(t *testing.T) {
	c := k8senv.Start(t)
	kc := connect(t, c)
	ns := c.Namespace(t, "ml")
	first := testSpec(ns)
	first.Deployment = "blue-x"
	set, err := Objects(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(t.Context(), ns, set); err != nil {
		t.Fatal(err)
	}
	second := testSpec(ns)
	second.Endpoint, second.Deployment = "heart-blue", "x"
	set2, _ := Objects(second)
	err = kc.Apply(t.Context(), ns, set2)
	if de := diag.As(err); de == nil || de.Code != diag.Conflict || !strings.Contains(de.Message, `endpoint "heart", deployment "blue-x"`) {
		t.Fatalf("a colliding apply: %v", err)
	}
	if o, err := kc.Observe(t.Context(), ns, "heart-blue", "x"); err != nil || o.Deployment != nil {
		t.Fatalf("Observe of the other pair saw %v, %v", o.Deployment, err)
	}
	if err := kc.Delete(t.Context(), ns, "heart-blue", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "heart-blue-x", metav1.GetOptions{}); err != nil {
		t.Fatalf("Delete of the other pair deleted the first one's Deployment: %v", err)
	}
}
