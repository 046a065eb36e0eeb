package spec

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
)

func TestLoadDeploymentAzureSample(t *testing.T) {
	d, err := LoadDeployment(filepath.Join("testdata", "blue-deployment.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	want := &Deployment{
		Schema:            "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
		Name:              "blue",
		EndpointName:      "my-endpoint",
		Model:             &Model{Path: filepath.Join(abs, "model"), Type: "custom_model"},
		CodeConfiguration: &CodeConfiguration{Code: filepath.Join(abs, "onlinescoring"), ScoringScript: "score.py"},
		Environment:       &Environment{CondaFile: filepath.Join(abs, "model", "m.pkl"), Image: "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"},
		InstanceType:      "Standard_DS3_v2",
		InstanceCount:     1,
		RequestSettings:   RequestSettings{RequestTimeoutMs: 5000, MaxConcurrentRequestsPerInstance: 1},
		LivenessProbe:     Probe{InitialDelay: 10, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 30},
		ReadinessProbe:    Probe{InitialDelay: 10, Period: 10, Timeout: 2, SuccessThreshold: 1, FailureThreshold: 30},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("deployment (-want +got):\n%s", diff)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d, err := LoadDeployment(filepath.Join("testdata", "blue-deployment.yml"), []string{"model=azureml:mymodel:1", "environment_variables.WORKER_COUNT=2"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Model.IsRef() || d.Model.Ref != "azureml:mymodel:1" || d.EnvironmentVariables["WORKER_COUNT"] != "2" {
		t.Fatalf("sets not applied: %+v %v", d.Model, d.EnvironmentVariables)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeDeployment("request body", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back); diff != "" {
		t.Fatalf("round trip (-before +after):\n%s", diff)
	}
}

// details returns target → message of a BadArgument error.
func details(t *testing.T, err error) map[string]string {
	t.Helper()
	de := diag.As(err)
	if de == nil || de.Code != diag.BadArgument {
		t.Fatalf("want a BadArgument diag.Error, got %v", err)
	}
	out := map[string]string{}
	for _, d := range de.Details {
		out[d.Target] = d.Message
	}
	return out
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := DecodeDeployment("deployment.yml", []byte(`
name: b
endpoint_name: 9lives
instance_count: 60
request_settings:
  request_timeout_ms: 200000
readiness_probe:
  period: -1
model:
  type: onnx
`), nil)
	got := details(t, err)
	for _, field := range []string{"name", "endpoint_name", "instance_count", "request_settings.request_timeout_ms", "readiness_probe.period", "model.path", "model.type"} {
		if got[field] == "" {
			t.Errorf("no problem reported for %s; got %v", field, got)
		}
	}
	if !strings.Contains(got["request_settings.request_timeout_ms"], "200000") || !strings.Contains(err.Error(), "deployment.yml") {
		t.Errorf("messages should name the value and the file: %v", err)
	}
}

func TestUnknownFieldsListed(t *testing.T) {
	_, err := DecodeDeployment("d.yml", []byte(`
name: blue
endpoint_name: ep1
instance_cout: 2
request_settings:
  timeout: 5
model:
  path: x
  colour: red
`), nil)
	de := diag.As(err)
	if de == nil || !strings.Contains(de.Error(), "instance_cout") || !strings.Contains(de.Error(), "request_settings.timeout") || !strings.Contains(de.Error(), "model.colour") {
		t.Fatalf("unknown fields not all listed: %v", err)
	}
}

func TestTypeErrorsNameTheField(t *testing.T) {
	got := details(t, func() error {
		_, err := DecodeDeployment("d.yml", []byte("name: blue\nendpoint_name: ep1\ninstance_count: many\nrequest_settings: 5\n"), nil)
		return err
	}())
	if !strings.Contains(got["instance_count"], `"many"`) || got["request_settings"] == "" {
		t.Fatalf("type errors: %v", got)
	}
}

func TestSetsOverrideAndCreate(t *testing.T) {
	d, err := DecodeDeployment("d.yml", []byte("name: blue\nendpoint_name: ep1\n"), []string{
		"name=green", "request_settings.request_timeout_ms=900", "liveness_probe.initial_delay=1", "tags.team=ml",
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "green" || d.RequestSettings.RequestTimeoutMs != 900 || d.LivenessProbe.InitialDelay != 1 || d.Tags["team"] != "ml" {
		t.Fatalf("sets: %+v", d)
	}
	if _, err := DecodeDeployment("d.yml", []byte("name: blue\n"), []string{"name.x=1"}); err == nil {
		t.Fatal("setting a field below a string should fail")
	}
}

func TestTraffic(t *testing.T) {
	tr, err := ParseTraffic("blue=90 green=10")
	if err != nil || tr["blue"] != 90 || tr["green"] != 10 {
		t.Fatalf("parse: %v %v", tr, err)
	}
	if err := ValidateTraffic(tr); err != nil {
		t.Fatal(err)
	}
	if err := ValidateTraffic(map[string]int{"blue": 0, "green": 0}); err != nil {
		t.Fatalf("0 total is allowed: %v", err)
	}
	if err := ValidateTraffic(map[string]int{"blue": 50, "green": 40}); err == nil || diag.As(err).Code != diag.BadArgument || !strings.Contains(err.Error(), "90") {
		t.Fatalf("sum 90: %v", err)
	}
	if _, err := ParseTraffic("blue:90"); err == nil {
		t.Fatal("blue:90 should not parse")
	}
}

func TestEndpointDefaultsAndNames(t *testing.T) {
	e, err := DecodeEndpoint("e.yml", []byte("$schema: x\nname: my-endpoint\nauth_mode: Key\n"), nil)
	if err != nil || e.AuthMode != "key" {
		t.Fatalf("%+v %v", e, err)
	}
	for _, bad := range []string{"ab", "1abc", "abc-", "a--b", strings.Repeat("a", 33), "a_b"} {
		if ValidateName("name", bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := DecodeEndpoint("e.yml", []byte("name: ep1\nmirror_traffic: {green: 60}\n"), nil); err == nil {
		t.Fatal("mirror 60% accepted")
	}
}

func TestInstanceCountZeroAndRequestsOverLimits(t *testing.T) {
	got := details(t, func() error {
		_, err := DecodeDeployment("d.yml", []byte(`name: blue
endpoint_name: ep1
instance_count: 0
resources:
  requests: {cpu: "2", memory: 4Gi}
  limits: {cpu: 1500m, memory: 8Gi}
`), nil)
		return err
	}())
	if !strings.Contains(got["instance_count"], "got 0") || !strings.Contains(got["resources.requests.cpu"], "greater than limits") || got["resources.requests.memory"] != "" {
		t.Fatalf("problems: %v", got)
	}
	if _, err := DecodeDeployment("d.yml", []byte("name: blue\nendpoint_name: ep1\ninstance_count: 51\n"), nil); err == nil || !strings.Contains(err.Error(), "51") {
		t.Fatalf("instance_count 51: %v", err)
	}
}
