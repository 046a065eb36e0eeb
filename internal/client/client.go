// Package client owns the typed REST client the CLI uses to talk to a Berth server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// ErrNoServer is returned (wrapped) when no server answers at the configured URL.
var ErrNoServer = errors.New("no Berth server is reachable")

// Client calls one Berth server. The zero value is not usable; use New.
type Client struct {
	base  string
	token string
	http  *http.Client
	// local puts every request on the endpoint routes in the local namespace.
	local bool
}

// New returns a client for the server at base (e.g. http://127.0.0.1:5555) that
// authenticates with the admin token.
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// Local returns a client like c whose requests on the endpoint routes are in the local
// namespace when local is set (`--local`: ?local=true), in the managed one otherwise.
func (c *Client) Local(local bool) *Client {
	cc := *c
	cc.local = local
	return &cc
}

// BaseURL is the server URL the client talks to.
func (c *Client) BaseURL() string { return c.base }

// do sends one request. in is JSON-encoded unless it is an io.Reader; out is
// JSON-decoded unless it is a *[]byte, which receives the raw body.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	contentType := ""
	switch v := in.(type) {
	case nil:
	case io.Reader:
		body, contentType = v, "application/octet-stream"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	if c.local && strings.HasPrefix(path, "/endpoints") {
		path += "?" + wire.LocalParam + "=true"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+wire.APIPrefix+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error and *net.OpError unwrap down to the errno.
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s: start one with `berth serve` (or point --server / BERTH_SERVER at a running one)", ErrNoServer, c.base)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, data)
	}
	switch v := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*v = data
		return nil
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
		return nil
	}
}

// decodeError turns an error answer into a *diag.Error: the server's own when the body
// is a wire.ErrorBody, else one that names the status and quotes the body.
func decodeError(status int, data []byte) error {
	var eb wire.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
		return FromWire(eb.Error)
	}
	code := diag.InternalServerError
	switch status {
	case http.StatusUnauthorized:
		code = diag.Unauthorized
	case http.StatusNotFound:
		code = diag.ResourceNotFound
	}
	return diag.New(code, "server answered %d: %s", status, strings.TrimSpace(string(data)))
}

// FromWire converts a wire error to a *diag.Error.
func FromWire(w *wire.Error) *diag.Error {
	if w == nil {
		return nil
	}
	e := &diag.Error{Code: diag.Code(w.Code), Message: w.Message, Target: w.Target}
	for _, d := range w.Details {
		e.Details = append(e.Details, FromWire(d))
	}
	return e
}

func esc(s string) string { return url.PathEscape(s) }

// CreateEndpoint creates an endpoint from its spec (any JSON-encodable value).
func (c *Client) CreateEndpoint(ctx context.Context, spec any) (json.RawMessage, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/endpoints", wire.EndpointCreate{Spec: raw}, &out)
}

// UpdateEndpoint changes an endpoint's spec, traffic or mirror traffic.
func (c *Client) UpdateEndpoint(ctx context.Context, name string, u wire.EndpointUpdate) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPatch, "/endpoints/"+esc(name), u, &out)
}

// GetEndpoint returns the endpoint's read view.
func (c *Client) GetEndpoint(ctx context.Context, name string) (*wire.Endpoint, json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/endpoints/"+esc(name), nil, &raw); err != nil {
		return nil, nil, err
	}
	var ep wire.Endpoint
	return &ep, raw, json.Unmarshal(raw, &ep)
}

// ListEndpoints returns every endpoint's read view as raw JSON array.
func (c *Client) ListEndpoints(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/endpoints", nil, &out)
}

// DeleteEndpoint deletes an endpoint and its deployments.
func (c *Client) DeleteEndpoint(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/endpoints/"+esc(name), nil, nil)
}

// ListKeys returns the endpoint's credentials: its keys, or a new token when its
// auth_mode is aml_token or aad_token.
func (c *Client) ListKeys(ctx context.Context, name string) (*wire.Credentials, error) {
	var k wire.Credentials
	return &k, c.do(ctx, http.MethodPost, "/endpoints/"+esc(name)+"/listkeys", nil, &k)
}

// AccessToken returns an access token of the server's admin identity for resource
// ("" = Azure Resource Manager), as `az account get-access-token` does.
func (c *Client) AccessToken(ctx context.Context, resource string) (*wire.AccessToken, error) {
	var t wire.AccessToken
	return &t, c.do(ctx, http.MethodPost, "/token", wire.TokenRequest{Resource: resource}, &t)
}

// RegenerateKeys replaces one of the endpoint's keys (keyType Primary or Secondary).
func (c *Client) RegenerateKeys(ctx context.Context, name, keyType string) (*wire.Keys, error) {
	var k wire.Keys
	return &k, c.do(ctx, http.MethodPost, "/endpoints/"+esc(name)+"/regenerateKeys", wire.RegenerateKeys{KeyType: keyType}, &k)
}

// CreateDeployment starts creating a deployment; it returns at once with the deployment's view.
func (c *Client) CreateDeployment(ctx context.Context, endpoint string, put wire.DeploymentPut) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/endpoints/"+esc(endpoint)+"/deployments", put, &out)
}

// UpdateDeployment starts updating a deployment.
func (c *Client) UpdateDeployment(ctx context.Context, endpoint, name string, put wire.DeploymentPut) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPatch, "/endpoints/"+esc(endpoint)+"/deployments/"+esc(name), put, &out)
}

// GetDeployment returns the deployment's read view as raw JSON.
func (c *Client) GetDeployment(ctx context.Context, endpoint, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/endpoints/"+esc(endpoint)+"/deployments/"+esc(name), nil, &out)
}

// ListDeployments returns the endpoint's deployments as a raw JSON array.
func (c *Client) ListDeployments(ctx context.Context, endpoint string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/endpoints/"+esc(endpoint)+"/deployments", nil, &out)
}

// DeleteDeployment deletes a deployment.
func (c *Client) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	return c.do(ctx, http.MethodDelete, "/endpoints/"+esc(endpoint)+"/deployments/"+esc(name), nil, nil)
}

// GetLogs returns the tail of a deployment's container log.
func (c *Client) GetLogs(ctx context.Context, endpoint, name string, req wire.GetLogs) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, http.MethodPost, "/endpoints/"+esc(endpoint)+"/deployments/"+esc(name)+"/getLogs", req, &out)
}

// HasArtifact reports whether the server already stores the artifact.
func (c *Client) HasArtifact(ctx context.Context, digest string) (bool, error) {
	err := c.do(ctx, http.MethodHead, "/artifacts/"+esc(digest), nil, nil)
	if err == nil {
		return true, nil
	}
	if e := diag.As(err); e != nil && e.Code == diag.ResourceNotFound {
		return false, nil
	}
	return false, err
}

// UploadArtifact uploads a tar stream and returns its digest.
func (c *Client) UploadArtifact(ctx context.Context, tar io.Reader) (*wire.Artifact, error) {
	var a wire.Artifact
	return &a, c.do(ctx, http.MethodPost, "/artifacts", tar, &a)
}

// Score sends a scoring request to an endpoint with its key (none when key is "", as
// local endpoints take) and returns status, headers and body.
func (c *Client) Score(ctx context.Context, scoringURI, key, deployment string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scoringURI, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if deployment != "" {
		req.Header.Set("azureml-model-deployment", deployment)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("invoke %s: %w", scoringURI, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// PutConnection creates or replaces a connection and returns it with credentials masked.
func (c *Client) PutConnection(ctx context.Context, conn wire.Connection) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/connections", conn, &out)
}

// GetConnection returns a connection with credentials masked.
func (c *Client) GetConnection(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/connections/"+esc(name), nil, &out)
}

// ListConnections returns every connection with credentials masked.
func (c *Client) ListConnections(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/connections", nil, &out)
}

// DeleteConnection deletes a connection.
func (c *Client) DeleteConnection(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/connections/"+esc(name), nil, nil)
}

// Operations returns the endpoint's newest operations.
func (c *Client) Operations(ctx context.Context, endpoint string) ([]wire.Operation, error) {
	var out []wire.Operation
	return out, c.do(ctx, http.MethodGet, "/endpoints/"+esc(endpoint)+"/operations", nil, &out)
}

// DownloadArtifact returns the tar stream of an artifact.
func (c *Client) DownloadArtifact(ctx context.Context, digest string) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, http.MethodGet, "/artifacts/"+esc(digest), nil, &out)
}

// assetPath is the route of an asset kind.
func assetPath(kind string) string { return "/assets/" + esc(kind) }

// versionPath is the route of one version of an asset.
func versionPath(kind, name, version string) string {
	return assetPath(kind) + "/" + esc(name) + "/versions/" + esc(version)
}

// CreateAsset registers a version of an asset of kind wire.KindModel,
// wire.KindEnvironment or wire.KindData and returns its view.
func (c *Client) CreateAsset(ctx context.Context, kind string, a wire.AssetCreate) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, assetPath(kind), a, &out)
}

// ListAssets returns the views of the versions of name, or of every asset of the kind
// when name is "", as a raw JSON array.
func (c *Client) ListAssets(ctx context.Context, kind, name string) (json.RawMessage, error) {
	path := assetPath(kind)
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// GetAsset returns the view of an asset version ("latest" for the newest not archived).
// A model's view decodes into wire.Model.
func (c *Client) GetAsset(ctx context.Context, kind, name, version string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, versionPath(kind, name, version), nil, &out)
}

// ArchiveAsset archives (archived true) or restores an asset version and returns its view.
func (c *Client) ArchiveAsset(ctx context.Context, kind, name, version string, archived bool) (json.RawMessage, error) {
	verb := "/restore"
	if archived {
		verb = "/archive"
	}
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, versionPath(kind, name, version)+verb, nil, &out)
}
