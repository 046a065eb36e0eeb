// Package wire owns the JSON shapes of Berth's control-plane REST API, shared by the
// client and the server.
package wire

import "encoding/json"

// APIPrefix is the path prefix of every control-plane route.
const APIPrefix = "/api/v1"

// LocalParam is the query parameter (`?local=true`) that puts a request on the
// endpoint routes in the local namespace (`--local`): create and list act on local
// endpoints, every route under /endpoints/{name} only on a local endpoint.
const LocalParam = "local"

// ErrorBody is the envelope of every control-plane error response:
// {"error": {"code", "message", "target", "details"}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error mirrors diag.Error on the wire.
type Error struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Target  string   `json:"target,omitempty"`
	Details []*Error `json:"details,omitempty"`
}

// EndpointCreate is the body of POST /endpoints.
type EndpointCreate struct {
	Spec json.RawMessage `json:"spec"`
}

// EndpointUpdate is the body of PATCH /endpoints/{name}. Nil fields are left unchanged.
type EndpointUpdate struct {
	Spec          json.RawMessage `json:"spec,omitempty"`
	Traffic       map[string]int  `json:"traffic,omitempty"`
	MirrorTraffic map[string]int  `json:"mirror_traffic,omitempty"`
}

// DeploymentPut is the body of POST (create) and PATCH (update) on deployments: the
// deployment spec with local paths replaced by the digests of the uploaded artifacts.
type DeploymentPut struct {
	Spec          json.RawMessage `json:"spec"`
	ModelArtifact string          `json:"model_artifact,omitempty"`
	CodeArtifact  string          `json:"code_artifact,omitempty"`
	// AllTraffic (create only) gives the deployment 100% of the endpoint's traffic once
	// it succeeds; the server keeps the intent, so a restart in between still applies it.
	AllTraffic bool `json:"all_traffic,omitempty"`
}

// Keys is the answer of listkeys and regenerateKeys, shaped like `az ml online-endpoint get-credentials`.
type Keys struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// EndpointToken is the answer of listkeys for an aml_token or aad_token endpoint,
// shaped like `az ml online-endpoint get-credentials`: times are Unix seconds (UTC).
// An aad_token endpoint's token has no refreshAfterTimeUtc.
type EndpointToken struct {
	AccessToken         string `json:"accessToken"`
	ExpiryTimeUTC       int64  `json:"expiryTimeUtc"`
	RefreshAfterTimeUTC int64  `json:"refreshAfterTimeUtc,omitempty"`
	TokenType           string `json:"tokenType"`
}

// Credentials is the answer of listkeys: the keys of a key endpoint or the token of a
// token endpoint; exactly one is set, and it alone is in the JSON.
type Credentials struct {
	*Keys
	*EndpointToken
}

// Bearer returns what to send as Authorization: Bearer: the token, else the primary key.
func (c *Credentials) Bearer() string {
	if c.EndpointToken != nil {
		return c.AccessToken
	}
	if c.Keys != nil {
		return c.PrimaryKey
	}
	return ""
}

// TokenRequest is the body of POST /token (`berth account get-access-token`).
type TokenRequest struct {
	// Resource is the audience of the token ("" = Azure Resource Manager, as az does).
	Resource string `json:"resource,omitempty"`
}

// AccessToken is the answer of POST /token, shaped like `az account get-access-token`.
type AccessToken struct {
	AccessToken string `json:"accessToken"`
	// ExpiresOn is the expiry in the server's local time, "2006-01-02 15:04:05.000000".
	ExpiresOn string `json:"expiresOn"`
	// ExpiresOnUnix is the expiry in Unix seconds.
	ExpiresOnUnix int64  `json:"expires_on"`
	Subscription  string `json:"subscription"`
	Tenant        string `json:"tenant"`
	TokenType     string `json:"tokenType"`
}

// LocalSubscription and LocalTenant stand in for Azure's subscription and tenant ids:
// one Berth server is one workspace.
const (
	LocalSubscription = "00000000-0000-0000-0000-000000000000"
	LocalTenant       = "00000000-0000-0000-0000-000000000000"
)

// ExpiresOnLayout is the layout of AccessToken.ExpiresOn, as az prints it.
const ExpiresOnLayout = "2006-01-02 15:04:05.000000"

// RegenerateKeys is the body of POST /endpoints/{name}/regenerateKeys.
type RegenerateKeys struct {
	KeyType string `json:"keyType"` // Primary | Secondary
}

// GetLogs is the body of POST /endpoints/{e}/deployments/{d}/getLogs.
type GetLogs struct {
	Tail          int    `json:"tail"`
	ContainerType string `json:"containerType"` // InferenceServer | StorageInitializer
	// Instance asks for the log of one instance, running or stopped (nil: the most
	// telling one); Previous for the instance before the most telling one.
	Instance *int `json:"instance,omitempty"`
	Previous bool `json:"previous,omitempty"`
}

// Artifact is the answer of an artifact upload.
type Artifact struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Endpoint is the read view of an online endpoint, shaped like `az ml online-endpoint show`.
type Endpoint struct {
	// ID is the endpoint's Azure-style resource id (one Berth server is one workspace).
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Description         string            `json:"description,omitempty"`
	Tags                map[string]string `json:"tags"`
	AuthMode            string            `json:"auth_mode"`
	Kind                string            `json:"kind"`
	Location            string            `json:"location"`
	ProvisioningState   string            `json:"provisioning_state"`
	ScoringURI          string            `json:"scoring_uri"`
	OpenAPIURI          string            `json:"openapi_uri,omitempty"`
	Traffic             map[string]int    `json:"traffic"`
	MirrorTraffic       map[string]int    `json:"mirror_traffic"`
	PublicNetworkAccess string            `json:"public_network_access"`
	Properties          map[string]string `json:"properties"`
	// Identity is the endpoint's identity block as written (no effect on one machine).
	Identity any    `json:"identity,omitempty"`
	Error    *Error `json:"error,omitempty"`
	// Local is set on a local endpoint (`--local`), whose scoring needs no key.
	Local     bool   `json:"local,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Azure-style resource ids of what one Berth server holds: one subscription, resource
// group and workspace, all named "local".
const workspaceID = "/subscriptions/" + LocalSubscription + "/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local"

// EndpointID is the resource id of an online endpoint.
func EndpointID(name string) string { return workspaceID + "/onlineEndpoints/" + name }

// Deployment is the read view of an online deployment: the spec's fields flattened next
// to the status fields, as `az ml online-deployment show` prints them.
type Deployment struct {
	Spec              json.RawMessage `json:"-"`
	ProvisioningState string          `json:"provisioning_state"`
	Error             *Error          `json:"error,omitempty"`
	Instances         []Instance      `json:"instances,omitempty"`
	Progress          string          `json:"progress,omitempty"`
	Warnings          []string        `json:"warnings,omitempty"`
	// Python is the interpreter of this machine the deployment was last built on, which
	// it keeps across restarts of berth serve (none on Kubernetes: pods run their image's).
	Python string `json:"python,omitempty"`
	// ModelArtifact and CodeArtifact are the digests of the model and code it runs: an
	// update without a file (--set) reuses them rather than reading local folders again.
	ModelArtifact string `json:"model_artifact,omitempty"`
	CodeArtifact  string `json:"code_artifact,omitempty"`
	CreatedAt     string `json:"created_at,omitempty"`
	UpdatedAt     string `json:"updated_at,omitempty"`
	// Phases times the latest provision on this machine, in order (none before one ends).
	Phases []Phase `json:"phases,omitempty"`
}

// Instance is the read view of one running copy of a deployment.
type Instance struct {
	Index    int    `json:"index"`
	State    string `json:"state"`
	Address  string `json:"address,omitempty"`
	Restarts int    `json:"restarts"`
	// Phases times the instance's start in milliseconds: artifact_copy_ms,
	// environment_ms, import_ms, init_ms, ready_ms.
	Phases map[string]float64 `json:"phases,omitempty"`
}

// MarshalJSON writes the spec's fields and then the status fields in one object.
func (d Deployment) MarshalJSON() ([]byte, error) {
	fields := map[string]any{}
	if len(d.Spec) > 0 {
		if err := json.Unmarshal(d.Spec, &fields); err != nil {
			return nil, err
		}
	}
	type status Deployment // drops this method
	raw, err := json.Marshal(status(d))
	if err != nil {
		return nil, err
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	for k, v := range st {
		fields[k] = v
	}
	return json.Marshal(fields)
}

// Connection is a workspace connection as sent to create one; Credentials are secret.
type Connection struct {
	Name        string            `json:"name"`
	Type        string            `json:"type,omitempty"`
	Target      string            `json:"target,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Operation is one create, update or delete of an endpoint or deployment.
type Operation struct {
	ID         int64  `json:"id"`
	Deployment string `json:"deployment,omitempty"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	Error      *Error `json:"error,omitempty"`
	StartedAt  string `json:"started_at"`
	EndedAt    string `json:"ended_at,omitempty"`
}

// Model is the read view of a registered model version, shaped like `az ml model show`:
// the asset view of kind model, decoded where its fields are needed.
type Model struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Type        string            `json:"type"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags"`
	Path        string            `json:"path"`
	Artifact    string            `json:"artifact"`
	Stage       string            `json:"stage"` // Development, Archived
	CreatedAt   string            `json:"created_at"`
}

// The asset kinds of /assets/{kind}: models, environments and data assets share one
// set of routes.
const (
	// KindModel is a registered model (az ml model).
	KindModel = "model"
	// KindEnvironment is a registered environment (az ml environment).
	KindEnvironment = "environment"
	// KindData is a registered data asset (az ml data).
	KindData = "data"
)

// AssetCreate is the body of POST /assets/{kind}: a version of a model, environment or
// data asset. A model carries its fields here (Type, Description, Tags, PathBase) and
// the digest of its uploaded files in Artifact; an environment or data asset carries
// its spec in Spec, and a data asset its uploaded files in Artifact.
type AssetCreate struct {
	Name        string            `json:"name"`
	Version     string            `json:"version,omitempty"`
	Type        string            `json:"type,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	PathBase    string            `json:"path_base,omitempty"`
	Spec        json.RawMessage   `json:"spec,omitempty"`
	Artifact    string            `json:"artifact,omitempty"`
}

// ErrorCode is one documented error code of GET /error-codes: the catalogue that
// `berth diagnose` prints from, for clients that do not link it (the studio).
type ErrorCode struct {
	Code string `json:"code"`
	// Reason is the cause in plain words, Fix what to change or run, Berth whether and
	// how Berth produces the code.
	Reason string `json:"reason"`
	Fix    string `json:"fix"`
	Berth  string `json:"berth"`
}
