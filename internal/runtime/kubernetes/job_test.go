package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/berthml/berth/internal/runtime"
)

func TestJobObjectName(t *testing.T) {
	for in, want := range map[string]string{
		"batchjob-3705107a-bef4-46ac-b465-63c433d2b51c": "berth-batchjob-3705107a-bef4-46ac-b465-63c433d2b51c",
		"rows1":                 "berth-rows1",
		"Rows1":                 "berth-rows1-" + hashOf("Rows1"),
		"My_Job.v2":             "berth-my-job-v2-" + hashOf("My_Job.v2"),
		strings.Repeat("a", 80): "berth-" + strings.Repeat("a", 37) + "-" + hashOf(strings.Repeat("a", 80)),
	} {
		if got := JobObjectName(in); got != want {
			t.Errorf("JobObjectName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJobObjects maps a batch job to an Indexed Job whose pods fetch the model and
// code, then run batch-worker with the job's settings; bad resources are refused.
func TestJobObjects(t *testing.T) {
	j := runtime.ClusterJob{Job: "J1", Endpoint: "rows", Deployment: "dep", Nodes: 3, Processes: 2,
		Requests: map[string]string{"cpu": "100m", "memory": "1Gi"}, Limits: map[string]string{"cpu": "1", "memory": "1Gi"}, Env: map[string]string{"A": "b"},
		EntryScript: "score.py", ModelBase: "model", ModelArtifact: "sha256:m", CodeArtifact: "sha256:c",
		TimeoutSeconds: 30, ServerURL: "http://berth:5000", Token: "tok"}
	j.Job = "j1"
	set, err := JobObjects("ml", "img:1", j)
	if err != nil {
		t.Fatal(err)
	}
	kj := set.Job.Spec
	if *kj.CompletionMode != batchv1.IndexedCompletion || *kj.Completions != 3 || *kj.Parallelism != 3 || set.Job.Name != "berth-j1" {
		t.Fatalf("job spec %+v", kj)
	}
	pod := kj.Template.Spec
	args := strings.Join(pod.Containers[0].Args, " ")
	for _, want := range []string{"batch-worker", "--server http://berth:5000", "--job j1", "--processes 2", "--entry_script /var/azureml-app/code/score.py", "--timeout 30"} {
		if !strings.Contains(args, want) {
			t.Errorf("batch-worker args %q lack %q", args, want)
		}
	}
	if pod.RestartPolicy != "OnFailure" || pod.InitContainers[0].Name != ContainerStorageInitializer || pod.Containers[0].Image != "img:1" ||
		kj.Template.Labels[LabelJob] != "berth-j1" || set.Secret.StringData[TokenKey] != "tok" {
		t.Errorf("pod template %+v", pod)
	}
	j.Requests = map[string]string{"cpu": "4", "memory": "1Gi"}
	if _, err := JobObjects("ml", "", j); err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("requests above limits: %v", err)
	}
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
