package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
)

func intp(n int) *int { return &n }

func TestBatchEndpointDefaultsAndAuth(t *testing.T) {
	e, err := DecodeBatchEndpoint("e.yml", []byte("name: my-batch\ndefaults:\n  deployment_name: blue\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &BatchEndpoint{Name: "my-batch", AuthMode: "aad_token", Defaults: BatchDefaults{DeploymentName: "blue"}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Fatalf("endpoint (-want +got):\n%s", diff)
	}
	got := details(t, func() error {
		_, err := DecodeBatchEndpoint("e.yml", []byte("name: x\nauth_mode: key\ndefaults: {deployment_name: a--b}\n"), nil)
		return err
	}())
	if !strings.Contains(got["auth_mode"], "batch endpoints support only auth_mode: aad_token") || got["name"] == "" || got["defaults.deployment_name"] == "" {
		t.Fatalf("problems: %v", got)
	}
	if _, err := DecodeBatchEndpoint("e.yml", []byte("name: my-batch\nauth_mode: AADToken\n"), nil); err != nil {
		t.Fatalf("AADToken: %v", err)
	}
	if _, err := DecodeBatchEndpoint("e.yml", []byte("name: my-batch\ntraffic: {a: 1}\n"), nil); err == nil || !strings.Contains(err.Error(), "traffic") {
		t.Fatalf("unknown field traffic: %v", err)
	}
	e, err = DecodeBatchEndpoint("e.yml", []byte("name: my-batch\n"), []string{"defaults.deployment_name=green", "tags.team=ml"})
	if err != nil || e.Defaults.DeploymentName != "green" || e.Tags["team"] != "ml" {
		t.Fatalf("sets: %+v %v", e, err)
	}
}

const batchModern = `$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: mnist-torch
endpoint_name: mnist-batch
type: model
model: azureml:mnist-classifier-torch@latest
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment: azureml:torch-env:1
compute: azureml:batch-cluster
`

func TestBatchDeploymentDefaults(t *testing.T) {
	d, err := DecodeBatchDeployment("d.yml", []byte(batchModern), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &BatchDeployment{
		Schema:            "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json",
		Name:              "mnist-torch",
		EndpointName:      "mnist-batch",
		Type:              "model",
		Model:             &Model{Ref: "azureml:mnist-classifier-torch@latest"},
		CodeConfiguration: &CodeConfiguration{Code: "code", ScoringScript: "batch_driver.py"},
		Environment:       &Environment{Ref: "azureml:torch-env:1"},
		Compute:           "azureml:batch-cluster",
		Resources:         BatchResources{InstanceCount: 1},
		Settings: BatchSettings{
			MaxConcurrencyPerInstance: 1, MiniBatchSize: 10, OutputAction: "append_row",
			OutputFileName: "predictions.csv", RetrySettings: RetrySettings{MaxRetries: intp(3), Timeout: 30},
			ErrorThreshold: intp(-1), LoggingLevel: "info",
		},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("deployment (-want +got):\n%s", diff)
	}
	// Defaults are stable through the JSON the server stores.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBatchDeployment("request body", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back); diff != "" {
		t.Fatalf("round trip (-before +after):\n%s", diff)
	}
	// 0 retries and a 0 error threshold are real settings, not "take the default".
	d, err = DecodeBatchDeployment("d.yml", []byte(batchModern+"settings:\n  retry_settings: {max_retries: 0}\n  error_threshold: 0\n"), nil)
	if err != nil || *d.Settings.RetrySettings.MaxRetries != 0 || *d.Settings.ErrorThreshold != 0 || d.Settings.RetrySettings.Timeout != 30 {
		t.Fatalf("explicit zeros: %+v %v", d, err)
	}
}

func TestBatchDeploymentLegacyLayout(t *testing.T) {
	legacy := `name: legacy
endpoint_name: mnist-batch
model:
  path: model
code_configuration: {code: code, scoring_script: score.py}
compute: batch-cluster
resources: {instance_count: 2}
max_concurrency_per_instance: 4
mini_batch_size: 5
output_action: summary_only
output_file_name: out.csv
retry_settings: {max_retries: 1, timeout: 300}
error_threshold: 10
logging_level: debug
environment_variables: {A: "1"}
settings:
  mini_batch_size: 7
`
	d, err := DecodeBatchDeployment("d.yml", []byte(legacy), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := BatchSettings{
		MaxConcurrencyPerInstance: 4, MiniBatchSize: 7, OutputAction: "summary_only", OutputFileName: "out.csv",
		RetrySettings: RetrySettings{MaxRetries: intp(1), Timeout: 300}, ErrorThreshold: intp(10),
		LoggingLevel: "debug", EnvironmentVariables: map[string]string{"A": "1"},
	}
	if diff := cmp.Diff(want, d.Settings); diff != "" {
		t.Fatalf("settings (-want +got):\n%s", diff)
	}
	if d.Resources.InstanceCount != 2 || d.Model.Type != "custom_model" || d.Type != "" {
		t.Fatalf("deployment: %+v", d)
	}
	// --set reaches both forms.
	d, err = DecodeBatchDeployment("d.yml", []byte(legacy), []string{"settings.mini_batch_size=9", "logging_level=warning"})
	if err != nil || d.Settings.MiniBatchSize != 9 || d.Settings.LoggingLevel != "warning" {
		t.Fatalf("sets: %+v %v", d.Settings, err)
	}
	// With a type, settings at the root are an error naming where they belong.
	got := details(t, func() error {
		_, err := DecodeBatchDeployment("d.yml", []byte(batchModern+"mini_batch_size: 5\nmini_batch_sise: 3\n"), nil)
		return err
	}())
	if !strings.Contains(got["mini_batch_size"], "settings.mini_batch_size") || !strings.Contains(got["mini_batch_sise"], "unknown fields") {
		t.Fatalf("typed deployment with root settings: %v", got)
	}
	// Unknown keys stay unknown in the legacy layout too, with their full path.
	_, err = DecodeBatchDeployment("d.yml", []byte("name: abc\nendpoint_name: abc\nmodel: azureml:m:1\ncompute: c1x\nretry_settings: {retries: 1}\nsettings: {colour: red}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "settings.retry_settings.retries") || !strings.Contains(err.Error(), "settings.colour") || !strings.Contains(err.Error(), "d.yml") {
		t.Fatalf("unknown fields: %v", err)
	}
}

func TestBatchDeploymentProblems(t *testing.T) {
	base := "name: blue\nendpoint_name: ep1\nmodel: azureml:m:1\ncompute: azureml:cpu-cluster\n"
	for _, tc := range []struct {
		name, yaml, field, want string
		sets                    []string
	}{
		{"name", "name: b\nendpoint_name: ep1\nmodel: azureml:m:1\ncompute: c1x\n", "name", "3 to 32", nil},
		{"endpoint name", "name: blue\nendpoint_name: 9x\nmodel: azureml:m:1\ncompute: c1x\n", "endpoint_name", "3 to 32", nil},
		{"type", base + "type: spark\n", "type", "model or pipeline", nil},
		{"pipeline", "name: blue\nendpoint_name: ep1\ntype: pipeline\ncomponent: azureml:hello@latest\n", "type", "pipeline component batch deployments are not supported yet: deploy a model (type: model) with a scoring script", nil},
		{"component on a model", base + "component: azureml:x@latest\n", "component", "pipeline", nil},
		{"model required", "name: blue\nendpoint_name: ep1\ncompute: c1x\n", "model", "is required", nil},
		{"model ref", base, "model", "azureml:<name>", []string{"model=m:1"}},
		{"compute required", "name: blue\nendpoint_name: ep1\nmodel: azureml:m:1\n", "compute", "berth compute create -n <name> --type amlcompute", nil},
		{"compute name", base, "compute", "azureml:<cluster>", []string{"compute=azureml:a_b"}},
		{"code without script", base + "code_configuration: {code: src}\n", "code_configuration.scoring_script", "is required", nil},
		{"script without code", base + "code_configuration: {scoring_script: s.py}\n", "code_configuration.code", "is required", nil},
		{"instance_count 0", base + "resources: {instance_count: 0}\n", "resources.instance_count", "must not be 0", nil},
		{"instance_count high", base + "resources: {instance_count: 1001}\n", "resources.instance_count", "got 1001", nil},
		{"concurrency", base + "settings: {max_concurrency_per_instance: 65}\n", "settings.max_concurrency_per_instance", "64 per instance", nil},
		{"concurrency 0", base + "settings: {max_concurrency_per_instance: 0}\n", "settings.max_concurrency_per_instance", "must not be 0", nil},
		{"mini batch", base + "settings: {mini_batch_size: -1}\n", "settings.mini_batch_size", "got -1", nil},
		{"mini batch huge", base + "settings: {mini_batch_size: 9223372036854775807}\n", "settings.mini_batch_size", "1000000", nil},
		{"mini batch overflow", base + "settings: {mini_batch_size: 99999999999999999999}\n", "settings.mini_batch_size", "64 bits", nil},
		{"retries", base + "settings: {retry_settings: {max_retries: 101}}\n", "settings.retry_settings.max_retries", "got 101", nil},
		{"retries negative", base + "settings: {retry_settings: {max_retries: -1}}\n", "settings.retry_settings.max_retries", "got -1", nil},
		{"timeout", base + "settings: {retry_settings: {timeout: 86401}}\n", "settings.retry_settings.timeout", "got 86401", nil},
		{"timeout 0", base + "settings: {retry_settings: {timeout: 0}}\n", "settings.retry_settings.timeout", "must not be 0", nil},
		{"error threshold", base + "settings: {error_threshold: -2}\n", "settings.error_threshold", "got -2", nil},
		{"error threshold high", base + "settings: {error_threshold: 2147483648}\n", "settings.error_threshold", "2147483647", nil},
		{"logging", base + "settings: {logging_level: verbose}\n", "settings.logging_level", "warning, info or debug", nil},
		{"output action", base + "settings: {output_action: append}\n", "settings.output_action", "append_row or summary_only", nil},
		{"output file folder", base + "settings: {output_file_name: out/p.csv}\n", "settings.output_file_name", "plain file name", nil},
		{"output file dots", base, "settings.output_file_name", "file name", []string{"settings.output_file_name=.."}},
		{"output file type", base + "settings: {output_file_name: [a]}\n", "settings.output_file_name", "must be a string", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBatchDeployment("d.yml", []byte(tc.yaml), tc.sets)
			got := details(t, err)
			if !strings.Contains(got[tc.field], tc.want) {
				t.Fatalf("%s: got %q, want it to contain %q; all: %v", tc.field, got[tc.field], tc.want, got)
			}
		})
	}
}

func TestBatchDeploymentEveryProblemAtOnce(t *testing.T) {
	_, err := DecodeBatchDeployment("d.yml", []byte(`name: b
endpoint_name: ep1
settings:
  mini_batch_size: 0
  output_action: merge
  retry_settings: {max_retries: 200}
`), nil)
	got := details(t, err)
	for _, field := range []string{"name", "model", "compute", "settings.mini_batch_size", "settings.output_action", "settings.retry_settings.max_retries"} {
		if got[field] == "" {
			t.Errorf("no problem for %s; got %v", field, got)
		}
	}
	if !strings.Contains(err.Error(), "d.yml") || !strings.Contains(err.Error(), "6 problems") {
		t.Errorf("message: %v", err)
	}
}

func TestBatchDeploymentValidateAfterEdit(t *testing.T) {
	d, err := DecodeBatchDeployment("d.yml", []byte(batchModern), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("valid deployment: %v", err)
	}
	d.Settings.MiniBatchSize = 0
	if de := diag.As(d.Validate()); de == nil || de.Code != diag.BadArgument || !strings.Contains(de.Message, "settings.mini_batch_size") {
		t.Fatalf("Validate: %v", de)
	}
}

func TestLoadBatchDeploymentResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"model/m.pkl", "code/score.py"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "deployment.yml")
	spec := "name: blue\nendpoint_name: ep1\nmodel: {path: model}\ncode_configuration: {code: code, scoring_script: score.py}\ncompute: azureml:cpu-cluster\nmini_batch_size: 3\n"
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadBatchDeployment(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Model.Path != filepath.Join(dir, "model") || d.CodeConfiguration.Code != filepath.Join(dir, "code") || d.Settings.MiniBatchSize != 3 {
		t.Fatalf("paths: %+v %+v", d.Model, d.CodeConfiguration)
	}
	_, err = LoadBatchDeployment(path, []string{"code_configuration.scoring_script=missing.py", "model.path=nope"})
	got := details(t, err)
	if !strings.Contains(got["code_configuration.scoring_script"], "set scoring_script to one of its Python files: score.py") ||
		!strings.Contains(got["model.path"], "does not exist") {
		t.Fatalf("missing files: %v", got)
	}
	if _, err := LoadBatchDeployment(filepath.Join(dir, "absent.yml"), nil); err == nil || !strings.Contains(err.Error(), "batch deployment file") {
		t.Fatalf("absent file: %v", err)
	}
}

func TestAsDeployment(t *testing.T) {
	d, err := DecodeBatchDeployment("d.yml", []byte(batchModern), []string{"settings.environment_variables.A=1", "resources.instance_count=3"})
	if err != nil {
		t.Fatal(err)
	}
	got := d.AsDeployment()
	want := &Deployment{
		Name: "mnist-torch", EndpointName: "mnist-batch", Model: d.Model, CodeConfiguration: d.CodeConfiguration,
		Environment: d.Environment, EnvironmentVariables: map[string]string{"A": "1"}, InstanceCount: 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("AsDeployment (-want +got):\n%s", diff)
	}
}

func TestComputeName(t *testing.T) {
	for ref, want := range map[string]string{"azureml:cpu-cluster": "cpu-cluster", "cpu-cluster": "cpu-cluster"} {
		if got, err := ComputeName(ref); err != nil || got != want {
			t.Errorf("ComputeName(%q) = %q, %v", ref, got, err)
		}
	}
	for _, bad := range []string{"", "azureml:", "azureml:a_b", "azureml:x"} {
		if _, err := ComputeName(bad); diag.As(err) == nil || diag.As(err).Code != diag.BadArgument {
			t.Errorf("ComputeName(%q): %v, want BadArgument", bad, err)
		}
	}
}

func TestCompute(t *testing.T) {
	c, err := DecodeCompute("c.yml", []byte("$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json\nname: cpu-cluster\ntype: AmlCompute\nsize: STANDARD_DS3_V2\nidle_time_before_scale_down: 120\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Compute{Schema: "https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json", Name: "cpu-cluster", Type: "amlcompute",
		Size: "STANDARD_DS3_V2", MaxInstances: 1, IdleTimeBeforeScaleDown: 120}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("compute (-want +got):\n%s", diff)
	}
	c, err = DecodeCompute("c.yml", []byte("name: cpu-cluster\ntype: amlcompute\n"), []string{"max_instances=4", "min_instances=2"})
	if err != nil || c.MaxInstances != 4 || c.MinInstances != 2 {
		t.Fatalf("sets: %+v %v", c, err)
	}
	for _, tc := range []struct{ yaml, field, want string }{
		{"name: cpu-cluster\ntype: kubernetes\n", "kubeconfig", "a Kubernetes compute needs its cluster's kubeconfig: `berth compute attach -n cpu-cluster --type kubernetes --kubeconfig <file> [--namespace <ns>]`"},
		{"name: k8s\ntype: Kubernetes\nnamespace: Bad_NS\n", "namespace", `"Bad_NS" is not a Kubernetes namespace name: lower-case letters, digits and '-' inside`},
		{"name: cpu-cluster\ntype: computeinstance\n", "type", "must be amlcompute"},
		{"name: cpu-cluster\ntype: amlcompute\nmin_instances: 3\nmax_instances: 2\n", "min_instances", "must not exceed max_instances"},
		{"name: cpu-cluster\ntype: amlcompute\nmax_instances: 1001\n", "max_instances", "got 1001"},
		{"name: cpu-cluster\ntype: amlcompute\nmax_instances: 0\n", "max_instances", "got 0"},
		{"name: cpu-cluster\ntype: amlcompute\nmin_instances: -1\n", "min_instances", "got -1"},
		{"name: cpu-cluster\ntype: amlcompute\ntier: premium\n", "tier", "dedicated or low_priority"},
		{"name: c\ntype: amlcompute\n", "name", "3 to 32"},
	} {
		got := details(t, func() error { _, err := DecodeCompute("c.yml", []byte(tc.yaml), nil); return err }())
		if !strings.Contains(got[tc.field], tc.want) {
			t.Errorf("%q: %s = %q, want %q (all %v)", tc.yaml, tc.field, got[tc.field], tc.want, got)
		}
	}
	if _, err := DecodeCompute("c.yml", []byte("name: cpu-cluster\ntype: amlcompute\nmax_nodes: 3\n"), nil); err == nil || !strings.Contains(err.Error(), "max_nodes") {
		t.Fatalf("unknown field: %v", err)
	}
	path := filepath.Join(t.TempDir(), "compute.yml")
	if err := os.WriteFile(path, []byte("name: gpu-cluster\ntype: amlcompute\nmax_instances: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadCompute(path, nil); err != nil || c.Name != "gpu-cluster" || c.MaxInstances != 2 {
		t.Fatalf("LoadCompute: %+v %v", c, err)
	}
}

func TestBatchEndpointLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "endpoint.yml")
	if err := os.WriteFile(path, []byte("name: my-batch\ndescription: d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e, err := LoadBatchEndpoint(path, []string{"description=e"}); err != nil || e.Description != "e" || e.AuthMode != "aad_token" {
		t.Fatalf("LoadBatchEndpoint: %+v %v", e, err)
	}
}

// FuzzDecodeBatchDeployment checks that DecodeBatchDeployment never panics, that a
// failure is one BadArgument diag.Error, and that an accepted deployment is within the
// limits and decodes again to itself from the JSON the server stores.
func FuzzDecodeBatchDeployment(f *testing.F) {
	f.Add([]byte(batchModern), "settings.mini_batch_size=3")
	f.Add([]byte("name: blue\nendpoint_name: ep1\nmodel: azureml:m:1\ncompute: c1x\nmini_batch_size: 2\nsettings: null\n"), "retry_settings.max_retries=0")
	f.Add([]byte("name: blue\nendpoint_name: ep1\nmodel: azureml:m:1\ncompute: c1x\nsettings: 5\nlogging_level: debug\n"), "x=1")
	f.Add([]byte("type: pipeline\n"), "settings.error_threshold=-1")
	f.Fuzz(func(t *testing.T, data []byte, set string) {
		d, err := DecodeBatchDeployment("fuzz.yml", data, []string{set})
		if err != nil {
			if de := diag.As(err); de == nil || de.Code != diag.BadArgument {
				t.Fatalf("error is not a BadArgument diag.Error: %T %v", err, err)
			}
			return
		}
		s := d.Settings
		if d.Resources.InstanceCount < 1 || s.MiniBatchSize < 1 || s.MaxConcurrencyPerInstance < 1 || s.RetrySettings.Timeout < 1 ||
			s.RetrySettings.MaxRetries == nil || *s.RetrySettings.MaxRetries < 0 || s.ErrorThreshold == nil || *s.ErrorThreshold < -1 ||
			fileNameProblem(s.OutputFileName) != "" {
			t.Fatalf("accepted a deployment outside the limits: %+v", d)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeBatchDeployment("json", b, nil)
		if err != nil {
			t.Fatalf("stored JSON does not decode: %v\n%s", err, b)
		}
		if diff := cmp.Diff(d, back); diff != "" {
			t.Fatalf("round trip (-before +after):\n%s", diff)
		}
	})
}
