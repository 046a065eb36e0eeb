package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/berthml/berth/internal/diag"
)

// Kubernetes reasons Classify reads.
const (
	ReasonUnschedulable    = corev1.PodReasonUnschedulable // "Unschedulable"
	ReasonImagePullBackOff = "ImagePullBackOff"
	ReasonErrImagePull     = "ErrImagePull"
	ReasonInvalidImageName = "InvalidImageName"
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	ReasonOOMKilled        = "OOMKilled"
)

// Failure is why a deployment's pods do not become ready, read from their status. Err
// turns it into the documented error; for DeploymentCrashLoopBackOff the caller first
// reads the last log lines of Container in Pod (its previous run) and passes them.
type Failure struct {
	Code        diag.Code
	Endpoint    string // from the pod's labels
	Deployment  string
	Pod         string
	Container   string // "" for a pod that was never scheduled
	Reason      string // Kubernetes' reason: Unschedulable, ImagePullBackOff, OOMKilled...
	Message     string // Kubernetes' own words (the scheduler's or the kubelet's)
	Image       string // the image that cannot be pulled
	Restarts    int32
	ExitCode    int32  // of the last run, for a crash loop
	MemoryLimit string // the container's memory limit, for OOMKilled
}

// rank orders failures: the most specific cause wins when pods disagree (a pod killed
// for memory also crash-loops; a crash says more than a pending pod).
func rank(c diag.Code) int {
	switch c {
	case diag.PodOutOfMemory:
		return 0
	case diag.DeploymentCrashLoopBackOff:
		return 1
	case diag.ImagePullLoopBackOff:
		return 2
	case diag.PodUnschedulable:
		return 3
	default:
		return 4
	}
}

// Classify reads the status of a deployment's pods and of its Deployment (nil: pods
// only) and returns the documented failure, or nil when nothing has failed (pods still
// starting are not failures). Pods being deleted are skipped; pass the pods of the
// Deployment's current ReplicaSet, or all pods with its labels. Among several failures
// the most specific wins, then the pod name, so the answer is stable. A Deployment that
// cannot create its pods at all (ReplicaFailure, e.g. a ResourceQuota of the namespace)
// is OutOfQuota when no pod says more.
func Classify(d *appsv1.Deployment, pods []corev1.Pod) *Failure {
	sorted := make([]*corev1.Pod, 0, len(pods))
	for i := range pods {
		if pods[i].DeletionTimestamp == nil {
			sorted = append(sorted, &pods[i])
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var best *Failure
	for _, pod := range sorted {
		f := classifyPod(pod)
		if f != nil && (best == nil || rank(f.Code) < rank(best.Code)) {
			best = f
		}
	}
	if best == nil && d != nil {
		best = replicaFailure(d)
	}
	return best
}

// replicaFailure reads the Deployment's ReplicaFailure condition.
func replicaFailure(d *appsv1.Deployment) *Failure {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return &Failure{Code: diag.OutOfQuota, Endpoint: d.Labels[LabelEndpoint], Deployment: d.Labels[LabelDeployment],
				Reason: c.Reason, Message: c.Message}
		}
	}
	return nil
}

// classifyPod returns the most specific failure of one pod, or nil.
func classifyPod(pod *corev1.Pod) *Failure {
	base := Failure{Pod: pod.Name, Endpoint: pod.Labels[LabelEndpoint], Deployment: pod.Labels[LabelDeployment]}
	var best *Failure
	consider := func(f *Failure) {
		if f != nil && (best == nil || rank(f.Code) < rank(best.Code)) {
			best = f
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for i := range statuses {
		consider(classifyContainer(base, pod, &statuses[i]))
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == ReasonUnschedulable {
			f := base
			f.Code, f.Reason, f.Message = diag.PodUnschedulable, c.Reason, c.Message
			consider(&f)
		}
	}
	return best
}

// classifyContainer reads one container's state and its last run.
func classifyContainer(base Failure, pod *corev1.Pod, cs *corev1.ContainerStatus) *Failure {
	f := base
	f.Container, f.Image, f.Restarts = cs.Name, cs.Image, cs.RestartCount
	for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
		if t != nil && t.Reason == ReasonOOMKilled {
			f.Code, f.Reason, f.Message, f.ExitCode = diag.PodOutOfMemory, t.Reason, t.Message, t.ExitCode
			f.MemoryLimit = memoryLimit(pod, cs.Name)
			return &f
		}
	}
	w := cs.State.Waiting
	if w == nil {
		return nil
	}
	switch w.Reason {
	case ReasonImagePullBackOff, ReasonErrImagePull, ReasonInvalidImageName:
		f.Code = diag.ImagePullLoopBackOff
	case ReasonCrashLoopBackOff:
		f.Code = diag.DeploymentCrashLoopBackOff
		if t := cs.LastTerminationState.Terminated; t != nil {
			f.ExitCode = t.ExitCode
		}
	default:
		return nil
	}
	f.Reason, f.Message = w.Reason, w.Message
	if f.Image == "" {
		f.Image = specImage(pod, cs.Name)
	}
	return &f
}

// specImage is the image the pod spec names for a container (a status may not carry
// it before the first pull).
func specImage(pod *corev1.Pod, container string) string {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == container {
			return c.Image
		}
	}
	return ""
}

func memoryLimit(pod *corev1.Pod, container string) string {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name != container {
			continue
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			return q.String()
		}
	}
	return ""
}

// Err is the documented error of the failure, its message saying the cause and the fix.
// logTail is the container's last log lines (its previous run), quoted for a crash loop
// and an out-of-memory kill; it may be empty.
func (f *Failure) Err(logTail []string) *diag.Error {
	e := &diag.Error{Code: f.Code, Target: f.target(), Message: f.message()}
	if tail := strings.TrimRight(strings.Join(logTail, "\n"), "\n"); tail != "" &&
		(f.Code == diag.DeploymentCrashLoopBackOff || f.Code == diag.PodOutOfMemory) {
		e.Message += "\nLast log lines of " + f.Container + ":\n" + tail
	}
	return e
}

func (f *Failure) target() string {
	if f.Pod == "" {
		return "deployment " + f.Deployment
	}
	if f.Container == "" {
		return "pod " + f.Pod
	}
	return "pod " + f.Pod + ", container " + f.Container
}

func (f *Failure) message() string {
	logs := fmt.Sprintf("`berth online-deployment get-logs -e %s -n %s --container %s`", f.Endpoint, f.Deployment, f.Container)
	switch f.Code {
	case diag.PodUnschedulable:
		return fmt.Sprintf("pod %s cannot be scheduled: Kubernetes unschedulable. Details: %s. "+
			"Fix: lower resources.requests or pick a smaller instance_type, add nodes to the cluster, or check that a node matches the instance type's nodeSelector; then update the deployment",
			f.Pod, strings.TrimSuffix(f.Message, "."))
	case diag.ImagePullLoopBackOff:
		return fmt.Sprintf("container %s of pod %s cannot pull its image %q (%s%s). "+
			"Fix: check the compute's image name, that the image was built and pushed to a registry the cluster's nodes can reach (or loaded into the cluster), and its pull secret",
			f.Container, f.Pod, f.Image, f.Reason, suffix(f.Message))
	case diag.DeploymentCrashLoopBackOff:
		if f.Container == ContainerStorageInitializer {
			return fmt.Sprintf("container %s of pod %s keeps exiting (exit code %d, restarted %d times): it could not fetch the model and code from the Berth server. "+
				"Fix: check that the pods can reach the server URL of the compute and that the deployment's artifacts exist; read %s",
				f.Container, f.Pod, f.ExitCode, f.Restarts, logs)
		}
		return fmt.Sprintf("container %s of pod %s keeps exiting (exit code %d, restarted %d times): score.py failed to import, init() raised, run() crashed the process, or it used more memory than its limit. "+
			"Fix: read the log lines below and %s, fix score.py or raise resources.limits.memory, then update the deployment",
			f.Container, f.Pod, f.ExitCode, f.Restarts, logs)
	case diag.PodOutOfMemory:
		limit := f.MemoryLimit
		if limit == "" {
			limit = "the node's memory"
		}
		return fmt.Sprintf("container %s of pod %s was killed for using more memory than its limit (%s; OOMKilled, restarted %d times). "+
			"Fix: raise resources.limits.memory (and requests.memory) or pick an instance_type with more memory, lower WORKER_COUNT, or load a smaller model",
			f.Container, f.Pod, limit, f.Restarts)
	default:
		return fmt.Sprintf("Kubernetes cannot create the pods of deployment %s (%s%s). "+
			"Fix: raise the namespace's ResourceQuota or lower instance_count or resources.requests, then update the deployment",
			f.Deployment, f.Reason, suffix(f.Message))
	}
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// Ready reports whether every desired replica of the Deployment runs the current pod
// template and is ready, with no pod of an older template left: the deployment is
// Succeeded. A Deployment the controller has not yet seen is not ready.
func Ready(d *appsv1.Deployment) bool {
	if d == nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return st.UpdatedReplicas == want && st.Replicas == want && st.ReadyReplicas == want && st.AvailableReplicas == want
}
