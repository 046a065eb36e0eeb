package kubernetes

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/berthml/berth/internal/runtime"
)

// Runtime runs online deployments on Kubernetes computes (runtime.Clusters).
type Runtime struct{}

var _ runtime.Clusters = Runtime{}

func connectTarget(t runtime.ClusterTarget) (*Cluster, error) { return Connect(t.Kubeconfig, t.Source) }

// Check builds the deployment's objects without applying them: BadArgument for what
// the API server would refuse.
func (Runtime) Check(t runtime.ClusterTarget, d runtime.ClusterDeployment) error {
	_, err := Objects(specOf(t, d))
	return err
}

// Apply builds the deployment's objects and applies them.
func (Runtime) Apply(ctx context.Context, t runtime.ClusterTarget, d runtime.ClusterDeployment) error {
	c, err := connectTarget(t)
	if err != nil {
		return err
	}
	set, err := Objects(specOf(t, d))
	if err != nil {
		return err
	}
	return c.Apply(ctx, t.Namespace, set)
}

// specOf is the object mapping's input for d on t.
func specOf(t runtime.ClusterTarget, d runtime.ClusterDeployment) DeploymentSpec {
	probe := func(p runtime.ClusterProbe) Probe {
		return Probe{InitialDelay: p.InitialDelay, Period: p.Period, Timeout: p.Timeout, SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold}
	}
	s := DeploymentSpec{Endpoint: d.Endpoint, Deployment: d.Deployment, Namespace: t.Namespace, Image: t.Image,
		Replicas: d.Replicas, Liveness: probe(d.Liveness), Readiness: probe(d.Readiness), Env: d.Env,
		WorkerCount: d.WorkerCount, EntryScript: d.EntryScript, ModelPath: d.ModelPath, ModelBase: d.ModelBase, ModelArtifact: d.ModelArtifact,
		CodeArtifact: d.CodeArtifact, ServerURL: d.ServerURL, Token: d.Token}
	if len(d.Requests) > 0 || len(d.Limits) > 0 {
		s.Resources = &Resources{Requests: d.Requests, Limits: d.Limits}
	}
	return s
}

// State reads the Deployment and its pods: ready, or the documented failure with the
// failing container's last log lines.
func (Runtime) State(ctx context.Context, t runtime.ClusterTarget, endpoint, deployment string) (runtime.ClusterState, error) {
	c, err := connectTarget(t)
	if err != nil {
		return runtime.ClusterState{}, err
	}
	o, err := c.Observe(ctx, t.Namespace, endpoint, deployment)
	if err != nil || o.Deployment == nil {
		return runtime.ClusterState{}, err
	}
	if f := Classify(o.Deployment, o.Pods); f != nil {
		return runtime.ClusterState{Failure: f.Err(c.logTail(ctx, t.Namespace, f.Pod, f.Container))}, nil
	}
	replicas := 0
	if r := o.Deployment.Spec.Replicas; r != nil {
		replicas = int(*r)
	}
	return runtime.ClusterState{Ready: Ready(o.Deployment), Replicas: replicas}, nil
}

// logTail is the last lines the previous run of a container wrote; nil when the
// cluster keeps none.
func (c *Cluster) logTail(ctx context.Context, namespace, pod, container string) []string {
	if pod == "" || container == "" {
		return nil
	}
	b, err := c.Core.Get().Namespace(namespace).Resource("pods").Name(pod).SubResource("log").
		Param("container", container).Param("previous", "true").Param("tailLines", "20").DoRaw(ctx)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// Delete deletes the deployment's objects.
func (Runtime) Delete(ctx context.Context, t runtime.ClusterTarget, endpoint, deployment string) error {
	c, err := connectTarget(t)
	if err != nil {
		return err
	}
	return c.Delete(ctx, t.Namespace, endpoint, deployment)
}

// Watch lists the deployment's pods, then follows their changes with a watch (listing
// again when the watch ends), and calls fn with the addresses of the ready ones each
// time that set changes.
func (Runtime) Watch(ctx context.Context, t runtime.ClusterTarget, endpoint, deployment string, fn func([]string)) {
	c, err := connectTarget(t)
	if err != nil {
		return
	}
	sel := labels.SelectorFromSet(Labels(endpoint, deployment)).String()
	last := "-"
	report := func(pods map[string]*corev1.Pod) {
		addrs := readyAddrs(pods)
		if key := strings.Join(addrs, ","); key != last {
			last = key
			fn(addrs)
		}
	}
	for ctx.Err() == nil {
		c.watchOnce(ctx, t.Namespace, sel, report)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // the API server went away: list again soon
		}
	}
}

// watchOnce lists the pods matching sel and follows them until the watch ends.
func (c *Cluster) watchOnce(ctx context.Context, namespace, sel string, report func(map[string]*corev1.Pod)) {
	list := &corev1.PodList{}
	if err := c.Core.Get().Namespace(namespace).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: sel}, metav1.ParameterCodec).Do(ctx).Into(list); err != nil {
		return
	}
	pods := map[string]*corev1.Pod{}
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	report(pods)
	timeout := int64(300)
	w, err := c.Core.Get().Namespace(namespace).Resource("pods").VersionedParams(&metav1.ListOptions{LabelSelector: sel,
		Watch: true, ResourceVersion: list.ResourceVersion, TimeoutSeconds: &timeout}, metav1.ParameterCodec).Watch(ctx)
	if err != nil {
		return
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return // an error event (e.g. the resource version expired): list again
		}
		if ev.Type == watch.Deleted {
			delete(pods, p.Name)
		} else {
			pods[p.Name] = p
		}
		report(pods)
	}
}

// readyAddrs are the host:port of the pods that are Ready and not being deleted, sorted.
func readyAddrs(pods map[string]*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				out = append(out, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(InferencePort)))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Logs reads the last lines of container from each of the deployment's pods, newest
// pod first, each under a "=== pod <name> ===" line; a pod whose container has not
// started says so in place of its lines.
func (Runtime) Logs(ctx context.Context, t runtime.ClusterTarget, endpoint, deployment, container string, lines int) ([]byte, error) {
	c, err := connectTarget(t)
	if err != nil {
		return nil, err
	}
	o, err := c.Observe(ctx, t.Namespace, endpoint, deployment)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(o.Pods, func(a, b corev1.Pod) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	var out []byte
	for _, p := range o.Pods {
		b, err := c.Core.Get().Namespace(t.Namespace).Resource("pods").Name(p.Name).SubResource("log").
			Param("container", container).Param("tailLines", strconv.Itoa(lines)).DoRaw(ctx)
		out = append(out, "=== pod "+p.Name+" ("+string(p.Status.Phase)+") ===\n"...)
		if err != nil {
			out = append(out, "(no log: "+err.Error()+")\n"...)
			continue
		}
		out = append(out, b...)
	}
	return out, nil
}
