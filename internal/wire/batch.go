package wire

import "encoding/json"

// Routes of batch endpoints, deployments, computes and jobs (all under APIPrefix, admin
// authentication as every control-plane route):
//
//	PUT    /computes/{name}                          body: spec.Compute JSON → Compute
//	GET    /computes, /computes/{name}; DELETE /computes/{name}
//	POST   /batch-endpoints                          body: BatchEndpointCreate → BatchEndpoint
//	GET    /batch-endpoints, /batch-endpoints/{name}
//	PATCH  /batch-endpoints/{name}                   body: BatchEndpointUpdate → BatchEndpoint
//	DELETE /batch-endpoints/{name}
//	PUT    /batch-endpoints/{name}/deployments/{dep} body: BatchDeploymentPut → Deployment (create or replace)
//	GET    /batch-endpoints/{name}/deployments, …/deployments/{dep}; DELETE …/deployments/{dep}
//	POST   /batch-endpoints/{name}/jobs              body: JobCreate → Job (invoke)
//	GET    /jobs?endpoint=E&deployment=D             → []Job, newest first
//	GET    /jobs/{name}                              → Job
//	POST   /jobs/{name}/cancel                       → Job
//	GET    /jobs/{name}/log?offset=N                 → JobLog (the driver log from byte N)
//	GET    /jobs/{name}/outputs/{output}             → a tar stream (artifacts/archive format)
//	                                                   of the output's folder; output "logs" is the logs folder
//
// The data plane takes Azure's REST invocation at a batch endpoint's scoring_uri,
// POST /endpoints/{name}/jobs with an access token for https://ml.azure.com, body
// BatchInvoke, answering Job.

// Compute is the read view of a compute, shaped like `az ml compute show`.
type Compute struct {
	ID                      string            `json:"id"`
	Name                    string            `json:"name"`
	Type                    string            `json:"type"`
	Size                    string            `json:"size,omitempty"`
	MinInstances            int               `json:"min_instances"`
	MaxInstances            int               `json:"max_instances"`
	IdleTimeBeforeScaleDown int               `json:"idle_time_before_scale_down,omitempty"`
	Tier                    string            `json:"tier,omitempty"`
	Location                string            `json:"location"`
	Description             string            `json:"description,omitempty"`
	Tags                    map[string]string `json:"tags"`
	ProvisioningState       string            `json:"provisioning_state"`
	CreatedAt               string            `json:"created_at,omitempty"`
	// Namespace, Image and Kubeconfig (the file attached, never its content) describe a
	// Kubernetes compute.
	Namespace  string `json:"namespace,omitempty"`
	Image      string `json:"image,omitempty"`
	Kubeconfig string `json:"kubeconfig_file,omitempty"`
}

// ComputeID is the resource id of a compute.
func ComputeID(name string) string { return workspaceID + "/computes/" + name }

// BatchEndpointID is the resource id of a batch endpoint.
func BatchEndpointID(name string) string { return workspaceID + "/batchEndpoints/" + name }

// JobID is the resource id of a job.
func JobID(name string) string { return workspaceID + "/jobs/" + name }

// BatchEndpointCreate is the body of POST /batch-endpoints.
type BatchEndpointCreate struct {
	Spec json.RawMessage `json:"spec"`
}

// BatchEndpointUpdate is the body of PATCH /batch-endpoints/{name}: a new spec, or
// only a new default deployment. Nil fields are left unchanged.
type BatchEndpointUpdate struct {
	Spec              json.RawMessage `json:"spec,omitempty"`
	DefaultDeployment *string         `json:"default_deployment,omitempty"`
}

// BatchEndpoint is the read view of a batch endpoint, shaped like
// `az ml batch-endpoint show`.
type BatchEndpoint struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	Tags              map[string]string `json:"tags"`
	Properties        map[string]string `json:"properties"`
	AuthMode          string            `json:"auth_mode"`
	Defaults          BatchDefaults     `json:"defaults"`
	Location          string            `json:"location"`
	ProvisioningState string            `json:"provisioning_state"`
	// ScoringURI is where REST clients POST jobs (with an access token).
	ScoringURI string `json:"scoring_uri"`
	CreatedAt  string `json:"created_at,omitempty"`
	UpdatedAt  string `json:"updated_at,omitempty"`
}

// BatchDefaults is a batch endpoint's defaults block.
type BatchDefaults struct {
	DeploymentName string `json:"deployment_name,omitempty"`
}

// BatchDeploymentPut is the body of PUT /batch-endpoints/{name}/deployments/{dep}: the
// spec with local paths replaced by uploaded artifacts' digests. SetDefault makes it the
// endpoint's default deployment (--set-default).
type BatchDeploymentPut struct {
	Spec          json.RawMessage `json:"spec"`
	ModelArtifact string          `json:"model_artifact,omitempty"`
	CodeArtifact  string          `json:"code_artifact,omitempty"`
	SetDefault    bool            `json:"set_default,omitempty"`
}

// JobInput is the one data input of a model batch job.
type JobInput struct {
	// Type is uri_folder (default) or uri_file.
	Type string `json:"type,omitempty"`
	// Path is azureml:<data>:<version> or azureml:<data>@latest, an
	// azureml://datastores/<name>/paths/<p> path, an http(s) URL, or "" when Artifact
	// holds an uploaded local folder or file.
	Path string `json:"path,omitempty"`
	// Artifact is the digest of an uploaded local input; LocalPath the path it had on
	// the user's machine, for show.
	Artifact  string `json:"artifact,omitempty"`
	LocalPath string `json:"local_path,omitempty"`
}

// JobCreate is the body of POST /batch-endpoints/{name}/jobs (`batch-endpoint invoke`).
type JobCreate struct {
	Deployment     string   `json:"deployment,omitempty"` // "" = the endpoint's default
	Input          JobInput `json:"input"`
	Name           string   `json:"name,omitempty"` // --job-name; "" = generated
	ExperimentName string   `json:"experiment_name,omitempty"`
	// OutputPath is an azureml://datastores/<name>/paths/<p> folder for the output ("" =
	// the job's own folder).
	OutputPath string `json:"output_path,omitempty"`
	// Overrides are the per-job settings (spec.JobOverrides as JSON).
	Overrides json.RawMessage `json:"overrides,omitempty"`
}

// BatchInvoke is Azure's REST body of a batch invocation:
// {"properties": {"InputData": {"<name>": {"JobInputType": "UriFolder", "Uri": "..."}}}}.
type BatchInvoke struct {
	Properties struct {
		InputData map[string]struct {
			JobInputType string `json:"JobInputType"`
			URI          string `json:"Uri"`
		} `json:"InputData"`
		OutputData map[string]struct {
			JobOutputType string `json:"JobOutputType"`
			URI           string `json:"Uri"`
		} `json:"OutputData,omitempty"`
		Properties map[string]string `json:"properties,omitempty"`
	} `json:"properties"`
}

// Job states, as Azure's REST JobStatus names them.
const (
	JobNotStarted      = "NotStarted"
	JobPreparing       = "Preparing"
	JobRunning         = "Running"
	JobFinalizing      = "Finalizing"
	JobCancelRequested = "CancelRequested"
	JobCompleted       = "Completed"
	JobFailed          = "Failed"
	JobCanceled        = "Canceled"
)

// JobTerminal reports whether a job in status s has ended.
func JobTerminal(s string) bool {
	return s == JobCompleted || s == JobFailed || s == JobCanceled
}

// Job is the read view of a batch job, shaped like `az ml job show` of a batch job
// (a pipeline job whose step is batchscoring), with Berth's progress counts.
type Job struct {
	ID             string             `json:"id"`
	Name           string             `json:"name"`
	DisplayName    string             `json:"display_name"`
	Type           string             `json:"type"` // pipeline
	Status         string             `json:"status"`
	ExperimentName string             `json:"experiment_name"`
	EndpointName   string             `json:"endpoint_name"`
	DeploymentName string             `json:"deployment_name"`
	Inputs         map[string]JobIO   `json:"inputs"`
	Outputs        map[string]JobIO   `json:"outputs"`
	Settings       json.RawMessage    `json:"settings,omitempty"` // the effective batch settings
	Services       map[string]JobServ `json:"services"`
	Progress       JobProgress        `json:"progress"`
	Error          *Error             `json:"error,omitempty"`
	Creation       JobCreationContext `json:"creation_context"`
	StartTime      string             `json:"start_time,omitempty"`
	EndTime        string             `json:"end_time,omitempty"`
	Properties     map[string]string  `json:"properties,omitempty"`
}

// JobIO is one input or output of a job.
type JobIO struct {
	Type string `json:"type"` // uri_folder | uri_file
	Path string `json:"path"`
	Mode string `json:"mode,omitempty"`
}

// JobServ is one of a job's services (Studio: the job's page).
type JobServ struct {
	Endpoint       string `json:"endpoint"`
	JobServiceType string `json:"job_service_type,omitempty"`
}

// JobCreationContext is when and by whom a job was created.
type JobCreationContext struct {
	CreatedAt string `json:"created_at"`
	CreatedBy string `json:"created_by,omitempty"`
}

// JobProgress counts a job's mini-batches and files.
type JobProgress struct {
	MiniBatches       int     `json:"mini_batches"`
	MiniBatchesDone   int     `json:"mini_batches_succeeded"`
	MiniBatchesFailed int     `json:"mini_batches_failed"`
	Files             int     `json:"files"`
	FilesDone         int     `json:"files_succeeded"`
	FilesFailed       int     `json:"files_failed"`
	FilesPerSecond    float64 `json:"files_per_second"`
	ETASeconds        float64 `json:"eta_seconds,omitempty"`
}

// JobLog is a piece of a job's driver log (azureml-logs/70_driver_log.txt) from Offset,
// and the job as it stands, for `job stream`.
type JobLog struct {
	Offset int64  `json:"offset"`
	Next   int64  `json:"next"`
	Text   string `json:"text"`
	Job    Job    `json:"job"`
}
