package spec

// Batch endpoints, batch deployments and computes (spec §3.1–3.2): the types. Their
// decoding, defaults and validation live in batchdecode.go.

// Defaults of a model batch deployment's settings (spec §3.2).
const (
	DefaultBatchInstanceCount  = 1
	DefaultMaxConcurrency      = 1
	DefaultMiniBatchSize       = 10
	DefaultOutputAction        = "append_row"
	DefaultOutputFileName      = "predictions.csv"
	DefaultBatchMaxRetries     = 3
	DefaultBatchTimeoutSeconds = 30
	DefaultErrorThreshold      = -1
	DefaultBatchLoggingLevel   = "info"
)

// Output actions of a batch deployment.
const (
	OutputAppendRow   = "append_row"
	OutputSummaryOnly = "summary_only"
)

// BatchEndpoint is a batch endpoint (batchEndpoint schema).
type BatchEndpoint struct {
	Schema      string            `json:"$schema,omitempty" yaml:"$schema"`
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description"`
	Tags        map[string]string `json:"tags,omitempty" yaml:"tags"`
	Properties  map[string]string `json:"properties,omitempty" yaml:"properties"`
	// AuthMode is aad_token, the only mode Azure has for batch endpoints (the default).
	AuthMode string        `json:"auth_mode,omitempty" yaml:"auth_mode"`
	Defaults BatchDefaults `json:"defaults" yaml:"defaults"`
}

// BatchDefaults is a batch endpoint's defaults block.
type BatchDefaults struct {
	// DeploymentName is the deployment an invocation without -d runs on.
	DeploymentName string `json:"deployment_name,omitempty" yaml:"deployment_name"`
}

// BatchDeployment is a batch deployment (modelBatchDeployment schema, or the legacy
// layout with the settings at the root, which decoding moves into Settings).
type BatchDeployment struct {
	Schema       string            `json:"$schema,omitempty" yaml:"$schema"`
	Name         string            `json:"name" yaml:"name"`
	EndpointName string            `json:"endpoint_name" yaml:"endpoint_name"`
	Description  string            `json:"description,omitempty" yaml:"description"`
	Tags         map[string]string `json:"tags,omitempty" yaml:"tags"`
	Properties   map[string]string `json:"properties,omitempty" yaml:"properties"`
	// Type is model or pipeline; empty in the legacy layout (a model deployment).
	Type              string             `json:"type,omitempty" yaml:"type"`
	Model             *Model             `json:"model,omitempty" yaml:"model"`
	CodeConfiguration *CodeConfiguration `json:"code_configuration,omitempty" yaml:"code_configuration"`
	Environment       *Environment       `json:"environment,omitempty" yaml:"environment"`
	// Compute is azureml:<name> of a compute created with `compute create`.
	Compute   string         `json:"compute,omitempty" yaml:"compute"`
	Resources BatchResources `json:"resources" yaml:"resources"`
	Settings  BatchSettings  `json:"settings" yaml:"settings"`
	Component any            `json:"component,omitempty" yaml:"component"` // pipeline deployments: not supported yet
	JobDef    any            `json:"job_definition,omitempty" yaml:"job_definition"`
}

// BatchResources is a batch deployment's resources block.
type BatchResources struct {
	InstanceCount int               `json:"instance_count" yaml:"instance_count"`
	Properties    map[string]string `json:"properties,omitempty" yaml:"properties"`
}

// BatchSettings is a model batch deployment's settings block; zero values take the
// defaults above, except ErrorThreshold, whose nil means -1 (0 is a real threshold).
type BatchSettings struct {
	MaxConcurrencyPerInstance int               `json:"max_concurrency_per_instance" yaml:"max_concurrency_per_instance"`
	MiniBatchSize             int               `json:"mini_batch_size" yaml:"mini_batch_size"`
	OutputAction              string            `json:"output_action" yaml:"output_action"`
	OutputFileName            string            `json:"output_file_name" yaml:"output_file_name"`
	RetrySettings             RetrySettings     `json:"retry_settings" yaml:"retry_settings"`
	ErrorThreshold            *int              `json:"error_threshold" yaml:"error_threshold"`
	LoggingLevel              string            `json:"logging_level" yaml:"logging_level"`
	EnvironmentVariables      map[string]string `json:"environment_variables,omitempty" yaml:"environment_variables"`
}

// RetrySettings is settings.retry_settings: retries of a failed or timed-out
// mini-batch, and the timeout of one run() call in seconds. MaxRetries nil means 3
// (0 is a real setting: no retries); Timeout 0 means 30.
type RetrySettings struct {
	MaxRetries *int `json:"max_retries" yaml:"max_retries"`
	Timeout    int  `json:"timeout" yaml:"timeout"`
}

// Compute is an AmlCompute cluster (amlCompute schema): on one machine, a named share
// of it whose MaxInstances caps the nodes (instance_count) of the jobs that use it.
type Compute struct {
	Schema                  string            `json:"$schema,omitempty" yaml:"$schema"`
	Name                    string            `json:"name" yaml:"name"`
	Type                    string            `json:"type" yaml:"type"` // amlcompute
	Size                    string            `json:"size,omitempty" yaml:"size"`
	MinInstances            int               `json:"min_instances" yaml:"min_instances"`
	MaxInstances            int               `json:"max_instances" yaml:"max_instances"`
	IdleTimeBeforeScaleDown int               `json:"idle_time_before_scale_down,omitempty" yaml:"idle_time_before_scale_down"`
	Tier                    string            `json:"tier,omitempty" yaml:"tier"`
	Location                string            `json:"location,omitempty" yaml:"location"`
	Description             string            `json:"description,omitempty" yaml:"description"`
	Tags                    map[string]string `json:"tags,omitempty" yaml:"tags"`
	// Namespace is where a Kubernetes compute's objects go (default "default").
	Namespace string `json:"namespace,omitempty" yaml:"namespace"`
	// Image is the container image of Berth's pods on a Kubernetes compute (default
	// DefaultBerthImage; the README says how to build it).
	Image string `json:"image,omitempty" yaml:"image"`
	// Kubeconfig is the content of a Kubernetes compute's kubeconfig, sent by `compute
	// attach --kubeconfig` and kept by the server; KubeconfigFile names that file in
	// messages. Neither is shown.
	Kubeconfig     string `json:"kubeconfig,omitempty" yaml:"kubeconfig"`
	KubeconfigFile string `json:"kubeconfig_file,omitempty" yaml:"kubeconfig_file"`
}

// KubernetesComputeType is the type of an attached Kubernetes cluster.
const KubernetesComputeType = "kubernetes"

// DefaultBerthImage is the image of Berth's pods when a Kubernetes compute names none.
const DefaultBerthImage = "berth:latest"

// JobOverrides are the per-job settings `batch-endpoint invoke` may override
// (--instance-count, --mini-batch-size, --set output_file_name=..., and the retry
// settings and error threshold through --set); nil or zero fields keep the deployment's.
type JobOverrides struct {
	InstanceCount  int    `json:"instance_count,omitempty"`
	MiniBatchSize  int    `json:"mini_batch_size,omitempty"`
	MaxRetries     *int   `json:"max_retries,omitempty"`
	Timeout        int    `json:"timeout,omitempty"`
	ErrorThreshold *int   `json:"error_threshold,omitempty"`
	OutputFileName string `json:"output_file_name,omitempty"`
}
