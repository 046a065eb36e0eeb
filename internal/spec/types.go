// Package spec owns the Azure Machine Learning YAML schema of online and batch
// endpoints, their deployments and computes: strict decoding, --set overrides, defaults
// and validation that reports every problem with its field path.
package spec

import (
	"encoding/json"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/autoscale"
)

// Endpoint is an online endpoint (managedOnlineEndpoint schema).
type Endpoint struct {
	Schema              string            `json:"$schema,omitempty" yaml:"$schema"`
	Name                string            `json:"name" yaml:"name"`
	Description         string            `json:"description,omitempty" yaml:"description"`
	Tags                map[string]string `json:"tags,omitempty" yaml:"tags"`
	AuthMode            string            `json:"auth_mode,omitempty" yaml:"auth_mode"`
	Compute             string            `json:"compute,omitempty" yaml:"compute"`
	Identity            *Identity         `json:"identity,omitempty" yaml:"identity"`
	Traffic             map[string]int    `json:"traffic,omitempty" yaml:"traffic"`
	MirrorTraffic       map[string]int    `json:"mirror_traffic,omitempty" yaml:"mirror_traffic"`
	PublicNetworkAccess string            `json:"public_network_access,omitempty" yaml:"public_network_access"`
	Properties          map[string]string `json:"properties,omitempty" yaml:"properties"`
	Kind                string            `json:"kind,omitempty" yaml:"kind"`
}

// Identity is an endpoint's managed identity.
type Identity struct {
	Type                   string   `json:"type,omitempty" yaml:"type"`
	UserAssignedIdentities []string `json:"user_assigned_identities,omitempty" yaml:"user_assigned_identities"`
}

// Deployment is an online deployment (managedOnlineDeployment / kubernetesOnlineDeployment schema).
type Deployment struct {
	Schema                    string             `json:"$schema,omitempty" yaml:"$schema"`
	Name                      string             `json:"name" yaml:"name"`
	EndpointName              string             `json:"endpoint_name" yaml:"endpoint_name"`
	Description               string             `json:"description,omitempty" yaml:"description"`
	Tags                      map[string]string  `json:"tags,omitempty" yaml:"tags"`
	Properties                map[string]string  `json:"properties,omitempty" yaml:"properties"`
	Type                      string             `json:"type,omitempty" yaml:"type"`
	Model                     *Model             `json:"model,omitempty" yaml:"model"`
	ModelMountPath            string             `json:"model_mount_path,omitempty" yaml:"model_mount_path"`
	CodeConfiguration         *CodeConfiguration `json:"code_configuration,omitempty" yaml:"code_configuration"`
	Environment               *Environment       `json:"environment,omitempty" yaml:"environment"`
	EnvironmentVariables      map[string]string  `json:"environment_variables,omitempty" yaml:"environment_variables"`
	InstanceType              string             `json:"instance_type,omitempty" yaml:"instance_type"`
	InstanceCount             int                `json:"instance_count" yaml:"instance_count"`
	AppInsightsEnabled        bool               `json:"app_insights_enabled,omitempty" yaml:"app_insights_enabled"`
	ScaleSettings             *ScaleSettings     `json:"scale_settings,omitempty" yaml:"scale_settings"`
	RequestSettings           RequestSettings    `json:"request_settings" yaml:"request_settings"`
	LivenessProbe             Probe              `json:"liveness_probe" yaml:"liveness_probe"`
	ReadinessProbe            Probe              `json:"readiness_probe" yaml:"readiness_probe"`
	DataCollector             *DataCollector     `json:"data_collector,omitempty" yaml:"data_collector"`
	EgressPublicNetworkAccess string             `json:"egress_public_network_access,omitempty" yaml:"egress_public_network_access"`
	Resources                 *Resources         `json:"resources,omitempty" yaml:"resources"`
}

// Model is a deployment's model: a reference (azureml:name:version, azureml:name@latest)
// in Ref, or an inline model.
type Model struct {
	Ref         string `json:"-" yaml:"-"`
	Name        string `json:"name,omitempty" yaml:"name"`
	Version     string `json:"version,omitempty" yaml:"version"`
	Path        string `json:"path,omitempty" yaml:"path"`
	Type        string `json:"type,omitempty" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description"`
}

// IsRef reports whether the model is a reference to a registered model.
func (m *Model) IsRef() bool { return m != nil && m.Ref != "" }

// CodeConfiguration names the scoring script and its folder.
type CodeConfiguration struct {
	Code          string `json:"code" yaml:"code"`
	ScoringScript string `json:"scoring_script" yaml:"scoring_script"`
}

// Environment is a deployment's environment: a reference in Ref, or inline.
type Environment struct {
	Ref             string            `json:"-" yaml:"-"`
	Name            string            `json:"name,omitempty" yaml:"name"`
	Version         string            `json:"version,omitempty" yaml:"version"`
	Image           string            `json:"image,omitempty" yaml:"image"`
	CondaFile       any               `json:"conda_file,omitempty" yaml:"conda_file"`
	Build           *Build            `json:"build,omitempty" yaml:"build"`
	InferenceConfig any               `json:"inference_config,omitempty" yaml:"inference_config"`
	OSType          string            `json:"os_type,omitempty" yaml:"os_type"`
	Description     string            `json:"description,omitempty" yaml:"description"`
	Tags            map[string]string `json:"tags,omitempty" yaml:"tags"`
}

// Build is a Docker build context.
type Build struct {
	Path           string `json:"path,omitempty" yaml:"path"`
	DockerfilePath string `json:"dockerfile_path,omitempty" yaml:"dockerfile_path"`
}

// ScaleSettings is scale_settings.
type ScaleSettings struct {
	Type                        string `json:"type,omitempty" yaml:"type"`
	MinInstances                int    `json:"min_instances,omitempty" yaml:"min_instances"`
	MaxInstances                int    `json:"max_instances,omitempty" yaml:"max_instances"`
	TargetUtilizationPercentage int    `json:"target_utilization_percentage,omitempty" yaml:"target_utilization_percentage"`
	PollingInterval             int    `json:"polling_interval,omitempty" yaml:"polling_interval"`
}

// Autoscale returns the autoscaler's settings, defaults applied, when s asks for
// target_utilization scaling; ok is false for default (a fixed instance_count).
func (s *ScaleSettings) Autoscale() (st autoscale.Settings, ok bool) {
	if s == nil || s.Type != "target_utilization" {
		return st, false
	}
	return autoscale.Settings{MinInstances: s.MinInstances, MaxInstances: s.MaxInstances,
		TargetUtilizationPercentage: s.TargetUtilizationPercentage,
		PollingInterval:             time.Duration(s.PollingInterval) * time.Second}.Defaults(), true
}

// RequestSettings is request_settings. Zero means "not set" and takes the default.
// MaxQueueWaitMs is deprecated on Azure and stays 0 (no limit of its own: a request
// waits for a free slot until request_timeout_ms) unless the spec sets it.
type RequestSettings struct {
	RequestTimeoutMs                 int `json:"request_timeout_ms" yaml:"request_timeout_ms"`
	MaxConcurrentRequestsPerInstance int `json:"max_concurrent_requests_per_instance" yaml:"max_concurrent_requests_per_instance"`
	MaxQueueWaitMs                   int `json:"max_queue_wait_ms,omitempty" yaml:"max_queue_wait_ms"`
}

// Probe is liveness_probe or readiness_probe, in seconds. Zero means "not set".
type Probe struct {
	InitialDelay     int `json:"initial_delay" yaml:"initial_delay"`
	Period           int `json:"period" yaml:"period"`
	Timeout          int `json:"timeout" yaml:"timeout"`
	SuccessThreshold int `json:"success_threshold" yaml:"success_threshold"`
	FailureThreshold int `json:"failure_threshold" yaml:"failure_threshold"`
}

// Resources is the Kubernetes resources block.
type Resources struct {
	Requests map[string]string `json:"requests,omitempty" yaml:"requests"`
	Limits   map[string]string `json:"limits,omitempty" yaml:"limits"`
}

// UnmarshalYAML accepts a reference string or an inline model.
func (m *Model) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*m = Model{Ref: n.Value}
		return nil
	}
	type plain Model
	return n.Decode((*plain)(m))
}

// MarshalJSON writes a reference as a string.
func (m Model) MarshalJSON() ([]byte, error) {
	if m.Ref != "" {
		return json.Marshal(m.Ref)
	}
	type plain Model
	return json.Marshal(plain(m))
}

// UnmarshalJSON accepts a reference string or an inline model.
func (m *Model) UnmarshalJSON(b []byte) error {
	if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, `"`) {
		*m = Model{}
		return json.Unmarshal(b, &m.Ref)
	}
	type plain Model
	return json.Unmarshal(b, (*plain)(m))
}

// UnmarshalYAML accepts a reference string or an inline environment.
func (e *Environment) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*e = Environment{Ref: n.Value}
		return nil
	}
	type plain Environment
	return n.Decode((*plain)(e))
}

// MarshalJSON writes a reference as a string.
func (e Environment) MarshalJSON() ([]byte, error) {
	if e.Ref != "" {
		return json.Marshal(e.Ref)
	}
	type plain Environment
	return json.Marshal(plain(e))
}

// UnmarshalJSON accepts a reference string or an inline environment.
func (e *Environment) UnmarshalJSON(b []byte) error {
	if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, `"`) {
		*e = Environment{}
		return json.Unmarshal(b, &e.Ref)
	}
	type plain Environment
	return json.Unmarshal(b, (*plain)(e))
}

// CuratedEnvironment reports whether ref names one of Azure's curated environments
// (azureml://registries/azureml/environments/<name>/..., or azureml:AzureML-<name>:<v>),
// which exist only as Azure's images, and returns its name.
func CuratedEnvironment(ref string) (name string, ok bool) {
	if rest, found := strings.CutPrefix(ref, "azureml://registries/azureml/environments/"); found {
		name, _, _ = strings.Cut(rest, "/")
		return name, name != ""
	}
	if rest, found := strings.CutPrefix(ref, "azureml:AzureML-"); found {
		rest = strings.TrimSuffix(rest, "@latest")
		name, _, _ = strings.Cut(rest, ":")
		return "AzureML-" + name, name != ""
	}
	return "", false
}
