package client

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

func TestBatchRequests(t *testing.T) {
	ctx := context.Background()
	const json = "application/json"
	for _, tc := range []struct {
		name string
		call func(c *Client) error
		want request
	}{
		{"put compute", func(c *Client) error {
			_, err := c.PutCompute(ctx, "cpu", map[string]any{"name": "cpu", "type": "amlcompute", "max_instances": 2})
			return err
		}, request{"PUT", "/api/v1/computes/cpu", "", "Bearer tok", json, `{"max_instances":2,"name":"cpu","type":"amlcompute"}`}},
		{"get compute", func(c *Client) error { _, err := c.GetCompute(ctx, "cpu"); return err },
			request{"GET", "/api/v1/computes/cpu", "", "Bearer tok", "", ""}},
		{"list computes", func(c *Client) error { _, err := c.ListComputes(ctx); return err },
			request{"GET", "/api/v1/computes", "", "Bearer tok", "", ""}},
		{"delete compute", func(c *Client) error { return c.DeleteCompute(ctx, "cpu") },
			request{"DELETE", "/api/v1/computes/cpu", "", "Bearer tok", "", ""}},
		{"create batch endpoint", func(c *Client) error {
			_, err := c.CreateBatchEndpoint(ctx, map[string]string{"name": "be"})
			return err
		}, request{"POST", "/api/v1/batch-endpoints", "", "Bearer tok", json, `{"spec":{"name":"be"}}`}},
		{"update default deployment", func(c *Client) error {
			d := "blue"
			_, err := c.UpdateBatchEndpoint(ctx, "be", wire.BatchEndpointUpdate{DefaultDeployment: &d})
			return err
		}, request{"PATCH", "/api/v1/batch-endpoints/be", "", "Bearer tok", json, `{"default_deployment":"blue"}`}},
		{"get batch endpoint", func(c *Client) error { _, _, err := c.GetBatchEndpoint(ctx, "be"); return err },
			request{"GET", "/api/v1/batch-endpoints/be", "", "Bearer tok", "", ""}},
		{"list batch endpoints", func(c *Client) error { _, err := c.ListBatchEndpoints(ctx); return err },
			request{"GET", "/api/v1/batch-endpoints", "", "Bearer tok", "", ""}},
		{"delete batch endpoint", func(c *Client) error { return c.DeleteBatchEndpoint(ctx, "be") },
			request{"DELETE", "/api/v1/batch-endpoints/be", "", "Bearer tok", "", ""}},
		{"put batch deployment", func(c *Client) error {
			_, err := c.PutBatchDeployment(ctx, "be", "blue", wire.BatchDeploymentPut{Spec: []byte(`{"name":"blue"}`), ModelArtifact: "sha256:m", SetDefault: true})
			return err
		}, request{"PUT", "/api/v1/batch-endpoints/be/deployments/blue", "", "Bearer tok", json, `{"spec":{"name":"blue"},"model_artifact":"sha256:m","set_default":true}`}},
		{"get batch deployment", func(c *Client) error { _, err := c.GetBatchDeployment(ctx, "be", "blue"); return err },
			request{"GET", "/api/v1/batch-endpoints/be/deployments/blue", "", "Bearer tok", "", ""}},
		{"list batch deployments", func(c *Client) error { _, err := c.ListBatchDeployments(ctx, "be"); return err },
			request{"GET", "/api/v1/batch-endpoints/be/deployments", "", "Bearer tok", "", ""}},
		{"delete batch deployment", func(c *Client) error { return c.DeleteBatchDeployment(ctx, "be", "blue") },
			request{"DELETE", "/api/v1/batch-endpoints/be/deployments/blue", "", "Bearer tok", "", ""}},
		{"invoke", func(c *Client) error {
			_, _, err := c.InvokeBatchEndpoint(ctx, "be", wire.JobCreate{Input: wire.JobInput{Type: "uri_folder", Path: "azureml:d@latest"}})
			return err
		}, request{"POST", "/api/v1/batch-endpoints/be/jobs", "", "Bearer tok", json, `{"input":{"type":"uri_folder","path":"azureml:d@latest"}}`}},
		{"list all jobs", func(c *Client) error { _, err := c.ListJobs(ctx, "", ""); return err },
			request{"GET", "/api/v1/jobs", "", "Bearer tok", "", ""}},
		{"list deployment jobs", func(c *Client) error { _, err := c.ListJobs(ctx, "be", "blue"); return err },
			request{"GET", "/api/v1/jobs", "deployment=blue&endpoint=be", "Bearer tok", "", ""}},
		{"get job", func(c *Client) error { _, _, err := c.GetJob(ctx, "j1"); return err },
			request{"GET", "/api/v1/jobs/j1", "", "Bearer tok", "", ""}},
		{"cancel job", func(c *Client) error { _, _, err := c.CancelJob(ctx, "j1"); return err },
			request{"POST", "/api/v1/jobs/j1/cancel", "", "Bearer tok", "", ""}},
		{"job log", func(c *Client) error { _, err := c.JobLog(ctx, "j1", 1234); return err },
			request{"GET", "/api/v1/jobs/j1/log", "offset=1234", "Bearer tok", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, seen := fakeServer(t, http.StatusOK, `{}`)
			if err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			got := seen.requests()
			for i := range got {
				got[i].Body = strings.TrimSpace(got[i].Body)
			}
			if diff := cmp.Diff([]request{tc.want}, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetJobDecodes(t *testing.T) {
	c, _ := fakeServer(t, http.StatusOK, `{"name":"j1","status":"Running","progress":{"mini_batches":4,"mini_batches_succeeded":1}}`)
	j, raw, err := c.GetJob(context.Background(), "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "j1" || j.Status != wire.JobRunning || j.Progress.MiniBatches != 4 || j.Progress.MiniBatchesDone != 1 {
		t.Errorf("job = %+v", j)
	}
	if !strings.Contains(string(raw), `"mini_batches":4`) {
		t.Errorf("raw = %s", raw)
	}
}

func TestJobLogDecodes(t *testing.T) {
	c, _ := fakeServer(t, http.StatusOK, `{"offset":10,"next":15,"text":"hello","job":{"name":"j1","status":"Completed"}}`)
	l, err := c.JobLog(context.Background(), "j1", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.JobLog{Offset: 10, Next: 15, Text: "hello", Job: wire.Job{Name: "j1", Status: wire.JobCompleted}}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestDownloadJobOutput(t *testing.T) {
	c, seen := fakeServer(t, http.StatusOK, "tar bytes")
	rc, err := c.DownloadJobOutput(context.Background(), "j1", "score")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "tar bytes" {
		t.Fatalf("body = %q, %v", b, err)
	}
	want := []request{{"GET", "/api/v1/jobs/j1/outputs/score", "", "Bearer tok", "", ""}}
	if diff := cmp.Diff(want, seen.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestDownloadJobOutputError(t *testing.T) {
	c, _ := fakeServer(t, http.StatusNotFound, `{"error":{"code":"ResourceNotFound","message":"job j1 has no output named x"}}`)
	_, err := c.DownloadJobOutput(context.Background(), "j1", "x")
	if de := diag.As(err); de == nil || de.Code != diag.ResourceNotFound || de.Message != "job j1 has no output named x" {
		t.Fatalf("err = %v, want (ResourceNotFound) job j1 has no output named x", err)
	}
}
