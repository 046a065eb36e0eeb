// Package store owns the persistence contract of Berth's metadata: role interfaces
// sized for each consumer (Endpoints, Deployments, Assets, Connections, Operations),
// Store for the composition root that opens all of them, and the records they keep.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Asset kinds: the Kind of an Asset.
const (
	KindModel       = "model"
	KindEnvironment = "environment"
	KindData        = "data"
)

// Endpoint is a stored online endpoint.
type Endpoint struct {
	Name                     string
	Spec                     json.RawMessage // the endpoint spec as JSON, opaque to the store
	Traffic                  map[string]int  // never nil when read back
	MirrorTraffic            map[string]int  // never nil when read back
	PrimaryKey, SecondaryKey string
	State                    string // provisioning state
	Error                    json.RawMessage
	// Local marks an endpoint of the local namespace (`--local`): set when it is
	// created, kept by every update.
	Local                bool
	CreatedAt, UpdatedAt time.Time
}

// Deployment is a stored online deployment.
type Deployment struct {
	Endpoint, Name string
	Spec           json.RawMessage
	ModelArtifact  string // artifact digest, "" if none
	CodeArtifact   string
	State          string
	Error          json.RawMessage
	// AllTraffic is a pending intent stored with the request that asked for it (create
	// --all-traffic): the deployment gets 100% of its endpoint's traffic once it has
	// succeeded, even if the server restarts in between.
	AllTraffic bool
	// Python is the interpreter (absolute, as found on PATH; symlinks kept) the deployment's current spec was
	// built and run on, recorded when it succeeds: a restart builds it on the same one,
	// even if the server now defaults to another. "" until then; a new spec clears it.
	Python string
	// Serving is the version of the deployment that last succeeded on this machine
	// (Served as JSON), written with the Succeeded state: after an update fails, its
	// instances go on serving, and a restart of berth serve starts that version again.
	// Nil before the first success; a create over a Failed deployment clears it.
	Serving              json.RawMessage
	CreatedAt, UpdatedAt time.Time
}

// ServedVersion reads Serving: the version that last succeeded, if one is recorded.
func (d *Deployment) ServedVersion() (Served, bool) {
	var v Served
	if len(d.Serving) == 0 || json.Unmarshal(d.Serving, &v) != nil || len(v.Spec) == 0 {
		return Served{}, false
	}
	return v, true
}

// Served is a version of a deployment that succeeded: what Deployment.Serving holds.
type Served struct {
	Spec          json.RawMessage `json:"spec"`
	ModelArtifact string          `json:"model_artifact,omitempty"`
	CodeArtifact  string          `json:"code_artifact,omitempty"`
	Python        string          `json:"python,omitempty"`
}

// Asset is a registered version of a model, an environment or a data asset:
// immutable apart from its archived flag.
type Asset struct {
	Kind          string // KindModel, KindEnvironment, KindData
	Name, Version string
	Type          string // model: custom_model|mlflow_model|triton_model; data: uri_folder|uri_file; environment: ""
	Description   string
	Tags          map[string]string // nil when empty
	PathBase      string            // base name of the registered path: a model folder keeps it under AZUREML_MODEL_DIR
	Spec          json.RawMessage   // the kind's own fields as JSON (environment and data specs), nil when empty
	Artifact      string            // digest of uploaded files, "" if none
	Archived      bool
	CreatedAt     time.Time
}

// Operation is one create, update or delete of an endpoint or deployment.
type Operation struct {
	ID         int64
	Endpoint   string
	Deployment string // "" for an endpoint operation
	Kind       string // Create, Update, Delete
	State      string // InProgress, Succeeded, Failed
	Error      json.RawMessage
	StartedAt  time.Time
	EndedAt    time.Time // zero while in progress
}

// Connection is a stored workspace connection: public fields in Public, credentials
// encrypted by the caller in Sealed.
type Connection struct {
	Name                 string
	Public               json.RawMessage
	Sealed               []byte
	CreatedAt, UpdatedAt time.Time
}

// Compute is a stored compute target (`compute create`).
type Compute struct {
	Name                 string
	Spec                 json.RawMessage // spec.Compute as JSON
	CreatedAt, UpdatedAt time.Time
}

// BatchEndpoint is a stored batch endpoint. Its name is unique among batch endpoints;
// the caller keeps it unique among online endpoints too.
type BatchEndpoint struct {
	Name string
	Spec json.RawMessage // spec.BatchEndpoint as JSON, defaults.deployment_name included
	// State is the provisioning state (Succeeded once stored; Deleting while deleted).
	State                string
	CreatedAt, UpdatedAt time.Time
}

// BatchDeployment is a stored batch deployment: its spec with references pinned, and
// the digests of its uploaded model and code.
type BatchDeployment struct {
	Endpoint, Name string
	Spec           json.RawMessage // spec.BatchDeployment as JSON
	ModelArtifact  string
	CodeArtifact   string
	State          string
	Error          json.RawMessage
	// Python is the interpreter (absolute, as found on PATH; symlinks kept) the deployment was checked on when it
	// was created or last updated: its jobs run there, whatever the server's is now.
	Python string
	// Warnings are those of that check (version pins the interpreter does not meet).
	Warnings  []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Job is a stored batch job: what to run (Spec, resolved when it was accepted, so a
// later change of its deployment does not change it), where it stands, and why it ended.
type Job struct {
	Name       string
	Endpoint   string
	Deployment string
	// Status is NotStarted, Preparing, Running, Finalizing, CancelRequested, Completed,
	// Failed or Canceled.
	Status   string
	Spec     json.RawMessage // the resolved job, opaque to the store
	Progress json.RawMessage // counts of mini-batches and files, opaque to the store
	Error    json.RawMessage
	// CreatedAt is set by the store; StartedAt and EndedAt by the caller (zero until then).
	CreatedAt, UpdatedAt time.Time
	StartedAt, EndedAt   time.Time
}

// Computes keeps compute targets.
type Computes interface {
	// PutCompute creates or replaces a compute.
	PutCompute(ctx context.Context, c *Compute) error
	// GetCompute returns a compute; ErrNotFound otherwise.
	GetCompute(ctx context.Context, name string) (*Compute, error)
	// ListComputes returns every compute, by name.
	ListComputes(ctx context.Context) ([]*Compute, error)
	// DeleteCompute deletes a compute; ErrNotFound otherwise.
	DeleteCompute(ctx context.Context, name string) error
}

// BatchEndpoints keeps batch endpoints and their deployments.
type BatchEndpoints interface {
	// CreateBatchEndpoint stores a new batch endpoint; ErrExists when the name is taken.
	CreateBatchEndpoint(ctx context.Context, e *BatchEndpoint) error
	// GetBatchEndpoint returns a batch endpoint; ErrNotFound otherwise.
	GetBatchEndpoint(ctx context.Context, name string) (*BatchEndpoint, error)
	// ListBatchEndpoints returns every batch endpoint, by name.
	ListBatchEndpoints(ctx context.Context) ([]*BatchEndpoint, error)
	// UpdateBatchEndpoint reads, applies fn and writes in one transaction; an error from
	// fn writes nothing and is returned. ErrNotFound when there is no such endpoint.
	UpdateBatchEndpoint(ctx context.Context, name string, fn func(*BatchEndpoint) error) (*BatchEndpoint, error)
	// DeleteBatchEndpoint deletes the endpoint and its deployments (not its jobs);
	// ErrNotFound otherwise.
	DeleteBatchEndpoint(ctx context.Context, name string) error
	// PutBatchDeployment creates or replaces a deployment (batch create overwrites, as
	// Azure's does), keeping CreatedAt of the one it replaces; ErrNotFound when the
	// endpoint does not exist.
	PutBatchDeployment(ctx context.Context, d *BatchDeployment) error
	// GetBatchDeployment returns a deployment; ErrNotFound otherwise.
	GetBatchDeployment(ctx context.Context, endpoint, name string) (*BatchDeployment, error)
	// ListBatchDeployments lists one endpoint's deployments, or all when endpoint is "",
	// by endpoint then name.
	ListBatchDeployments(ctx context.Context, endpoint string) ([]*BatchDeployment, error)
	// DeleteBatchDeployment deletes a deployment; ErrNotFound otherwise.
	DeleteBatchDeployment(ctx context.Context, endpoint, name string) error
}

// Jobs keeps batch jobs.
type Jobs interface {
	// CreateJob stores a new job; ErrExists when the name is taken.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob returns a job; ErrNotFound otherwise.
	GetJob(ctx context.Context, name string) (*Job, error)
	// ListJobs returns the jobs of an endpoint (all when endpoint is ""), of one of its
	// deployments when deployment is not "", newest first.
	ListJobs(ctx context.Context, endpoint, deployment string) ([]*Job, error)
	// UpdateJob reads, applies fn and writes in one transaction; an error from fn
	// writes nothing and is returned. ErrNotFound when there is no such job.
	UpdateJob(ctx context.Context, name string, fn func(*Job) error) (*Job, error)
}

// Endpoints keeps online endpoints. The store sets CreatedAt and UpdatedAt.
type Endpoints interface {
	// CreateEndpoint stores a new endpoint; ErrExists when the name is taken.
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	// GetEndpoint returns an endpoint; ErrNotFound otherwise.
	GetEndpoint(ctx context.Context, name string) (*Endpoint, error)
	// ListEndpoints returns every endpoint, by name.
	ListEndpoints(ctx context.Context) ([]*Endpoint, error)
	// UpdateEndpoint reads, applies fn and writes in one transaction; an error from fn
	// writes nothing and is returned. ErrNotFound when there is no such endpoint.
	UpdateEndpoint(ctx context.Context, name string, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint deletes the endpoint and its deployments; ErrNotFound otherwise.
	DeleteEndpoint(ctx context.Context, name string) error
}

// Deployments keeps online deployments, each under an endpoint.
type Deployments interface {
	// CreateDeployment stores a new deployment; ErrExists when the name is taken in its
	// endpoint, ErrNotFound when the endpoint does not exist.
	CreateDeployment(ctx context.Context, d *Deployment) error
	// GetDeployment returns a deployment; ErrNotFound otherwise.
	GetDeployment(ctx context.Context, endpoint, name string) (*Deployment, error)
	// ListDeployments lists one endpoint's deployments, or all when endpoint is "",
	// by endpoint then name.
	ListDeployments(ctx context.Context, endpoint string) ([]*Deployment, error)
	// UpdateDeployment reads, applies fn and writes in one transaction; an error from fn
	// writes nothing and is returned. ErrNotFound when there is no such deployment.
	UpdateDeployment(ctx context.Context, endpoint, name string, fn func(*Deployment) error) (*Deployment, error)
	// DeleteDeployment deletes a deployment; ErrNotFound otherwise.
	DeleteDeployment(ctx context.Context, endpoint, name string) error
}

// Assets keeps registered versions of models, environments and data assets.
type Assets interface {
	// CreateAsset registers a version; ErrExists when the version is taken.
	CreateAsset(ctx context.Context, a *Asset) error
	// GetAsset returns one version; ErrNotFound otherwise.
	GetAsset(ctx context.Context, kind, name, version string) (*Asset, error)
	// ListAssets returns the versions of name (all of the kind when name is ""), by
	// name, and within a name newest (latest created) first.
	ListAssets(ctx context.Context, kind, name string) ([]*Asset, error)
	// SetAssetArchived archives or restores a version; ErrNotFound otherwise.
	SetAssetArchived(ctx context.Context, kind, name, version string, archived bool) error
}

// Connections keeps workspace connections.
type Connections interface {
	// PutConnection creates or replaces a connection; its secret part is already sealed.
	PutConnection(ctx context.Context, c *Connection) error
	// GetConnection returns a connection; ErrNotFound otherwise.
	GetConnection(ctx context.Context, name string) (*Connection, error)
	// ListConnections returns every connection, by name.
	ListConnections(ctx context.Context) ([]*Connection, error)
	// DeleteConnection deletes a connection; ErrNotFound otherwise.
	DeleteConnection(ctx context.Context, name string) error
}

// Operations keeps the history of endpoint and deployment operations.
type Operations interface {
	// StartOperation records an operation as InProgress and returns its id; ids increase.
	StartOperation(ctx context.Context, op *Operation) (int64, error)
	// FinishOperation records the end state (Succeeded, Failed) and error of an operation.
	FinishOperation(ctx context.Context, id int64, state string, errJSON json.RawMessage) error
	// ListOperations returns an endpoint's operations, newest first, at most limit.
	ListOperations(ctx context.Context, endpoint string, limit int) ([]*Operation, error)
}

// Store is every role together plus Close: what a composition root opens.
// Implementations are safe for concurrent use; a durable one keeps what a call
// returned success for across a crash.
type Store interface {
	Endpoints
	Deployments
	Assets
	Connections
	Operations
	Computes
	BatchEndpoints
	Jobs
	// Close releases the store.
	Close() error
}
