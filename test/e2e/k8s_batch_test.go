//go:build unix

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthml/berth/test/k8senv"
)

// jobKubelet stands in for the kubelet of a batch job's pods: for every pod of an
// Indexed Job in ns, it runs the pod's containers as the pod spec says — the
// storage-initializer to its end, then the batch-worker — as `berth` processes on this
// machine, with the pod's folder in place of /var/azureml-app, its variables (the token
// read from the Secret the spec names) and its completion index. It records the Jobs it
// saw and how each container process ended.
type jobKubelet struct {
	mu    sync.Mutex
	jobs  map[string]*batchv1.Job
	pods  map[string]string // pod name → how its containers ended
	ended sync.WaitGroup
}

func startJobKubelet(t *testing.T, c *k8senv.Cluster, ns string) *jobKubelet {
	k := &jobKubelet{jobs: map[string]*batchv1.Job{}, pods: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; k.ended.Wait() })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if jobs, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); err == nil {
				k.mu.Lock()
				for i := range jobs.Items {
					k.jobs[jobs.Items[i].Name] = &jobs.Items[i]
				}
				k.mu.Unlock()
			}
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "berth.ml/job"})
			if err == nil {
				for i := range pods.Items {
					k.maybeRun(ctx, t, c, ns, &pods.Items[i])
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return k
}

// maybeRun starts a pod's containers the first time the pod is seen on the node.
func (k *jobKubelet) maybeRun(ctx context.Context, t *testing.T, c *k8senv.Cluster, ns string, p *corev1.Pod) {
	k.mu.Lock()
	_, seen := k.pods[p.Name]
	if seen || p.Spec.NodeName == "" {
		k.mu.Unlock()
		return
	}
	k.pods[p.Name] = "running"
	k.mu.Unlock()
	root := filepath.Join(t.TempDir(), p.Name)
	k.ended.Add(1)
	go func() {
		defer k.ended.Done()
		var outcome []string
		for _, ctr := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			cmd := exec.CommandContext(ctx, berthBin, podPaths(ctr.Args, root)...)
			// The container's processes go with it, as a pod's do.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 2 * time.Second
			cmd.Env = append(os.Environ(), "BERTH_PYTHON=/usr/bin/python3")
			for _, e := range ctr.Env {
				v := e.Value
				if ref := e.ValueFrom; ref != nil && ref.FieldRef != nil {
					// The Job controller gives each pod its index through the downward API.
					path := ref.FieldRef.FieldPath
					if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
						v = p.Annotations[strings.TrimSuffix(key, "']")]
					} else if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
						v = p.Labels[strings.TrimSuffix(key, "']")]
					}
				}
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
					sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, ref.SecretKeyRef.Name, metav1.GetOptions{})
					if err != nil {
						outcome = append(outcome, ctr.Name+": secret: "+err.Error())
						break
					}
					v = string(sec.Data[ref.SecretKeyRef.Key])
				}
				cmd.Env = append(cmd.Env, e.Name+"="+podPaths([]string{v}, root)[0])
			}
			cmd.Dir = podPaths([]string{ctr.WorkingDir}, root)[0]
			os.MkdirAll(cmd.Dir, 0o755)
			out, err := cmd.CombinedOutput()
			if os.Getenv("KB_DEBUG") != "" {
				os.WriteFile(filepath.Join(os.Getenv("KB_DEBUG"), p.Name+"-"+ctr.Name), []byte(strings.Join(cmd.Args, " ")+"\n"+strings.Join(cmd.Env, "\n")+"\n----\n"+string(out)), 0o644)
			}
			if err != nil {
				outcome = append(outcome, ctr.Name+": "+err.Error()+"\n"+string(out))
				break
			}
			outcome = append(outcome, ctr.Name+": exit 0")
		}
		k.mu.Lock()
		k.pods[p.Name] = strings.Join(outcome, "\n")
		k.mu.Unlock()
	}()
}

// podPaths puts the pod's folder in place of /var/azureml-app.
func podPaths(args []string, root string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "/var/azureml-app", root)
	}
	return out
}

// TestKubernetesBatchJob runs the same batch deployment on a local amlcompute and on
// an attached Kubernetes compute: there it is an Indexed Job of 2 pods (completions =
// parallelism = instance_count) whose batch-workers, run by the stand-in kubelet on
// loopback, pull the mini-batches from the server; the job completes with the same
// output file as the local run, Azure's log layout holds the pods' workers, and the
// Job is deleted when the job ends.
func TestKubernetesBatchJob(t *testing.T) {
	c := k8senv.Start(t, k8senv.WithPods())
	ns := c.Namespace(t, "batch")
	kubelet := startJobKubelet(t, c, ns)
	// Each run() naps, so that the mini-batches spread over both pods' workers.
	napping := strings.Replace(echoScript, "def run(mini_batch):\n", "def run(mini_batch):\n    __import__('time').sleep(0.3)\n", 1)
	dir := batchProject(t, "rows", napping, "  mini_batch_size: 10\n  max_concurrency_per_instance: 2\n", 100)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	deployBatch(t, s, dir, "rows")
	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", ns)
	s.ok("batch-endpoint", "create", "-n", "rows-k8s", "-f", filepath.Join(dir, "endpoint.yml"), "--set", "name=rows-k8s")
	// summary_only output stays in the pods: refused with the fix.
	if r := s.berth("batch-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--set", "endpoint_name=rows-k8s",
		"--set", "compute=azureml:k8s", "--set", "settings.output_action=summary_only"); r.code == 0 || !strings.Contains(r.stderr, "append_row") {
		t.Fatalf("summary_only on Kubernetes: exit %d\n%s", r.code, r.stderr)
	}
	s.ok("batch-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--set", "endpoint_name=rows-k8s",
		"--set", "compute=azureml:k8s", "--set", "resources.instance_count=2", "--set-default")

	local := invokeBatch(t, s, "rows", filepath.Join(dir, "data"))
	remote := invokeBatch(t, s, "rows-k8s", filepath.Join(dir, "data"))
	for _, job := range []string{local, remote} {
		st := ""
		for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if st = strings.TrimSpace(s.ok("job", "show", "-n", job, "--query", "status", "-o", "tsv")); st == "Completed" || st == "Failed" {
				break
			}
		}
		if st != "Completed" {
			kubelet.mu.Lock()
			pods := maps(kubelet.pods)
			kubelet.mu.Unlock()
			t.Fatalf("job %s (local %s): %s; driver log:\n%s\npods: %v", job, local, st, jobFile(t, s, job, "azureml-logs/70_driver_log.txt"), pods)
		}
	}
	if got, want := downloadScore(t, s, remote, "predictions.csv"), downloadScore(t, s, local, "predictions.csv"); !slices.Equal(got, want) || len(got) != 100 {
		t.Fatalf("the Kubernetes job's output (%d lines) differs from the local one's (%d lines): %q…", len(got), len(want), got[:min(3, len(got))])
	}

	kubelet.mu.Lock()
	kj := kubelet.jobs["berth-"+remote]
	pods := maps(kubelet.pods)
	kubelet.mu.Unlock()
	if kj == nil {
		t.Fatalf("no Indexed Job berth-%s was seen", remote)
	}
	spec := kj.Spec.Template.Spec
	if kj.Spec.CompletionMode == nil || *kj.Spec.CompletionMode != batchv1.IndexedCompletion || *kj.Spec.Completions != 2 || *kj.Spec.Parallelism != 2 ||
		kj.Labels["berth.ml/endpoint"] != "rows-k8s" || spec.InitContainers[0].Name != "storage-initializer" ||
		spec.Containers[0].Name != "batch-worker" || !strings.Contains(strings.Join(spec.Containers[0].Args, " "), "--processes 2") {
		t.Fatalf("the Job does not map the deployment: %+v", kj.Spec)
	}
	if len(pods) != 2 {
		t.Fatalf("pods run: %v", pods)
	}
	for name, outcome := range pods {
		if outcome != "storage-initializer: exit 0\nbatch-worker: exit 0" {
			t.Errorf("pod %s: %s", name, outcome)
		}
	}
	for _, rel := range []string{"logs/user/stdout/node1/process001.stdout.txt", "logs/sys/node/node0/process000.txt"} {
		jobFile(t, s, remote, rel)
	}
	if master := jobFile(t, s, remote, "logs/sys/master_role.txt"); !strings.Contains(master, "node1/process") || !strings.Contains(master, "node0/process") {
		t.Errorf("mini-batches did not go to both pods:\n%s", master)
	}
	eventually(t, 30*time.Second, "the Indexed Job to be deleted", func() bool {
		_, err := c.Client.BatchV1().Jobs(ns).Get(t.Context(), "berth-"+remote, metav1.GetOptions{})
		return err != nil
	})
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestKubernetesBatchJobPodFailure: a job whose pod cannot pull its image fails with
// ImagePullLoopBackOff naming the image, rather than waiting for workers that never
// come, and its Indexed Job is deleted.
func TestKubernetesBatchJobPodFailure(t *testing.T) {
	c := k8senv.Start(t) // the API server only: the test plays the pod
	ns := c.Namespace(t, "batch")
	dir := batchProject(t, "rows", echoScript, "  mini_batch_size: 10\n", 20)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("compute", "attach", "-n", "k8s", "--type", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", ns)
	s.ok("batch-endpoint", "create", "-n", "rows", "-f", filepath.Join(dir, "endpoint.yml"))
	s.ok("batch-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--set", "compute=azureml:k8s", "--set-default")
	job := invokeBatch(t, s, "rows", filepath.Join(dir, "data"))
	var kj *batchv1.Job
	eventually(t, 30*time.Second, "the Indexed Job to be applied", func() bool {
		j, err := c.Client.BatchV1().Jobs(ns).Get(t.Context(), "berth-"+job, metav1.GetOptions{})
		kj = j
		return err == nil
	})
	tpl := kj.Spec.Template
	pod, err := c.Client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: kj.Name + "-0-abcde", Labels: tpl.Labels}, Spec: tpl.Spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
		Name: "storage-initializer", Image: "berth:latest",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "berth:latest"`}}}}}
	if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, s, job, 60*time.Second); st != "Failed" {
		t.Fatalf("job %s, want Failed", st)
	}
	shown := s.ok("job", "show", "-n", job, "-o", "json")
	if !strings.Contains(shown, "ImagePullLoopBackOff") || !strings.Contains(shown, "berth:latest") {
		t.Errorf("the job's error does not say the pod could not pull its image:\n%s", shown)
	}
	eventually(t, 30*time.Second, "the Indexed Job to be deleted", func() bool {
		_, err := c.Client.BatchV1().Jobs(ns).Get(t.Context(), "berth-"+job, metav1.GetOptions{})
		return err != nil
	})
}
