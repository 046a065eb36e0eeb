package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthml/berth/internal/runtime"
)

// LabelJob names the Berth job of a Job's objects.
const LabelJob = "berth.ml/job"

// ContainerBatchWorker is the main container of a batch job's pods.
const ContainerBatchWorker = "batch-worker"

var _ runtime.ClusterJobs = Runtime{}

// JobObjectName is the name of a Berth job's Indexed Job: "berth-" and the job's name.
// A name Kubernetes cannot take as it is (upper case, other characters, too long) is
// lower-cased, its other characters replaced by "-", cut, and given a hash of the
// exact name, so that two jobs never share a Job.
func JobObjectName(job string) string {
	name := jobObjectBase(job)
	if name == "berth-"+job {
		return name
	}
	sum := sha256.Sum256([]byte(job))
	return strings.TrimRight(name[:min(len(name), 43)], "-") + "-" + hex.EncodeToString(sum[:4])
}

func jobObjectBase(job string) string {
	var b strings.Builder
	b.WriteString("berth-")
	for _, r := range strings.ToLower(job) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 52 { // the pods' names add the index and a suffix, up to 63
		name = name[:52]
	}
	return strings.TrimRight(name, "-")
}

// JobSet is the objects of one batch job, in the order they are applied.
type JobSet struct {
	Secret *corev1.Secret
	Job    *batchv1.Job
}

// jobLabels are the labels of a batch job's objects and pods.
func jobLabels(j runtime.ClusterJob) map[string]string {
	l := Labels(j.Endpoint, j.Deployment)
	l[LabelJob] = JobObjectName(j.Job)
	return l
}

// JobObjects validates j's resources and builds its Secret and Indexed Job:
// completions = parallelism = Nodes, each pod's index its node.
func JobObjects(namespace, image string, j runtime.ClusterJob) (*JobSet, error) {
	ds := jobDeploymentSpec(namespace, image, j)
	res, err := Validate(ds)
	if err != nil {
		return nil, err
	}
	name := JobObjectName(j.Job)
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: jobLabels(j)}
	secretMeta := *meta.DeepCopy()
	secretMeta.Name = name + "-berth-token"
	nodes := int32(max(j.Nodes, 1))
	mode := batchv1.IndexedCompletion
	backoff := 3 * nodes
	spec := podSpec(ds, res)
	spec.RestartPolicy = corev1.RestartPolicyOnFailure
	token := corev1.EnvVar{Name: TokenEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secretMeta.Name}, Key: TokenKey}}}
	spec.InitContainers[0].Env = []corev1.EnvVar{token}
	main := &spec.Containers[0]
	main.Name, main.Args, main.Ports = ContainerBatchWorker, batchWorkerArgs(ds, j), nil
	main.LivenessProbe, main.ReadinessProbe = nil, nil
	main.Env = append(jobEnv(ds), token)
	return &JobSet{
		Secret: &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: secretMeta,
			Type: corev1.SecretTypeOpaque, StringData: map[string]string{TokenKey: j.Token}},
		Job: &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				Completions: &nodes, Parallelism: &nodes, CompletionMode: &mode, BackoffLimit: &backoff,
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: jobLabels(j)}, Spec: spec},
			},
		},
	}, nil
}

// jobDeploymentSpec is the part of an online deployment's mapping a batch job shares:
// the image, the storage initializer, resources and variables.
func jobDeploymentSpec(namespace, image string, j runtime.ClusterJob) DeploymentSpec {
	s := DeploymentSpec{Endpoint: j.Endpoint, Deployment: j.Deployment, Namespace: namespace, Image: image,
		Env: j.Env, EntryScript: j.EntryScript, ModelPath: j.ModelPath, ModelBase: j.ModelBase,
		ModelArtifact: j.ModelArtifact, CodeArtifact: j.CodeArtifact, ServerURL: j.ServerURL, Token: j.Token}
	if len(j.Requests) > 0 || len(j.Limits) > 0 {
		s.Resources = &Resources{Requests: j.Requests, Limits: j.Limits}
	}
	return s
}

// batchWorkerArgs are the arguments of `berth` in a batch job's main container; the
// pod's node is the JOB_COMPLETION_INDEX Kubernetes sets.
func batchWorkerArgs(s DeploymentSpec, j runtime.ClusterJob) []string {
	level := j.LoggingLevel
	if level == "" {
		level = "info"
	}
	return []string{"batch-worker",
		"--server", j.ServerURL,
		"--job", j.Job,
		"--run", j.Run,
		"--processes", strconv.Itoa(max(j.Processes, 1)),
		"--entry_script", EntryScript(s),
		"--model_dir", ModelDir(s),
		"--timeout", strconv.FormatFloat(j.TimeoutSeconds, 'f', -1, 64),
		"--logging_level", level,
	}
}

// jobEnv is the deployment's variables and Azure's, sorted by name.
func jobEnv(s DeploymentSpec) []corev1.EnvVar {
	vars := map[string]string{}
	for k, v := range s.Env {
		vars[k] = v
	}
	vars["AZUREML_MODEL_DIR"] = ModelDir(s)
	vars["AML_APP_ROOT"] = path.Dir(EntryScript(s))
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	env := make([]corev1.EnvVar, 0, len(names)+1)
	for _, k := range names {
		env = append(env, corev1.EnvVar{Name: k, Value: vars[k]})
	}
	return env
}

// CheckJob builds the job's objects without applying them.
func (Runtime) CheckJob(t runtime.ClusterTarget, j runtime.ClusterJob) error {
	_, err := JobObjects(t.Namespace, t.Image, j)
	return err
}

// ApplyJob builds the job's objects and applies them.
func (Runtime) ApplyJob(ctx context.Context, t runtime.ClusterTarget, j runtime.ClusterJob) error {
	c, err := connectTarget(t)
	if err != nil {
		return err
	}
	set, err := JobObjects(t.Namespace, t.Image, j)
	if err != nil {
		return err
	}
	for _, o := range []object{{c.Core, "secrets", set.Secret.Name, set.Secret}, {c.Batch, "jobs", set.Job.Name, set.Job}} {
		body, err := json.Marshal(o.body)
		if err != nil {
			return err
		}
		force := true
		err = o.client.Patch(types.ApplyPatchType).Namespace(t.Namespace).Resource(o.resource).Name(o.name).
			VersionedParams(&metav1.PatchOptions{FieldManager: FieldManager, Force: &force}, metav1.ParameterCodec).
			Body(body).Do(ctx).Error()
		if err != nil {
			return c.applyErr(ctx, t.Namespace, o, err)
		}
	}
	return nil
}

// JobState reads the Job and its pods: a pod that cannot run is the documented
// failure; a Job the cluster failed (its backoff limit) is one too.
func (Runtime) JobState(ctx context.Context, t runtime.ClusterTarget, job string) (runtime.ClusterJobState, error) {
	c, err := connectTarget(t)
	if err != nil {
		return runtime.ClusterJobState{}, err
	}
	name := JobObjectName(job)
	kj := &batchv1.Job{}
	err = c.Batch.Get().Namespace(t.Namespace).Resource("jobs").Name(name).Do(ctx).Into(kj)
	switch {
	case apierrors.IsNotFound(err):
		return runtime.ClusterJobState{}, nil
	case err != nil:
		return runtime.ClusterJobState{}, c.unaccessible(err)
	}
	pods := &corev1.PodList{}
	sel := labels.SelectorFromSet(map[string]string{LabelJob: name}).String()
	if err := c.Core.Get().Namespace(t.Namespace).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: sel}, metav1.ParameterCodec).Do(ctx).Into(pods); err != nil {
		return runtime.ClusterJobState{}, c.unaccessible(err)
	}
	st := runtime.ClusterJobState{Exists: true}
	if f := Classify(nil, pods.Items); f != nil {
		st.Failure = f.Err(c.logTail(ctx, t.Namespace, f.Pod, f.Container))
		return st, nil
	}
	for _, cond := range kj.Status.Conditions {
		if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
			st.Failure = fmt.Errorf("the cluster failed Job %s/%s: %s: %s", t.Namespace, name, cond.Reason, cond.Message)
		}
	}
	return st, nil
}

// DeleteJob deletes the Job (its pods with it) and its Secret, and waits up to a
// minute until the Job is gone, so that one of the same name may be applied again.
func (Runtime) DeleteJob(ctx context.Context, t runtime.ClusterTarget, job string) error {
	c, err := connectTarget(t)
	if err != nil {
		return err
	}
	name := JobObjectName(job)
	background := metav1.DeletePropagationBackground
	for _, o := range []object{{c.Batch, "jobs", name, nil}, {c.Core, "secrets", name + "-berth-token", nil}} {
		err := o.client.Delete().Namespace(t.Namespace).Resource(o.resource).Name(o.name).
			Body(&metav1.DeleteOptions{PropagationPolicy: &background}).Do(ctx).Error()
		if err != nil && !apierrors.IsNotFound(err) {
			return c.unaccessible(fmt.Errorf("delete %s %s/%s: %w", o.resource, t.Namespace, o.name, err))
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		err := c.Batch.Get().Namespace(t.Namespace).Resource("jobs").Name(name).Do(ctx).Error()
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return c.unaccessible(fmt.Errorf("Job %s/%s is still there a minute after it was deleted", t.Namespace, name))
}
