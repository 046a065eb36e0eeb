package kubernetes

import (
	"path"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels and values Berth puts on every object it applies.
const (
	LabelEndpoint   = "berth.ml/endpoint"
	LabelDeployment = "berth.ml/deployment"
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "berth"
)

// Names and ports of the pod Berth runs for an instance.
const (
	// ContainerStorageInitializer is the init container that fetches model and code.
	ContainerStorageInitializer = "storage-initializer"
	// ContainerInferenceServer is the container that serves score.py.
	ContainerInferenceServer = "inference-server"
	// InferencePort is the port `berth inference-server` listens on, as azmlinfsrv's.
	InferencePort = 5001
	// ServicePort is the port of the deployment's Service.
	ServicePort = 80
	// DefaultImage is the pod image when the compute names none.
	DefaultImage = "berth:latest"
	// AppRoot is where the storage initializer lays out model and code, as Azure's
	// /var/azureml-app; it is an emptyDir volume shared by both containers.
	AppRoot = "/var/azureml-app"
	// ModelRoot is the folder under which the model lands (AZUREML_MODEL_DIR is
	// ModelRoot joined with DeploymentSpec.ModelPath).
	ModelRoot = AppRoot + "/azureml-models"
	// CodeDir is the code folder: the inference server's working directory.
	CodeDir = AppRoot + "/code"
	// TokenEnv is the variable the storage initializer reads the Berth token from (the
	// same variable the CLI reads).
	TokenEnv = "BERTH_TOKEN"
	// TokenKey is the key of the token in the deployment's Secret.
	TokenKey = "token"

	appVolume = "azureml-app"
)

// Probe is liveness_probe or readiness_probe in seconds, already defaulted.
type Probe struct {
	InitialDelay     int
	Period           int
	Timeout          int
	SuccessThreshold int
	FailureThreshold int
}

// Resources are Kubernetes quantities by resource name (cpu, memory, nvidia.com/gpu),
// as written in the YAML ("500m", "1Gi").
type Resources struct {
	Requests map[string]string
	Limits   map[string]string
}

// InstanceType is a Kubernetes compute's instance type: the resources of its pods and
// the nodes they may run on.
type InstanceType struct {
	Name         string
	NodeSelector map[string]string
	Resources    Resources
}

// DeploymentSpec is everything Objects needs for one online deployment.
type DeploymentSpec struct {
	Endpoint   string
	Deployment string
	Namespace  string
	Image      string // "" = DefaultImage
	Replicas   int    // instance_count
	Liveness   Probe
	Readiness  Probe
	// Resources is the deployment's resources block; nil takes the instance type's.
	Resources    *Resources
	InstanceType *InstanceType
	// Env holds the deployment's environment_variables (secrets resolved). Azure's
	// variables (AZUREML_MODEL_DIR, AZUREML_ENTRY_SCRIPT, AML_APP_ROOT, WORKER_COUNT)
	// are set by Objects and win over these.
	Env         map[string]string
	WorkerCount int // WORKER_COUNT; < 1 is 1
	// EntryScript is the scoring script relative to the code folder (score.py), or an
	// absolute path or builtin name (instance.BuiltinMLflow) used as it is.
	EntryScript string
	// ModelPath is where the model sits under ModelRoot: "<name>/<version>" for a
	// registered model, "" for an inline one.
	ModelPath string
	// ModelArtifact and CodeArtifact are the digests of the stored artifacts the
	// storage initializer fetches ("" = none).
	ModelArtifact string
	CodeArtifact  string
	// ModelBase is the name of the model's folder (or single file) in its artifact: a
	// folder keeps it beneath the model dir, as Azure mounts it.
	ModelBase string
	// ServerURL is the Berth server the storage initializer fetches from; Token is what
	// it authenticates with, kept in the Secret Objects returns.
	ServerURL string
	Token     string
}

// Set is the objects Berth applies for one online deployment, in the order they are
// applied.
type Set struct {
	Secret     *corev1.Secret
	Deployment *appsv1.Deployment
	Service    *corev1.Service
}

// ObjectName is the name of a deployment's Deployment and Service: Kubernetes names
// are lower case, Azure's may not be.
func ObjectName(endpoint, deployment string) string {
	return strings.ToLower(endpoint + "-" + deployment)
}

// SecretName is the name of the Secret holding the storage initializer's token.
func SecretName(endpoint, deployment string) string {
	return ObjectName(endpoint, deployment) + "-berth-token"
}

// Labels are the labels of a deployment's objects; the Service selects its pods by them.
func Labels(endpoint, deployment string) map[string]string {
	return map[string]string{
		LabelEndpoint:   endpoint,
		LabelDeployment: deployment,
		LabelManagedBy:  ManagedBy,
	}
}

// Objects validates s (see Validate) and builds its Secret, Deployment and Service.
func Objects(s DeploymentSpec) (*Set, error) {
	res, err := Validate(s)
	if err != nil {
		return nil, err
	}
	meta := metav1.ObjectMeta{
		Name:      ObjectName(s.Endpoint, s.Deployment),
		Namespace: s.Namespace,
		Labels:    Labels(s.Endpoint, s.Deployment),
	}
	secretMeta := *meta.DeepCopy()
	secretMeta.Name = SecretName(s.Endpoint, s.Deployment)
	replicas := int32(max(s.Replicas, 0))
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: *meta.DeepCopy(),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: Labels(s.Endpoint, s.Deployment)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(s.Endpoint, s.Deployment)},
				Spec:       podSpec(s, res),
			},
		},
	}
	return &Set{
		Secret: &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: secretMeta,
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{TokenKey: s.Token},
		},
		Deployment: dep,
		Service:    service(s, meta),
	}, nil
}

func service(s DeploymentSpec, meta metav1.ObjectMeta) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: Labels(s.Endpoint, s.Deployment),
			Ports: []corev1.ServicePort{{
				Name:       "http",
				Protocol:   corev1.ProtocolTCP,
				Port:       ServicePort,
				TargetPort: intstr.FromInt32(InferencePort),
			}},
		},
	}
}

func podSpec(s DeploymentSpec, res corev1.ResourceRequirements) corev1.PodSpec {
	image := s.Image
	if image == "" {
		image = DefaultImage
	}
	mount := []corev1.VolumeMount{{Name: appVolume, MountPath: AppRoot}}
	var nodeSelector map[string]string
	if s.InstanceType != nil && len(s.InstanceType.NodeSelector) > 0 {
		nodeSelector = s.InstanceType.NodeSelector
	}
	return corev1.PodSpec{
		Volumes: []corev1.Volume{{
			Name:         appVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		}},
		InitContainers: []corev1.Container{{
			Name:            ContainerStorageInitializer,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent, // an image loaded into the cluster (kind, minikube) is used
			Command:         []string{"berth"},
			Args:            StorageInitializerArgs(s),
			Env:             []corev1.EnvVar{tokenEnv(s)},
			// The same resources as the server: a namespace quota may require them, and
			// an init container that asks no more than the main one costs no extra room.
			Resources:    res,
			VolumeMounts: mount,
		}},
		Containers: []corev1.Container{{
			Name:            ContainerInferenceServer,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"berth"},
			Args:            InferenceServerArgs(s),
			WorkingDir:      CodeDir,
			Env:             containerEnv(s),
			Ports: []corev1.ContainerPort{{
				Name: "http", ContainerPort: InferencePort, Protocol: corev1.ProtocolTCP,
			}},
			LivenessProbe:  probe(s.Liveness),
			ReadinessProbe: probe(s.Readiness),
			Resources:      res,
			VolumeMounts:   mount,
		}},
		NodeSelector: nodeSelector,
	}
}

// StorageInitializerArgs are the arguments of `berth` in the storage-initializer
// container: fetch the deployment's model and code from the Berth server into AppRoot.
func StorageInitializerArgs(s DeploymentSpec) []string {
	args := []string{"storage-initializer",
		"--server", s.ServerURL,
		"--endpoint", s.Endpoint,
		"--deployment", s.Deployment,
		"--target-dir", AppRoot,
	}
	if s.ModelArtifact != "" {
		args = append(args, "--model-artifact", s.ModelArtifact, "--model-dir", ModelDir(s))
		if s.ModelBase != "" {
			args = append(args, "--model-base", s.ModelBase)
		}
	}
	if s.CodeArtifact != "" {
		args = append(args, "--code-artifact", s.CodeArtifact, "--code-dir", CodeDir)
	}
	return args
}

// InferenceServerArgs are the arguments of `berth` in the inference-server container.
func InferenceServerArgs(s DeploymentSpec) []string {
	return []string{"inference-server",
		"--entry_script", EntryScript(s),
		"--model_dir", ModelDir(s),
		"--port", strconv.Itoa(InferencePort),
	}
}

// ModelDir is AZUREML_MODEL_DIR inside the pod.
func ModelDir(s DeploymentSpec) string {
	return path.Join(ModelRoot, s.ModelPath)
}

// EntryScript is AZUREML_ENTRY_SCRIPT inside the pod.
func EntryScript(s DeploymentSpec) string {
	if s.EntryScript == "" || path.IsAbs(s.EntryScript) || strings.Contains(s.EntryScript, ":") {
		return s.EntryScript
	}
	return path.Join(CodeDir, s.EntryScript)
}

func tokenEnv(s DeploymentSpec) corev1.EnvVar {
	return corev1.EnvVar{Name: TokenEnv, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: SecretName(s.Endpoint, s.Deployment)},
			Key:                  TokenKey,
		},
	}}
}

// containerEnv is the deployment's variables and Azure's, sorted by name so the same
// spec always gives the same pod template (and no needless rollout).
func containerEnv(s DeploymentSpec) []corev1.EnvVar {
	vars := make(map[string]string, len(s.Env)+4)
	for k, v := range s.Env {
		vars[k] = v
	}
	vars["AZUREML_MODEL_DIR"] = ModelDir(s)
	vars["AZUREML_ENTRY_SCRIPT"] = EntryScript(s)
	vars["AML_APP_ROOT"] = CodeDir
	vars["WORKER_COUNT"] = strconv.Itoa(max(s.WorkerCount, 1))
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	env := make([]corev1.EnvVar, 0, len(names))
	for _, k := range names {
		env = append(env, corev1.EnvVar{Name: k, Value: vars[k]})
	}
	return env
}

// probe maps liveness_probe / readiness_probe field by field to an HTTP GET of / on the
// inference port.
func probe(p Probe) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   "/",
			Port:   intstr.FromInt32(InferencePort),
			Scheme: corev1.URISchemeHTTP,
		}},
		InitialDelaySeconds: int32(p.InitialDelay),
		PeriodSeconds:       int32(p.Period),
		TimeoutSeconds:      int32(p.Timeout),
		SuccessThreshold:    int32(p.SuccessThreshold),
		FailureThreshold:    int32(p.FailureThreshold),
	}
}
