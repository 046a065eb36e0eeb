package kubernetes

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/internal/diag"
)

// pod is a pod of my-endpoint/blue with a 2Gi memory limit, edited by the test case.
func pod(name string, edit func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: Labels("my-endpoint", "blue")},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: ContainerStorageInitializer, Image: "berth:latest"}},
			Containers: []corev1.Container{{Name: ContainerInferenceServer, Image: "berth:latest",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}},
		},
	}
	edit(&p)
	return p
}

func unschedulable(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}}
}

func waiting(container, reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		cs := corev1.ContainerStatus{Name: container, RestartCount: 4,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
		if reason == ReasonCrashLoopBackOff {
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
		}
		if container == ContainerStorageInitializer {
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, cs)
		} else {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
		}
	}
}

func oomKilled(last bool) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		t := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: ReasonOOMKilled}
		cs := corev1.ContainerStatus{Name: ContainerInferenceServer, RestartCount: 2}
		if last {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: "back-off 40s restarting failed container"}
			cs.LastTerminationState.Terminated = t
		} else {
			cs.State.Terminated = t
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
	}
}

func running(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerInferenceServer, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
}

func TestClassify(t *testing.T) {
	logTail := []string{"Traceback (most recent call last):", "ModuleNotFoundError: No module named 'sklearn'"}
	deleting := pod("a-deleting", oomKilled(false))
	deleting.DeletionTimestamp = &metav1.Time{}
	quota := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Labels: Labels("my-endpoint", "blue")},
		Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
			Reason: "FailedCreate", Message: `pods "my-endpoint-blue-x" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=4, limited: cpu=4`}}}}
	tests := []struct {
		name     string
		dep      *appsv1.Deployment
		pods     []corev1.Pod
		code     diag.Code // "" = no failure
		pod, ctr string
		words    []string
		wantTail bool
	}{
		{name: "no pods"},
		{name: "running", pods: []corev1.Pod{pod("p1", running)}},
		{name: "container creating", pods: []corev1.Pod{pod("p1", waiting(ContainerInferenceServer, "ContainerCreating", ""))}},
		{name: "unschedulable", pods: []corev1.Pod{pod("p1", unschedulable)}, code: diag.PodUnschedulable, pod: "p1",
			words: []string{"Kubernetes unschedulable. Details: 0/1 nodes are available: 1 Insufficient cpu", "lower resources.requests", "add nodes"}},
		{name: "image pull back-off", pods: []corev1.Pod{pod("p1", waiting(ContainerStorageInitializer, ReasonImagePullBackOff, `Back-off pulling image "berth:latest"`))},
			code: diag.ImagePullLoopBackOff, pod: "p1", ctr: ContainerStorageInitializer,
			words: []string{`cannot pull its image "berth:latest"`, "ImagePullBackOff: Back-off pulling image", "pushed to a registry"}},
		{name: "err image pull", pods: []corev1.Pod{pod("p1", waiting(ContainerInferenceServer, ReasonErrImagePull, "rpc error: not found"))},
			code: diag.ImagePullLoopBackOff, pod: "p1", ctr: ContainerInferenceServer, words: []string{"ErrImagePull: rpc error: not found"}},
		{name: "crash loop", pods: []corev1.Pod{pod("p1", waiting(ContainerInferenceServer, ReasonCrashLoopBackOff, "back-off 5m0s"))},
			code: diag.DeploymentCrashLoopBackOff, pod: "p1", ctr: ContainerInferenceServer, wantTail: true,
			words: []string{"keeps exiting (exit code 3, restarted 4 times)", "score.py failed to import", "get-logs -e my-endpoint -n blue --container inference-server",
				"Last log lines of inference-server:\nTraceback (most recent call last):\nModuleNotFoundError: No module named 'sklearn'"}},
		{name: "storage initializer crash loop", pods: []corev1.Pod{pod("p1", waiting(ContainerStorageInitializer, ReasonCrashLoopBackOff, ""))},
			code: diag.DeploymentCrashLoopBackOff, pod: "p1", ctr: ContainerStorageInitializer, wantTail: true,
			words: []string{"could not fetch the model and code from the Berth server", "--container storage-initializer"}},
		{name: "oom killed now", pods: []corev1.Pod{pod("p1", oomKilled(false))}, code: diag.PodOutOfMemory, pod: "p1", ctr: ContainerInferenceServer, wantTail: true,
			words: []string{"more memory than its limit (2Gi; OOMKilled", "raise resources.limits.memory"}},
		{name: "oom killed then crash loop", pods: []corev1.Pod{pod("p1", oomKilled(true))}, code: diag.PodOutOfMemory, pod: "p1", ctr: ContainerInferenceServer, wantTail: true,
			words: []string{"OOMKilled, restarted 2 times"}},
		{name: "most specific across pods", pods: []corev1.Pod{pod("p1", unschedulable), pod("p2", waiting(ContainerInferenceServer, ReasonImagePullBackOff, "")), pod("p3", oomKilled(true))},
			code: diag.PodOutOfMemory, pod: "p3", ctr: ContainerInferenceServer, wantTail: true},
		{name: "same kind: first pod by name", pods: []corev1.Pod{pod("p9", unschedulable), pod("p2", unschedulable)}, code: diag.PodUnschedulable, pod: "p2"},
		{name: "pods being deleted are skipped", pods: []corev1.Pod{deleting, pod("b", running)}},
		{name: "replica failure", dep: quota, code: diag.OutOfQuota,
			words: []string{"cannot create the pods of deployment blue", "exceeded quota", "ResourceQuota"}},
		{name: "a pod says more than the deployment", dep: quota, pods: []corev1.Pod{pod("p1", unschedulable)}, code: diag.PodUnschedulable, pod: "p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Classify(tt.dep, tt.pods)
			if tt.code == "" {
				if f != nil {
					t.Fatalf("Classify = %+v, want nil", f)
				}
				return
			}
			if f == nil {
				t.Fatalf("Classify = nil, want %s", tt.code)
			}
			if f.Code != tt.code || f.Pod != tt.pod || f.Container != tt.ctr {
				t.Errorf("Classify = %s pod %q container %q, want %s pod %q container %q", f.Code, f.Pod, f.Container, tt.code, tt.pod, tt.ctr)
			}
			e := f.Err(logTail)
			if e.Code != tt.code {
				t.Errorf("Err code = %s", e.Code)
			}
			if got := strings.Contains(e.Message, "Last log lines"); got != tt.wantTail {
				t.Errorf("log tail in message = %v, want %v:\n%s", got, tt.wantTail, e.Message)
			}
			for _, w := range tt.words {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, e.Message)
				}
			}
			if _, ok := diag.Lookup(e.Code); !ok {
				t.Errorf("%s is not in diag's catalogue", e.Code)
			}
		})
	}
}

func TestFailureErrWithoutLogs(t *testing.T) {
	f := Classify(nil, []corev1.Pod{pod("p1", waiting(ContainerInferenceServer, ReasonCrashLoopBackOff, ""))})
	if msg := f.Err(nil).Message; strings.Contains(msg, "Last log lines") {
		t.Errorf("empty tail quoted: %s", msg)
	}
	if got := f.Err(nil).Target; got != "pod p1, container inference-server" {
		t.Errorf("target = %q", got)
	}
}

func TestReady(t *testing.T) {
	three := int32(3)
	dep := func(gen, observed int64, replicas *int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
		st.ObservedGeneration = observed
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: replicas}, Status: st}
	}
	all := appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		want bool
	}{
		{"nil", nil, false},
		{"all ready", dep(2, 2, &three, all), true},
		{"not yet observed", dep(3, 2, &three, all), false},
		{"one not ready", dep(1, 1, &three, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}), false},
		{"old pod left", dep(1, 1, &three, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, ReadyReplicas: 4, AvailableReplicas: 4}), false},
		{"not updated", dep(1, 1, &three, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3}), false},
		{"replicas unset means 1", dep(1, 1, nil, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Ready(tt.d); got != tt.want {
				t.Errorf("Ready = %v, want %v", got, tt.want)
			}
		})
	}
}
