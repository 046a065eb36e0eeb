package kubernetes

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/instance"
)

// example is the online core's example deployment on a Kubernetes compute.
func example() DeploymentSpec {
	return DeploymentSpec{
		Endpoint:      "my-endpoint",
		Deployment:    "blue",
		Namespace:     "berth",
		Image:         "registry.local/berth:1.0",
		Replicas:      2,
		Liveness:      Probe{InitialDelay: 10, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 30},
		Readiness:     Probe{InitialDelay: 5, Period: 3, Timeout: 4, SuccessThreshold: 2, FailureThreshold: 6},
		Resources:     &Resources{Requests: map[string]string{"cpu": "500m", "memory": "1Gi"}, Limits: map[string]string{"cpu": "1", "memory": "2Gi"}},
		Env:           map[string]string{"GREETING": "hi", "AZUREML_MODEL_DIR": "/ignored"},
		WorkerCount:   3,
		EntryScript:   "onlinescoring/score.py",
		ModelArtifact: "sha256:aaa",
		CodeArtifact:  "sha256:ccc",
		ServerURL:     "https://berth.example:8443",
		Token:         "secret-token",
	}
}

func TestObjectsMetadataAndService(t *testing.T) {
	set, err := Objects(example())
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"berth.ml/endpoint": "my-endpoint", "berth.ml/deployment": "blue", "app.kubernetes.io/managed-by": "berth"}
	d := set.Deployment
	if d.Name != "my-endpoint-blue" || d.Namespace != "berth" || d.Kind != "Deployment" || d.APIVersion != "apps/v1" {
		t.Errorf("deployment meta = %s/%s %s %s", d.Namespace, d.Name, d.APIVersion, d.Kind)
	}
	for what, got := range map[string]map[string]string{
		"deployment labels": d.Labels, "selector": d.Spec.Selector.MatchLabels, "pod labels": d.Spec.Template.Labels,
		"service labels": set.Service.Labels, "service selector": set.Service.Spec.Selector, "secret labels": set.Secret.Labels,
	} {
		if diff := cmp.Diff(labels, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *d.Spec.Replicas)
	}
	svc := set.Service
	wantPorts := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(5001)}}
	if svc.Name != "my-endpoint-blue" || svc.Namespace != "berth" || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("service = %s/%s %s", svc.Namespace, svc.Name, svc.Spec.Type)
	}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("service ports (-want +got):\n%s", diff)
	}
	sec := set.Secret
	if sec.Name != "my-endpoint-blue-berth-token" || sec.Namespace != "berth" || sec.StringData["token"] != "secret-token" {
		t.Errorf("secret = %s/%s %v", sec.Namespace, sec.Name, sec.StringData)
	}
}

func TestObjectsContainers(t *testing.T) {
	set, err := Objects(example())
	if err != nil {
		t.Fatal(err)
	}
	pod := set.Deployment.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("containers: %d init, %d main", len(pod.InitContainers), len(pod.Containers))
	}
	mounts := []corev1.VolumeMount{{Name: "azureml-app", MountPath: "/var/azureml-app"}}
	wantVolumes := []corev1.Volume{{Name: "azureml-app", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if diff := cmp.Diff(wantVolumes, pod.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	init := pod.InitContainers[0]
	wantInit := corev1.Container{
		Name: "storage-initializer", Image: "registry.local/berth:1.0", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"berth"},
		Args: []string{"storage-initializer", "--server", "https://berth.example:8443", "--endpoint", "my-endpoint", "--deployment", "blue",
			"--target-dir", "/var/azureml-app", "--model-artifact", "sha256:aaa", "--model-dir", "/var/azureml-app/azureml-models",
			"--code-artifact", "sha256:ccc", "--code-dir", "/var/azureml-app/code"},
		Env: []corev1.EnvVar{{Name: "BERTH_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "my-endpoint-blue-berth-token"}, Key: "token"}}}},
		Resources:    pod.Containers[0].Resources,
		VolumeMounts: mounts,
	}
	if diff := cmp.Diff(wantInit, init); diff != "" {
		t.Errorf("storage-initializer (-want +got):\n%s", diff)
	}
	main := pod.Containers[0]
	if main.Name != "inference-server" || main.Image != "registry.local/berth:1.0" || main.ImagePullPolicy != corev1.PullIfNotPresent || main.WorkingDir != "/var/azureml-app/code" {
		t.Errorf("inference-server = %s %s in %s", main.Name, main.Image, main.WorkingDir)
	}
	wantArgs := []string{"inference-server", "--entry_script", "/var/azureml-app/code/onlinescoring/score.py", "--model_dir", "/var/azureml-app/azureml-models", "--port", "5001"}
	if diff := cmp.Diff(wantArgs, main.Args); diff != "" {
		t.Errorf("inference-server args (-want +got):\n%s", diff)
	}
	wantEnv := []corev1.EnvVar{
		{Name: "AML_APP_ROOT", Value: "/var/azureml-app/code"},
		{Name: "AZUREML_ENTRY_SCRIPT", Value: "/var/azureml-app/code/onlinescoring/score.py"},
		{Name: "AZUREML_MODEL_DIR", Value: "/var/azureml-app/azureml-models"},
		{Name: "GREETING", Value: "hi"},
		{Name: "WORKER_COUNT", Value: "3"},
	}
	if diff := cmp.Diff(wantEnv, main.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	wantPorts := []corev1.ContainerPort{{Name: "http", ContainerPort: 5001, Protocol: corev1.ProtocolTCP}}
	if diff := cmp.Diff(wantPorts, main.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(mounts, main.VolumeMounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

// TestInferenceServerArgsParse checks the pod's command line against the real
// `berth inference-server` command, so a renamed flag fails here.
func TestInferenceServerArgsParse(t *testing.T) {
	args := InferenceServerArgs(example())
	want := []string{"--" + instance.FlagEntryScript, "--" + instance.FlagModelDir, "--" + instance.FlagPort}
	for i, f := range want {
		if args[1+2*i] != f {
			t.Errorf("arg %d = %q, want %q", 1+2*i, args[1+2*i], f)
		}
	}
	cmd := inference.NewCommand()
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("berth inference-server refuses %v: %v", args, err)
	}
	if got := cmd.Flags().Lookup(instance.FlagPort).Value.String(); got != "5001" {
		t.Errorf("--port parsed as %s", got)
	}
}

func TestProbeMapping(t *testing.T) {
	tests := []struct {
		name string
		in   Probe
	}{
		{"azure defaults", Probe{InitialDelay: 10, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 30}},
		{"every field distinct", Probe{InitialDelay: 7, Period: 3, Timeout: 5, SuccessThreshold: 2, FailureThreshold: 9}},
		{"zero initial delay", Probe{InitialDelay: 0, Period: 1, Timeout: 1, SuccessThreshold: 1, FailureThreshold: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := &corev1.Probe{
				ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(5001), Scheme: corev1.URISchemeHTTP}},
				InitialDelaySeconds: int32(tt.in.InitialDelay), PeriodSeconds: int32(tt.in.Period), TimeoutSeconds: int32(tt.in.Timeout),
				SuccessThreshold: int32(tt.in.SuccessThreshold), FailureThreshold: int32(tt.in.FailureThreshold),
			}
			s := example()
			s.Readiness = tt.in
			s.Liveness = tt.in
			s.Liveness.SuccessThreshold = 1
			set, err := Objects(s)
			if err != nil {
				t.Fatal(err)
			}
			c := set.Deployment.Spec.Template.Spec.Containers[0]
			if diff := cmp.Diff(want, c.ReadinessProbe); diff != "" {
				t.Errorf("readiness (-want +got):\n%s", diff)
			}
			want.SuccessThreshold = 1
			if diff := cmp.Diff(want, c.LivenessProbe); diff != "" {
				t.Errorf("liveness (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResourcesMapping(t *testing.T) {
	q := resource.MustParse
	gpuType := &InstanceType{Name: "gpu", NodeSelector: map[string]string{"accelerator": "nvidia"},
		Resources: Resources{Requests: map[string]string{"cpu": "1", "memory": "4Gi"}, Limits: map[string]string{"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}}}
	tests := []struct {
		name         string
		res          *Resources
		it           *InstanceType
		want         corev1.ResourceRequirements
		nodeSelector map[string]string
	}{
		{name: "none"},
		{name: "deployment resources",
			res:  &Resources{Requests: map[string]string{"cpu": "500m", "memory": "1Gi"}, Limits: map[string]string{"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("500m"), "memory": q("1Gi")}, Limits: corev1.ResourceList{"cpu": q("1"), "memory": q("2Gi"), "nvidia.com/gpu": q("1")}}},
		{name: "instance type", it: gpuType, nodeSelector: map[string]string{"accelerator": "nvidia"},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("1"), "memory": q("4Gi")}, Limits: corev1.ResourceList{"cpu": q("4"), "memory": q("16Gi"), "nvidia.com/gpu": q("1")}}},
		{name: "deployment resources within the instance type", it: gpuType, nodeSelector: map[string]string{"accelerator": "nvidia"},
			res:  &Resources{Requests: map[string]string{"cpu": "2", "memory": "8Gi"}},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("2"), "memory": q("8Gi")}}},
		{name: "defaultinstancetype", it: &InstanceType{Name: "defaultinstancetype",
			Resources: Resources{Requests: map[string]string{"cpu": "100m", "memory": "2Gi"}, Limits: map[string]string{"cpu": "2", "memory": "2Gi"}}},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("100m"), "memory": q("2Gi")}, Limits: corev1.ResourceList{"cpu": q("2"), "memory": q("2Gi")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := example()
			s.Resources, s.InstanceType = tt.res, tt.it
			set, err := Objects(s)
			if err != nil {
				t.Fatal(err)
			}
			pod := set.Deployment.Spec.Template.Spec
			if diff := cmp.Diff(tt.want, pod.Containers[0].Resources); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, pod.InitContainers[0].Resources); diff != "" {
				t.Errorf("storage-initializer resources (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.nodeSelector, pod.NodeSelector); diff != "" {
				t.Errorf("nodeSelector (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		name                     string
		script, modelPath        string
		wantScript, wantModelDir string
	}{
		{"inline model", "score.py", "", "/var/azureml-app/code/score.py", "/var/azureml-app/azureml-models"},
		{"registered model", "src/score.py", "sklearn-model/3", "/var/azureml-app/code/src/score.py", "/var/azureml-app/azureml-models/sklearn-model/3"},
		{"no-code mlflow", instance.BuiltinMLflow, "m/1", instance.BuiltinMLflow, "/var/azureml-app/azureml-models/m/1"},
		{"absolute script", "/opt/score.py", "", "/opt/score.py", "/var/azureml-app/azureml-models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DeploymentSpec{EntryScript: tt.script, ModelPath: tt.modelPath}
			if got := EntryScript(s); got != tt.wantScript {
				t.Errorf("EntryScript = %q, want %q", got, tt.wantScript)
			}
			if got := ModelDir(s); got != tt.wantModelDir {
				t.Errorf("ModelDir = %q, want %q", got, tt.wantModelDir)
			}
		})
	}
}

func TestDefaultsAndNames(t *testing.T) {
	s := example()
	s.Endpoint, s.Deployment, s.Image, s.WorkerCount = "My-Endpoint", "Blue", "", 0
	s.ModelArtifact, s.CodeArtifact = "", ""
	set, err := Objects(s)
	if err != nil {
		t.Fatal(err)
	}
	pod := set.Deployment.Spec.Template.Spec
	if set.Deployment.Name != "my-endpoint-blue" || set.Service.Name != "my-endpoint-blue" {
		t.Errorf("names = %s, %s; want lower case", set.Deployment.Name, set.Service.Name)
	}
	if set.Deployment.Labels[LabelEndpoint] != "My-Endpoint" {
		t.Errorf("label keeps Azure's spelling, got %q", set.Deployment.Labels[LabelEndpoint])
	}
	if pod.Containers[0].Image != DefaultImage || pod.InitContainers[0].Image != DefaultImage {
		t.Errorf("images = %s, %s; want %s", pod.Containers[0].Image, pod.InitContainers[0].Image, DefaultImage)
	}
	wantInit := []string{"storage-initializer", "--server", "https://berth.example:8443", "--endpoint", "My-Endpoint", "--deployment", "Blue", "--target-dir", "/var/azureml-app"}
	if diff := cmp.Diff(wantInit, pod.InitContainers[0].Args); diff != "" {
		t.Errorf("init args without artifacts (-want +got):\n%s", diff)
	}
	for _, e := range pod.Containers[0].Env {
		if e.Name == "WORKER_COUNT" && e.Value != "1" {
			t.Errorf("WORKER_COUNT = %s, want 1", e.Value)
		}
	}
}
