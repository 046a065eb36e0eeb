package runtime

import "context"

// ClusterTarget is a Kubernetes compute: how to reach its API server and where Berth's
// objects go.
type ClusterTarget struct {
	Compute    string
	Kubeconfig []byte
	Source     string // the kubeconfig file the compute was attached with, for messages
	Namespace  string
	Image      string // the image of Berth's pods
}

// ClusterProbe is a liveness or readiness probe, in seconds as the YAML gives it.
type ClusterProbe struct {
	InitialDelay, Period, Timeout, SuccessThreshold, FailureThreshold int
}

// ClusterDeployment is an online deployment as a cluster runs it: replicas of `berth
// inference-server` whose init container fetches the model and code from the server.
type ClusterDeployment struct {
	Endpoint, Deployment string
	Replicas             int
	Liveness, Readiness  ClusterProbe
	// Requests and Limits are resources.requests/limits (cpu, memory, nvidia.com/gpu).
	Requests, Limits map[string]string
	Env              map[string]string
	WorkerCount      int
	EntryScript      string // relative to the code folder, or instance.BuiltinMLflow
	ModelPath        string // "<name>/<version>" of a registered model under the model root, "" inline
	ModelBase        string // the name of the model's folder or file in its artifact
	ModelArtifact    string // digests of the uploaded model and code ("" if none)
	CodeArtifact     string
	ServerURL        string // where the storage initializer fetches them
	Token            string // the token it fetches them with
}

// ClusterState is what a cluster says of a deployment: Ready when every replica is,
// Failure (a *diag.Error with the documented code) when its pods cannot run.
type ClusterState struct {
	Ready   bool
	Failure error
	// Replicas is the replica count the cluster has now (0 when the deployment is not
	// there yet), so an autoscaled deployment applied again keeps its scale.
	Replicas int
}

// Clusters runs online deployments on Kubernetes computes.
type Clusters interface {
	// Check refuses a deployment the cluster would reject (resources, names, probes),
	// before anything is applied.
	Check(t ClusterTarget, d ClusterDeployment) error
	// Apply creates or updates the deployment's objects.
	Apply(ctx context.Context, t ClusterTarget, d ClusterDeployment) error
	// State reads the deployment's readiness or failure.
	State(ctx context.Context, t ClusterTarget, endpoint, deployment string) (ClusterState, error)
	// Watch calls fn with the host:port of every ready replica each time the set
	// changes, until ctx ends.
	Watch(ctx context.Context, t ClusterTarget, endpoint, deployment string, fn func(addrs []string))
	// Delete deletes the deployment's objects; its pods go with them.
	Delete(ctx context.Context, t ClusterTarget, endpoint, deployment string) error
	// Logs returns the last lines of a container ("inference-server" or
	// "storage-initializer") of the deployment's pods, each pod's under a header line.
	Logs(ctx context.Context, t ClusterTarget, endpoint, deployment, container string, lines int) ([]byte, error)
}

// ClusterJob is a batch job as a cluster runs it: an Indexed Job of Nodes pods, each
// running `berth batch-worker` with Processes Python workers that pull the job's
// mini-batches from the server; the init container fetches model and code as an online
// deployment's does.
type ClusterJob struct {
	Job, Endpoint, Deployment string
	// Run identifies this run of the job: the server refuses pods of another.
	Run              string
	Nodes, Processes int
	Requests, Limits map[string]string
	Env              map[string]string
	EntryScript      string // relative to the code folder
	ModelPath        string // "<name>/<version>" of a registered model, "" inline
	ModelBase        string
	ModelArtifact    string
	CodeArtifact     string
	TimeoutSeconds   float64 // of one run() call
	LoggingLevel     string
	ServerURL        string
	Token            string
}

// ClusterJobState is what a cluster says of a batch job's pods: Failure (a *diag.Error
// with the documented code) when they cannot run.
type ClusterJobState struct {
	// Exists is false once the Job is gone.
	Exists  bool
	Failure error
}

// ClusterJobs runs batch jobs on Kubernetes computes.
type ClusterJobs interface {
	// ApplyJob creates the job's Secret and Indexed Job; CheckJob refuses what the API
	// server would (resources, names) before anything is applied.
	CheckJob(t ClusterTarget, j ClusterJob) error
	ApplyJob(ctx context.Context, t ClusterTarget, j ClusterJob) error
	// JobState reads the Job and its pods.
	JobState(ctx context.Context, t ClusterTarget, job string) (ClusterJobState, error)
	// DeleteJob deletes the Job, its pods and its Secret, and waits until the Job is gone.
	DeleteJob(ctx context.Context, t ClusterTarget, job string) error
}

// DefaultInstanceType is the resources of Azure's defaultinstancetype, which a
// Kubernetes compute has from the start (spec §2.5): requests cpu 100m, memory 2Gi;
// limits cpu 2, memory 2Gi.
func DefaultInstanceType() (requests, limits map[string]string) {
	return map[string]string{"cpu": "100m", "memory": "2Gi"}, map[string]string{"cpu": "2", "memory": "2Gi"}
}
