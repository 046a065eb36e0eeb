package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/artifacts/archive"
)

const (
	computeView   = `{"id":"/computes/cpu","name":"cpu","type":"amlcompute","size":"STANDARD_DS3_V2","min_instances":0,"max_instances":2,"location":"local","tags":{},"provisioning_state":"Succeeded"}`
	batchEPView   = `{"name":"bep","tags":{},"properties":{},"auth_mode":"aad_token","defaults":{"deployment_name":"blue"},"location":"local","provisioning_state":"Succeeded","scoring_uri":"http://127.0.0.1:1/endpoints/bep/jobs","description":"old"}`
	batchDepView  = `{"name":"blue","endpoint_name":"bep","provisioning_state":"Succeeded","compute":"azureml:cpu"}`
	jobRunning    = `{"name":"job-1","status":"Running","endpoint_name":"bep","deployment_name":"blue","experiment_name":"bep","services":{},"progress":{"mini_batches":4,"mini_batches_succeeded":1}}`
	jobsListTwo   = `[{"name":"job-2","status":"Completed","endpoint_name":"bep","deployment_name":"blue"},{"name":"job-1","status":"Failed","endpoint_name":"bep","deployment_name":"blue"}]`
	batchEndpoint = `name: bep
description: scores files
auth_mode: aad_token
`
)

// jsonBody decodes a recorded request body.
func jsonBody(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return m
}

// pick returns the fields of m named by keys (dotted paths), for comparing the part of
// a spec the command set.
func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		var v any = m
		for _, part := range strings.Split(k, ".") {
			mm, _ := v.(map[string]any)
			v = mm[part]
		}
		out[k] = v
	}
	return out
}

func TestComputeCreateFromFlags(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"PUT /computes/cpu": {body: computeView}})
	out, stderr, err := f.berth(t, "compute", "create", "-n", "cpu", "--type", "amlcompute", "--min-instances", "0",
		"--max-instances", "2", "--size", "STANDARD_DS3_V2", "-g", "rg", "-w", "ws", "--query", "provisioning_state", "-o", "tsv")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if out != "Succeeded\n" {
		t.Errorf("stdout = %q", out)
	}
	got := f.requests()
	if len(got) != 1 || got[0].Method != "PUT" || got[0].Path != "/computes/cpu" {
		t.Fatalf("requests = %+v", got)
	}
	want := map[string]any{"name": "cpu", "type": "amlcompute", "size": "STANDARD_DS3_V2", "min_instances": 0.0, "max_instances": 2.0}
	if diff := cmp.Diff(want, pick(jsonBody(t, got[0].Body), "name", "type", "size", "min_instances", "max_instances")); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestComputeCreateFileWithFlagOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "compute.yml")
	write(t, file, "name: cpu\ntype: amlcompute\nmin_instances: 0\nmax_instances: 4\n")
	f := newFakeServer(t, map[string]answer{"PUT /computes/gpu": {body: computeView}})
	if _, stderr, err := f.berth(t, "compute", "create", "-f", file, "-n", "gpu", "--max-instances", "1"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got := f.requests()
	if len(got) != 1 || got[0].Path != "/computes/gpu" {
		t.Fatalf("requests = %+v", got)
	}
	want := map[string]any{"name": "gpu", "max_instances": 1.0}
	if diff := cmp.Diff(want, pick(jsonBody(t, got[0].Body), "name", "max_instances")); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestComputeShowListDelete(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /computes/cpu":    {body: computeView},
		"GET /computes":        {body: "[" + computeView + "]"},
		"DELETE /computes/cpu": {status: http.StatusNoContent},
	})
	out, _, err := f.berth(t, "compute", "list", "-o", "table")
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME  TYPE        SIZE             MIN INSTANCES  MAX INSTANCES  PROVISIONING STATE\n" +
		"cpu   amlcompute  STANDARD_DS3_V2  0              2              Succeeded\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if out, _, err = f.berth(t, "compute", "show", "-n", "cpu", "--query", "max_instances", "-o", "tsv"); err != nil || out != "2\n" {
		t.Errorf("show = %q, %v", out, err)
	}
	if _, stderr, err := f.berth(t, "compute", "delete", "-n", "cpu", "--yes"); err != nil || !strings.Contains(stderr, "Deleted compute cpu") {
		t.Errorf("delete: %v, %q", err, stderr)
	}
	if got := f.requests(); got[len(got)-1] != (seen{"DELETE", "/computes/cpu", ""}) {
		t.Errorf("last request = %+v", got[len(got)-1])
	}
}

func TestBatchEndpointCreateNameOverridesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "endpoint.yml")
	write(t, file, batchEndpoint)
	f := newFakeServer(t, map[string]answer{"POST /batch-endpoints": {status: http.StatusCreated, body: batchEPView}})
	out, stderr, err := f.berth(t, "batch-endpoint", "create", "-f", file, "-n", "be2", "--query", "scoring_uri", "-o", "tsv")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if out != "http://127.0.0.1:1/endpoints/bep/jobs\n" {
		t.Errorf("stdout = %q", out)
	}
	got := f.requests()
	if len(got) != 1 || got[0].Method != "POST" || got[0].Path != "/batch-endpoints" {
		t.Fatalf("requests = %+v", got)
	}
	want := map[string]any{"spec.name": "be2", "spec.description": "scores files", "spec.auth_mode": "aad_token"}
	if diff := cmp.Diff(want, pick(jsonBody(t, got[0].Body), "spec.name", "spec.description", "spec.auth_mode")); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestBatchEndpointUpdate(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /batch-endpoints/bep":   {body: batchEPView},
		"PATCH /batch-endpoints/bep": {body: batchEPView},
	})
	// Only the default deployment: sent alone, without reading the spec.
	for _, args := range [][]string{
		{"--set", "defaults.deployment_name=green"},
		{"--defaults", "deployment_name=green"},
	} {
		if _, stderr, err := f.berth(t, append([]string{"batch-endpoint", "update", "-n", "bep"}, args...)...); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	want := []seen{
		{"PATCH", "/batch-endpoints/bep", `{"default_deployment":"green"}`},
		{"PATCH", "/batch-endpoints/bep", `{"default_deployment":"green"}`},
	}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	// Anything else: the stored spec with the sets applied.
	if _, stderr, err := f.berth(t, "batch-endpoint", "update", "-n", "bep", "--set", "description=new"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got := f.requests()[2:]
	if len(got) != 2 || got[0].Method != "GET" || got[1].Method != "PATCH" {
		t.Fatalf("requests = %+v", got)
	}
	wantSpec := map[string]any{"spec.name": "bep", "spec.description": "new", "spec.defaults.deployment_name": "blue"}
	if diff := cmp.Diff(wantSpec, pick(jsonBody(t, got[1].Body), "spec.name", "spec.description", "spec.defaults.deployment_name")); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestBatchEndpointReadVerbs(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /batch-endpoints/bep":    {body: batchEPView},
		"GET /batch-endpoints":        {body: "[" + batchEPView + "]"},
		"DELETE /batch-endpoints/bep": {status: http.StatusNoContent},
		"GET /jobs":                   {body: jobsListTwo},
	})
	out, _, err := f.berth(t, "batch-endpoint", "list", "-o", "table")
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME  PROVISIONING STATE  DEFAULTS              SCORING URI\n" +
		"bep   Succeeded           deployment_name=blue  http://127.0.0.1:1/endpoints/bep/jobs\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if out, _, err = f.berth(t, "batch-endpoint", "show", "-n", "bep", "--query", "defaults.deployment_name", "-o", "tsv"); err != nil || out != "blue\n" {
		t.Errorf("show = %q, %v", out, err)
	}
	if out, _, err = f.berth(t, "batch-endpoint", "list-jobs", "-n", "bep", "--query", "[].name", "-o", "tsv"); err != nil || out != "job-2\njob-1\n" {
		t.Errorf("list-jobs = %q, %v", out, err)
	}
	if _, _, err = f.berth(t, "batch-endpoint", "delete", "-n", "bep", "-y"); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range f.requests() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	wantPaths := []string{"GET /batch-endpoints", "GET /batch-endpoints/bep", "GET /jobs?endpoint=bep", "DELETE /batch-endpoints/bep"}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestBatchEndpointInvokeUploadsLocalInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	write(t, filepath.Join(dir, "a.csv"), "x\n1\n")
	digest, err := archive.DigestContext(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t, map[string]answer{
		"POST /artifacts":                {body: `{"digest":"` + digest + `","size":2048}`},
		"POST /batch-endpoints/bep/jobs": {status: http.StatusCreated, body: jobRunning},
	})
	out, stderr, err := f.berth(t, "batch-endpoint", "invoke", "-n", "bep", "--input", dir, "-d", "blue",
		"--job-name", "job-1", "-c", "2", "-m", "5", "--set", "output_file_name=out.csv", "--set", "retry_settings.max_retries=0",
		"--set", "retry_settings.timeout=60", "--set", "error_threshold=10", "--query", "name", "-o", "tsv")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if out != "job-1\n" {
		t.Errorf("stdout = %q, want the job name", out)
	}
	if !strings.Contains(stderr, "Uploading input "+dir) {
		t.Errorf("stderr = %q, want the upload progress", stderr)
	}
	body := `{"deployment":"blue","input":{"type":"uri_folder","artifact":"` + digest + `","local_path":"` + dir + `"},"name":"job-1",` +
		`"overrides":{"instance_count":2,"mini_batch_size":5,"max_retries":0,"timeout":60,"error_threshold":10,"output_file_name":"out.csv"}}`
	want := []seen{
		{"HEAD", "/artifacts/" + digest, ""},
		{"POST", "/artifacts", "<binary>"},
		{"POST", "/batch-endpoints/bep/jobs", body},
	}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestBatchEndpointInvokeRemoteInputs(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"POST /batch-endpoints/bep/jobs": {status: http.StatusCreated, body: jobRunning}})
	local := filepath.Join(t.TempDir(), "one.csv")
	write(t, local, "x\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", "azureml:heart@latest"}, `{"input":{"type":"uri_folder","path":"azureml:heart@latest"}}`},
		{[]string{"--input", "https://example.com/data/x.csv", "--input-type", "uri_file", "--experiment-name", "x",
			"--output-path", "azureml://datastores/workspaceblobstore/paths/out"},
			`{"input":{"type":"uri_file","path":"https://example.com/data/x.csv"},"experiment_name":"x","output_path":"azureml://datastores/workspaceblobstore/paths/out"}`},
		{[]string{"--input", "azureml://datastores/workspaceblobstore/paths/in/"}, `{"input":{"type":"uri_folder","path":"azureml://datastores/workspaceblobstore/paths/in/"}}`},
	} {
		before := len(f.requests())
		if _, stderr, err := f.berth(t, append([]string{"batch-endpoint", "invoke", "-n", "bep"}, tc.args...)...); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr)
		}
		got := f.requests()[before:]
		if diff := cmp.Diff([]seen{{"POST", "/batch-endpoints/bep/jobs", tc.want}}, got); diff != "" {
			t.Errorf("%v: requests (-want +got):\n%s", tc.args, diff)
		}
	}
	// Bad flags fail before any request.
	before := len(f.requests())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", filepath.Join(t.TempDir(), "missing")}, "no such local file or folder"},
		{[]string{"--input", "azureml:d@latest", "--input-type", "mltable"}, "use uri_folder or uri_file"},
		{[]string{"--input", "azureml:d@latest", "--set", "logging_level=debug"}, "a job overrides only"},
		{[]string{"--input", "azureml:d@latest", "--set", "error_threshold=x"}, "is not an integer"},
	} {
		_, stderr, err := f.berth(t, append([]string{"batch-endpoint", "invoke", "-n", "bep"}, tc.args...)...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: err = %v, stderr = %q; want %q", tc.args, err, stderr, tc.want)
		}
	}
	if n := len(f.requests()) - before; n != 0 {
		t.Errorf("bad flags sent %d requests", n)
	}
}

func TestBatchDeploymentCreateUploads(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "model", "model.pkl"), "weights")
	write(t, filepath.Join(dir, "code", "batch_driver.py"), "def init(): pass\ndef run(mb): return mb\n")
	write(t, filepath.Join(dir, "conda.yml"), "dependencies:\n  - python=3.11\n")
	file := filepath.Join(dir, "deployment.yml")
	write(t, file, `name: blue
endpoint_name: bep
type: model
model:
  path: model
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: conda.yml
compute: azureml:cpu
resources:
  instance_count: 1
settings:
  mini_batch_size: 10
`)
	modelDigest, _ := archive.DigestContext(t.Context(), filepath.Join(dir, "model"))
	codeDigest, _ := archive.DigestContext(t.Context(), filepath.Join(dir, "code"))
	f := newFakeServer(t, map[string]answer{
		"GET /batch-endpoints/bep":                  {body: batchEPView},
		"HEAD /artifacts/" + modelDigest:            {},
		"POST /artifacts":                           {body: `{"digest":"` + codeDigest + `","size":1024}`},
		"PUT /batch-endpoints/bep/deployments/blue": {body: batchDepView},
	})
	out, stderr, err := f.berth(t, "batch-deployment", "create", "-f", file, "--set-default", "--skip-script-validation", "-o", "table")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "blue  bep            Succeeded           azureml:cpu") {
		t.Errorf("stdout = %q", out)
	}
	if !strings.Contains(stderr, "Using model") || !strings.Contains(stderr, "Uploading code") {
		t.Errorf("stderr = %q, want the model reused and the code uploaded", stderr)
	}
	got := f.requests()
	var paths []string
	for _, r := range got {
		paths = append(paths, r.Method+" "+r.Path)
	}
	wantPaths := []string{"GET /batch-endpoints/bep", "HEAD /artifacts/" + modelDigest, "HEAD /artifacts/" + codeDigest,
		"POST /artifacts", "PUT /batch-endpoints/bep/deployments/blue"}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	put := jsonBody(t, got[len(got)-1].Body)
	want := map[string]any{"model_artifact": modelDigest, "code_artifact": codeDigest, "set_default": true,
		"spec.name": "blue", "spec.compute": "azureml:cpu",
		"spec.environment.conda_file": map[string]any{"dependencies": []any{"python=3.11"}}}
	if diff := cmp.Diff(want, pick(put, "model_artifact", "code_artifact", "set_default", "spec.name", "spec.compute", "spec.environment.conda_file")); diff != "" {
		t.Errorf("put (-want +got):\n%s", diff)
	}
}

func TestBatchDeploymentReadVerbs(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /batch-endpoints/bep/deployments/blue":    {body: batchDepView},
		"GET /batch-endpoints/bep/deployments":         {body: "[" + batchDepView + "]"},
		"DELETE /batch-endpoints/bep/deployments/blue": {status: http.StatusNoContent},
		"GET /jobs": {body: jobsListTwo},
	})
	for _, args := range [][]string{
		{"show", "-e", "bep", "-n", "blue"},
		{"list", "--endpoint", "bep"},
		{"list-jobs", "-e", "bep", "-n", "blue"},
		{"delete", "-e", "bep", "-n", "blue", "--yes"},
	} {
		if _, stderr, err := f.berth(t, append([]string{"batch-deployment"}, args...)...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
	}
	var paths []string
	for _, r := range f.requests() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	want := []string{"GET /batch-endpoints/bep/deployments/blue", "GET /batch-endpoints/bep/deployments",
		"GET /jobs?deployment=blue&endpoint=bep", "DELETE /batch-endpoints/bep/deployments/blue"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestJobShowListCancel(t *testing.T) {
	studio := `{"name":"job-9","status":"Running","services":{"Studio":{"endpoint":"http://127.0.0.1:1/ui/jobs/job-9"}}}`
	f := newFakeServer(t, map[string]answer{
		"GET /jobs/job-1":         {body: jobRunning},
		"GET /jobs/job-9":         {body: studio},
		"GET /jobs":               {body: jobsListTwo},
		"POST /jobs/job-1/cancel": {body: `{"name":"job-1","status":"CancelRequested"}`},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "-n", "job-1", "--query", "status", "-o", "tsv"}, "Running\n"},
		{[]string{"show", "-n", "job-1", "--web"}, f.url + "/#/jobs/job-1\n"},
		{[]string{"show", "-n", "job-9", "--web"}, "http://127.0.0.1:1/ui/jobs/job-9\n"},
		{[]string{"list", "--query", "[].name", "-o", "tsv"}, "job-2\njob-1\n"},
		{[]string{"list", "--max-results", "1", "--query", "[].name", "-o", "tsv"}, "job-2\n"},
		{[]string{"list", "--max-results", "1", "--all-results", "--query", "[].name", "-o", "tsv"}, "job-2\njob-1\n"},
		{[]string{"list", "-o", "table"}, "NAME   STATUS     ENDPOINT NAME  DEPLOYMENT NAME  EXPERIMENT NAME  START TIME\n" +
			"job-2  Completed  bep            blue                              \n" +
			"job-1  Failed     bep            blue                              \n"},
		{[]string{"cancel", "-n", "job-1", "--query", "status", "-o", "tsv"}, "CancelRequested\n"},
	} {
		out, stderr, err := f.berth(t, append([]string{"job"}, tc.args...)...)
		if err != nil {
			t.Errorf("%v: %v\n%s", tc.args, err, stderr)
			continue
		}
		if diff := cmp.Diff(tc.want, out); diff != "" {
			t.Errorf("%v: stdout (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestJobDownload(t *testing.T) {
	tarOf := func(files map[string]string) string {
		src := t.TempDir()
		for name, content := range files {
			write(t, filepath.Join(src, name), content)
		}
		var b strings.Builder
		if err := archive.WriteTar(&b, src); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	f := newFakeServer(t, map[string]answer{
		"GET /jobs/job-1":               {body: `{"name":"job-1","status":"Completed","outputs":{"score":{"type":"uri_folder","path":"x"}}}`},
		"GET /jobs/job-1/outputs/score": {body: tarOf(map[string]string{"predictions.csv": "a.csv 1\n"})},
		"GET /jobs/job-1/outputs/logs":  {body: tarOf(map[string]string{"logs/user/error.txt": "none\n", "azureml-logs/70_driver_log.txt": "done\n"})},
	})
	dst := t.TempDir()
	if _, stderr, err := f.berth(t, "job", "download", "-n", "job-1", "--output-name", "score", "--download-path", dst); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "named-outputs", "score", "predictions.csv")); err != nil || string(got) != "a.csv 1\n" {
		t.Errorf("predictions.csv = %q, %v", got, err)
	}
	all := t.TempDir()
	if _, stderr, err := f.berth(t, "job", "download", "-n", "job-1", "--all", "--download-path", all); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for path, want := range map[string]string{
		"named-outputs/score/predictions.csv":      "a.csv 1\n",
		"artifacts/logs/user/error.txt":            "none\n",
		"artifacts/azureml-logs/70_driver_log.txt": "done\n",
	} {
		if got, err := os.ReadFile(filepath.Join(all, path)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
}

func TestBatchFlagErrorsBeforeConnecting(t *testing.T) {
	f := newFakeServer(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compute", "create", "--type", "amlcompute"}, "--name is required"},
		{[]string{"batch-endpoint", "create"}, "--name is required"},
		{[]string{"batch-endpoint", "update"}, "--name is required"},
		{[]string{"batch-endpoint", "update", "-n", "bep", "--defaults", "model=x"}, "write it as deployment_name=<deployment>"},
		{[]string{"batch-deployment", "create", "-e", "bep"}, `required flag(s) "file" not set`},
		{[]string{"batch-endpoint", "invoke", "-n", "bep"}, `required flag(s) "input" not set`},
		{[]string{"job", "download", "-n", "j", "--all", "--output-name", "score"}, "give --output-name or --all, not both"},
	} {
		_, stderr, err := f.berth(t, tc.args...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: err = %v, stderr = %q; want %q", tc.args, err, stderr, tc.want)
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("requests = %+v, want none", got)
	}
}
