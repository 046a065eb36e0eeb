package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"github.com/berthml/berth/internal/wire"
)

// The methods of this file call the routes of batch endpoints, batch deployments,
// computes and jobs (wire/batch.go lists them).

// PutCompute creates or replaces a compute from its spec (spec.Compute or any
// JSON-encodable value) and returns its view.
func (c *Client) PutCompute(ctx context.Context, name string, spec any) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPut, "/computes/"+esc(name), spec, &out)
}

// GetCompute returns a compute's view as raw JSON.
func (c *Client) GetCompute(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/computes/"+esc(name), nil, &out)
}

// ListComputes returns every compute's view as a raw JSON array.
func (c *Client) ListComputes(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/computes", nil, &out)
}

// DeleteCompute deletes a compute.
func (c *Client) DeleteCompute(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/computes/"+esc(name), nil, nil)
}

// CreateBatchEndpoint creates a batch endpoint from its spec (any JSON-encodable value).
func (c *Client) CreateBatchEndpoint(ctx context.Context, spec any) (json.RawMessage, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/batch-endpoints", wire.BatchEndpointCreate{Spec: raw}, &out)
}

// UpdateBatchEndpoint changes a batch endpoint's spec or default deployment.
func (c *Client) UpdateBatchEndpoint(ctx context.Context, name string, u wire.BatchEndpointUpdate) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPatch, "/batch-endpoints/"+esc(name), u, &out)
}

// GetBatchEndpoint returns a batch endpoint's view, decoded and raw.
func (c *Client) GetBatchEndpoint(ctx context.Context, name string) (*wire.BatchEndpoint, json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/batch-endpoints/"+esc(name), nil, &raw); err != nil {
		return nil, nil, err
	}
	var ep wire.BatchEndpoint
	return &ep, raw, json.Unmarshal(raw, &ep)
}

// ListBatchEndpoints returns every batch endpoint's view as a raw JSON array.
func (c *Client) ListBatchEndpoints(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/batch-endpoints", nil, &out)
}

// DeleteBatchEndpoint deletes a batch endpoint and its deployments.
func (c *Client) DeleteBatchEndpoint(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/batch-endpoints/"+esc(name), nil, nil)
}

func batchDeploymentPath(endpoint, name string) string {
	return "/batch-endpoints/" + esc(endpoint) + "/deployments/" + esc(name)
}

// PutBatchDeployment creates or replaces a batch deployment and returns its view.
func (c *Client) PutBatchDeployment(ctx context.Context, endpoint, name string, put wire.BatchDeploymentPut) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPut, batchDeploymentPath(endpoint, name), put, &out)
}

// GetBatchDeployment returns a batch deployment's view as raw JSON.
func (c *Client) GetBatchDeployment(ctx context.Context, endpoint, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, batchDeploymentPath(endpoint, name), nil, &out)
}

// ListBatchDeployments returns a batch endpoint's deployments as a raw JSON array.
func (c *Client) ListBatchDeployments(ctx context.Context, endpoint string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/batch-endpoints/"+esc(endpoint)+"/deployments", nil, &out)
}

// DeleteBatchDeployment deletes a batch deployment.
func (c *Client) DeleteBatchDeployment(ctx context.Context, endpoint, name string) error {
	return c.do(ctx, http.MethodDelete, batchDeploymentPath(endpoint, name), nil, nil)
}

// InvokeBatchEndpoint starts a batch job on the endpoint and returns it, decoded and raw.
func (c *Client) InvokeBatchEndpoint(ctx context.Context, endpoint string, job wire.JobCreate) (*wire.Job, json.RawMessage, error) {
	return c.job(ctx, http.MethodPost, "/batch-endpoints/"+esc(endpoint)+"/jobs", job)
}

// ListJobs returns the jobs of an endpoint ("" = every endpoint) and of one of its
// deployments ("" = all), newest first, as a raw JSON array.
func (c *Client) ListJobs(ctx context.Context, endpoint, deployment string) (json.RawMessage, error) {
	q := url.Values{}
	if endpoint != "" {
		q.Set("endpoint", endpoint)
	}
	if deployment != "" {
		q.Set("deployment", deployment)
	}
	path := "/jobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// GetJob returns a job, decoded and raw.
func (c *Client) GetJob(ctx context.Context, name string) (*wire.Job, json.RawMessage, error) {
	return c.job(ctx, http.MethodGet, "/jobs/"+esc(name), nil)
}

// CancelJob asks a job to stop and returns it, decoded and raw.
func (c *Client) CancelJob(ctx context.Context, name string) (*wire.Job, json.RawMessage, error) {
	return c.job(ctx, http.MethodPost, "/jobs/"+esc(name)+"/cancel", nil)
}

// job sends a request whose answer is a wire.Job.
func (c *Client) job(ctx context.Context, method, path string, in any) (*wire.Job, json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, method, path, in, &raw); err != nil {
		return nil, nil, err
	}
	var j wire.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, nil, fmt.Errorf("%s %s: decode job: %w", method, path, err)
	}
	return &j, raw, nil
}

// JobLog returns the job's driver log from byte offset on, with the job as it stands.
func (c *Client) JobLog(ctx context.Context, name string, offset int64) (*wire.JobLog, error) {
	var l wire.JobLog
	path := "/jobs/" + esc(name) + "/log?offset=" + strconv.FormatInt(offset, 10)
	return &l, c.do(ctx, http.MethodGet, path, nil, &l)
}

// DownloadJobOutput streams the tar (artifacts/archive format) of a job's output
// folder ("logs" for its logs). The caller closes it.
func (c *Client) DownloadJobOutput(ctx context.Context, name, output string) (io.ReadCloser, error) {
	path := "/jobs/" + esc(name) + "/outputs/" + esc(output)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+wire.APIPrefix+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w at %s: start one with `berth serve` (or point --server / BERTH_SERVER at a running one)", ErrNoServer, c.base)
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: read response: %w", path, err)
		}
		return nil, decodeError(resp.StatusCode, data)
	}
	return resp.Body, nil
}
