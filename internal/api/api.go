// Package api owns the control-plane REST API: it decodes requests, calls the
// controller and encodes answers and errors.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// Control is what the API needs of the controller.
type Control interface {
	CreateEndpoint(ctx context.Context, ep *spec.Endpoint, local bool) (*store.Endpoint, error)
	GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error)
	ListEndpoints(ctx context.Context, local bool) ([]*store.Endpoint, error)
	// CheckNamespace refuses, as EndpointNotFound, a request for an endpoint of the
	// other namespace (local or managed) than the request's.
	CheckNamespace(ctx context.Context, name string, local bool) error
	UpdateEndpoint(ctx context.Context, name string, ch controller.EndpointChange) (*store.Endpoint, error)
	DeleteEndpoint(ctx context.Context, name string) error
	RegenerateKey(ctx context.Context, name, keyType string) (*store.Endpoint, error)
	Operations(ctx context.Context, endpoint string, limit int) ([]*store.Operation, error)

	CreateDeployment(ctx context.Context, in controller.DeploymentInput) (*store.Deployment, error)
	UpdateDeployment(ctx context.Context, in controller.DeploymentInput) (*store.Deployment, error)
	GetDeployment(ctx context.Context, endpoint, name string) (*store.Deployment, error)
	ListDeployments(ctx context.Context, endpoint string) ([]*store.Deployment, error)
	DeleteDeployment(ctx context.Context, endpoint, name string) error
	Logs(endpoint, name, container string, lines int) ([]byte, error)
	ClusterLogs(ctx context.Context, endpoint, name, container string, lines int) ([]byte, bool, error)
	InstanceLogs(endpoint, name, container string, index, lines int) ([]byte, error)
	PreviousInstance(endpoint, name string) (int, error)
	Instances(endpoint, name string) []controller.InstanceStatus
	Rollout(endpoint, name string) (progress string, warnings []string)
	// Phases times the deployment's latest provision on this machine (nil: none yet).
	Phases(endpoint, name string) []wire.Phase
	EnvironmentBuildLog(a *store.Asset) string
}

// Registry is what the API needs of the asset registry.
type Registry interface {
	PutArtifact(r io.Reader) (string, int64, error)
	HasArtifact(digest string) bool
	WriteArtifact(w io.Writer, digest string) error
	CreateAsset(ctx context.Context, a store.Asset) (*store.Asset, error)
	GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error)
	ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error)
	ArchiveAsset(ctx context.Context, kind, name, version string, archived bool) error
	PutConnection(ctx context.Context, conn registry.Connection) error
	GetConnection(ctx context.Context, name string) (registry.Connection, error)
	ListConnections(ctx context.Context) ([]registry.Connection, error)
	DeleteConnection(ctx context.Context, name string) error
}

// Tokens is what the API needs of the token issuer; *auth.Issuer is one.
type Tokens interface {
	EndpointToken(endpoint string) (auth.Token, error)
	AccessToken(resource string) (auth.Token, error)
	ValidateAccess(tok string) error
	// ValidatePod checks the token of a pod on a Kubernetes compute.
	ValidatePod(tok string) (auth.PodScope, error)
}

// Config is what the API needs.
type Config struct {
	Controller Control
	Registry   Registry
	// Batch runs computes, batch endpoints and jobs.
	Batch Batch
	// Token is the admin token every call must present as a Bearer token, unless it
	// presents an access token of the admin identity that Tokens accepts.
	Token string
	// Tokens mints the tokens of token endpoints and access tokens; nil means
	// get-credentials of a token endpoint and POST /token fail, and only the admin
	// token is accepted.
	Tokens Tokens
	// BaseURL is the server's public URL, used in scoring_uri.
	BaseURL func() string
	Log     *slog.Logger
	// Metrics answers GET /endpoints/{name}/metrics; nil answers an empty history.
	Metrics Metrics
}

type api struct {
	Config
}

// New returns the control-plane handler, serving under wire.APIPrefix.
func New(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg}
	mux := http.NewServeMux()
	p := wire.APIPrefix
	mux.HandleFunc("POST "+p+"/artifacts", a.putArtifact)
	mux.HandleFunc("HEAD "+p+"/artifacts/{digest}", a.hasArtifact)
	mux.HandleFunc("POST "+p+"/endpoints", a.createEndpoint)
	mux.HandleFunc("GET "+p+"/endpoints", a.listEndpoints)
	mux.HandleFunc("GET "+p+"/endpoints/{name}", a.scoped(a.getEndpoint))
	mux.HandleFunc("PATCH "+p+"/endpoints/{name}", a.scoped(a.updateEndpoint))
	mux.HandleFunc("DELETE "+p+"/endpoints/{name}", a.scoped(a.deleteEndpoint))
	mux.HandleFunc("POST "+p+"/endpoints/{name}/listkeys", a.scoped(a.listKeys))
	mux.HandleFunc("POST "+p+"/endpoints/{name}/regenerateKeys", a.scoped(a.regenerateKeys))
	mux.HandleFunc("POST "+p+"/token", a.accessToken)
	mux.HandleFunc("POST "+p+"/endpoints/{name}/deployments", a.scoped(a.createDeployment))
	mux.HandleFunc("GET "+p+"/endpoints/{name}/deployments", a.scoped(a.listDeployments))
	mux.HandleFunc("GET "+p+"/endpoints/{name}/deployments/{dep}", a.scoped(a.getDeployment))
	mux.HandleFunc("PATCH "+p+"/endpoints/{name}/deployments/{dep}", a.scoped(a.updateDeployment))
	mux.HandleFunc("DELETE "+p+"/endpoints/{name}/deployments/{dep}", a.scoped(a.deleteDeployment))
	mux.HandleFunc("POST "+p+"/endpoints/{name}/deployments/{dep}/getLogs", a.scoped(a.getLogs))
	mux.HandleFunc("GET "+p+"/endpoints/{name}/operations", a.scoped(a.listOperations))
	mux.HandleFunc("GET "+p+"/endpoints/{name}/metrics", a.scoped(a.endpointMetrics))
	mux.HandleFunc("GET "+p+"/artifacts/{digest}", a.getArtifact)
	mux.HandleFunc("POST "+p+"/assets/{kind}", a.createAsset)
	mux.HandleFunc("GET "+p+"/assets/{kind}", a.listAssets)
	mux.HandleFunc("GET "+p+"/assets/{kind}/{name}/versions/{version}", a.getAsset)
	mux.HandleFunc("POST "+p+"/assets/{kind}/{name}/versions/{version}/archive", a.archiveAsset)
	mux.HandleFunc("POST "+p+"/assets/{kind}/{name}/versions/{version}/restore", a.archiveAsset)
	mux.HandleFunc("POST "+p+"/connections", a.putConnection)
	mux.HandleFunc("GET "+p+"/connections", a.listConnections)
	mux.HandleFunc("GET "+p+"/connections/{name}", a.getConnection)
	mux.HandleFunc("DELETE "+p+"/connections/{name}", a.deleteConnection)
	mux.HandleFunc("GET "+p+"/error-codes", a.listErrorCodes)
	a.batchRoutes(mux)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, diag.New(diag.ResourceNotFound, "no control-plane route %s %s", r.Method, r.URL.Path))
	})
	return a.requireToken(mux)
}

func (a *api) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r)
		if ok && auth.Match(tok, a.Token) {
			next.ServeHTTP(w, r)
			return
		}
		if ok && a.Tokens != nil && auth.LooksLikeToken(tok) {
			err := a.Tokens.ValidateAccess(tok)
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			if scope, perr := a.Tokens.ValidatePod(tok); perr == nil {
				if podAllowed(r, scope) {
					next.ServeHTTP(w, r)
					return
				}
				writeError(w, diag.New(diag.AuthorizationFailed, "a pod's token may only fetch its deployment's model and code, and serve its batch job's workers, not %s %s", r.Method, r.URL.Path))
				return
			}
			writeError(w, diag.New(diag.Unauthorized, "the access token was refused: %v: get a new one with `berth account get-access-token`", err))
			return
		}
		writeError(w, diag.New(diag.Unauthorized, "missing or wrong admin token: the berth CLI reads it from <data-dir>/server.json, or pass --token / BERTH_TOKEN, or send an access token from `berth account get-access-token`"))
	})
}

// podAllowed reports whether a pod token of scope may make request r: read one of
// its artifacts, or serve a worker of its job.
func podAllowed(r *http.Request, scope auth.PodScope) bool {
	p := wire.APIPrefix
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		digest, ok := strings.CutPrefix(r.URL.Path, p+"/artifacts/")
		return ok && digest != "" && slices.Contains(scope.Artifacts, digest)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, p+"/jobs/")
	if r.Method != http.MethodPost || !ok || scope.Job == "" {
		return false
	}
	job, rest, _ := strings.Cut(rest, "/")
	return job == scope.Job && strings.HasPrefix(rest, "workers/")
}

// writeError is the one place an error becomes an HTTP status and a JSON body.
func writeError(w http.ResponseWriter, err error) {
	de := diag.As(err)
	if de == nil {
		de = &diag.Error{Code: diag.InternalServerError, Message: err.Error()}
	}
	writeJSON(w, de.Code.HTTPStatus(), wire.ErrorBody{Error: toWire(de)})
}

func toWire(e *diag.Error) *wire.Error {
	w := &wire.Error{Code: string(e.Code), Message: e.Message, Target: e.Target}
	for _, d := range e.Details {
		w.Details = append(w.Details, toWire(d))
	}
	return w
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// MaxBodyBytes is the largest JSON request body the control plane reads (16 MiB).
const MaxBodyBytes = 16 << 20

// decode reads one JSON object of at most MaxBodyBytes into v. A larger body is
// RequestEntityTooLarge (413) naming the limit, not a JSON syntax error.
func decode(r *http.Request, v any) error {
	// No ResponseWriter: the handler's error answer is what tells the client.
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	trailing := false
	if err == nil {
		if err = dec.Decode(&json.RawMessage{}); errors.Is(err, io.EOF) {
			return nil
		}
		trailing = true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return diag.New(diag.RequestEntityTooLarge,
			"request body: larger than the limit of %d bytes (16 MiB): point to models and code with paths the CLI uploads as artifacts rather than putting them in the request", tooBig.Limit)
	case trailing:
		return diag.New(diag.BadArgument, "request body: send one JSON object; found more after it")
	default:
		return diag.New(diag.BadArgument, "request body: %v", err)
	}
}

// storedError decodes an error the store keeps as JSON; one that cannot be read is
// shown as such instead of being dropped.
func storedError(raw json.RawMessage) *wire.Error {
	if len(raw) == 0 {
		return nil
	}
	var e wire.Error
	if err := json.Unmarshal(raw, &e); err != nil {
		return &wire.Error{Code: string(diag.InternalServerError), Message: fmt.Sprintf("the stored error is unreadable (%v): %s", err, raw)}
	}
	return &e
}
