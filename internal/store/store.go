// Package store owns the persistence contract of Berth's metadata: the Store interface
// sized for the controller and the API, and the contract tests every implementation runs.
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

// Endpoint is a stored online endpoint.
type Endpoint struct {
	Name                     string
	Spec                     json.RawMessage // the endpoint spec as JSON, opaque to the store
	Traffic                  map[string]int
	MirrorTraffic            map[string]int
	PrimaryKey, SecondaryKey string
	State                    string // provisioning state
	Error                    json.RawMessage
	CreatedAt, UpdatedAt     time.Time
}

// Deployment is a stored online deployment.
type Deployment struct {
	Endpoint, Name       string
	Spec                 json.RawMessage
	ModelArtifact        string // artifact digest, "" if none
	CodeArtifact         string
	State                string
	Error                json.RawMessage
	CreatedAt, UpdatedAt time.Time
}

// Store keeps endpoints and deployments. Implementations are safe for concurrent use
// and durable: what a call returned success for survives a crash.
type Store interface {
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	GetEndpoint(ctx context.Context, name string) (*Endpoint, error)
	ListEndpoints(ctx context.Context) ([]*Endpoint, error)
	// UpdateEndpoint reads, applies fn and writes in one transaction; an error from fn
	// writes nothing and is returned.
	UpdateEndpoint(ctx context.Context, name string, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint deletes the endpoint and its deployments.
	DeleteEndpoint(ctx context.Context, name string) error
	CreateDeployment(ctx context.Context, d *Deployment) error
	GetDeployment(ctx context.Context, endpoint, name string) (*Deployment, error)
	// ListDeployments lists one endpoint's deployments, or all when endpoint is "".
	ListDeployments(ctx context.Context, endpoint string) ([]*Deployment, error)
	UpdateDeployment(ctx context.Context, endpoint, name string, fn func(*Deployment) error) (*Deployment, error)
	DeleteDeployment(ctx context.Context, endpoint, name string) error
	// PutConnection creates or replaces a connection; its secret part is already sealed.
	PutConnection(ctx context.Context, c *Connection) error
	GetConnection(ctx context.Context, name string) (*Connection, error)
	ListConnections(ctx context.Context) ([]*Connection, error)
	DeleteConnection(ctx context.Context, name string) error
	// StartOperation records an operation as InProgress and returns its id.
	StartOperation(ctx context.Context, op *Operation) (int64, error)
	// FinishOperation records the end state (Succeeded, Failed) and error of an operation.
	FinishOperation(ctx context.Context, id int64, state string, errJSON json.RawMessage) error
	// ListOperations returns an endpoint's operations, newest first, at most limit.
	ListOperations(ctx context.Context, endpoint string, limit int) ([]*Operation, error)
	// CreateModel registers a model version; ErrExists when the version is taken.
	CreateModel(ctx context.Context, m *Model) error
	// GetModel returns one version; ErrNotFound otherwise.
	GetModel(ctx context.Context, name, version string) (*Model, error)
	// ListModels returns every version of name (all models when name is ""), newest first.
	ListModels(ctx context.Context, name string) ([]*Model, error)
	// SetModelArchived archives or restores a version.
	SetModelArchived(ctx context.Context, name, version string, archived bool) error
	// CreateAsset registers a version of an environment or data asset; ErrExists when taken.
	CreateAsset(ctx context.Context, a *Asset) error
	GetAsset(ctx context.Context, kind, name, version string) (*Asset, error)
	// ListAssets returns the versions of name (all of the kind when name is ""), newest first.
	ListAssets(ctx context.Context, kind, name string) ([]*Asset, error)
	SetAssetArchived(ctx context.Context, kind, name, version string, archived bool) error
	Close() error
}

// Asset is a registered version of an environment or a data asset: immutable apart from
// its archived flag.
type Asset struct {
	Kind          string // environment, data
	Name, Version string
	Spec          json.RawMessage // the asset's fields as JSON
	Artifact      string          // uploaded files, "" if none
	Archived      bool
	CreatedAt     time.Time
}

// Model is a registered model version: immutable apart from its archived flag.
type Model struct {
	Name, Version string
	Type          string // custom_model, mlflow_model, triton_model
	Description   string
	Tags          map[string]string
	PathBase      string // the base name of the registered path: a folder keeps it under AZUREML_MODEL_DIR
	Artifact      string // digest of the uploaded files
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
