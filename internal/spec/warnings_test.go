package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// warnedFields returns the field each warning names (the text before the first colon).
func warnedFields(warnings []string) []string {
	out := []string{}
	for _, w := range warnings {
		field, _, _ := strings.Cut(w, ":")
		out = append(out, field)
	}
	return out
}

func TestDeploymentWarnings(t *testing.T) {
	const base = "name: blue\nendpoint_name: shop\n"
	const complete = base + "instance_type: Standard_DS3_v2\nenvironment: azureml:env:1\n"
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"complete managed deployment", complete, []string{}},
		{"custom model without instance_type or environment", base + "model: {path: ./m}\n", []string{"environment", "instance_type"}},
		{"no model at all still needs an environment", base + "instance_type: Standard_DS3_v2\n", []string{"environment"}},
		{"inline MLflow model needs no environment", base + "instance_type: X\nmodel: {path: ./m, type: mlflow_model}\n", []string{}},
		{"inline Triton model needs no environment", base + "instance_type: X\nmodel: {path: ./m, type: triton_model}\n", []string{}},
		{"registered model: the server decides", base + "instance_type: X\nmodel: azureml:m@latest\n", []string{}},
		{"kubernetes falls back to the cluster's instance type", base + "type: kubernetes\nenvironment: azureml:env:1\n", []string{}},
		{"defaults of no-effect fields do not warn", complete + "app_insights_enabled: false\negress_public_network_access: enabled\nscale_settings: {type: default}\n", []string{}},
		{"app insights on", complete + "app_insights_enabled: true\n", []string{"app_insights_enabled"}},
		{"egress disabled", complete + "egress_public_network_access: disabled\n", []string{"egress_public_network_access"}},
		{"data collector with nothing enabled", complete + "data_collector: {sampling_rate: 0.5}\n", []string{"data_collector"}},
		{"data collector collects: no warning", complete + "data_collector: {collections: {model_inputs: {enabled: 'True'}}}\n", []string{}},
		{"data collector on kubernetes", complete + "type: kubernetes\ndata_collector: {collections: {request: {enabled: true}}}\n", []string{"data_collector"}},
		{"autoscale does not warn: Berth autoscales", complete + "scale_settings: {type: target_utilization, max_instances: 3}\n", []string{}},
		{"scale bounds without a type", complete + "scale_settings: {min_instances: 2}\n", []string{"scale_settings"}},
		{"properties do not warn", complete + "properties: {owner: me}\n", []string{}},
		{"deprecated max_queue_wait_ms does not warn", complete + "request_settings: {max_queue_wait_ms: 100}\n", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDeployment("test.yml", []byte(tt.yml), nil)
			if err != nil {
				t.Fatal(err)
			}
			w := d.Warnings()
			if diff := cmp.Diff(tt.want, warnedFields(w)); diff != "" {
				t.Errorf("warned fields (-want +got):\n%s\nwarnings: %q", diff, w)
			}
			for _, msg := range w {
				if !strings.Contains(msg, "Azure") {
					t.Errorf("warning %q should say what Azure does with the field", msg)
				}
			}
		})
	}
}

func TestEndpointWarnings(t *testing.T) {
	for yml, want := range map[string][]string{
		"name: shop\n": {},
		"name: shop\nidentity: {type: user_assigned, user_assigned_identities: [id1]}\n": {"identity"},
		"name: shop\nproperties: {a: b}\n":                                               {},
	} {
		e, err := DecodeEndpoint("test.yml", []byte(yml), nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, warnedFields(e.Warnings())); diff != "" {
			t.Errorf("%q: warned fields (-want +got):\n%s", yml, diff)
		}
	}
}

// TestNoEffectFieldsAreStored checks that the fields Berth only warns about survive the
// JSON the server stores and shows.
func TestNoEffectFieldsAreStored(t *testing.T) {
	yml := "name: blue\nendpoint_name: shop\ninstance_type: X\nenvironment: azureml:env:1\nproperties: {owner: me}\n" +
		"app_insights_enabled: true\negress_public_network_access: disabled\ndata_collector: {sampling_rate: 0.5}\n" +
		"scale_settings: {type: target_utilization, max_instances: 3}\n"
	d, err := DecodeDeployment("test.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"properties", "app_insights_enabled", "egress_public_network_access", "data_collector", "scale_settings"} {
		if _, ok := stored[field]; !ok {
			t.Errorf("stored spec lacks %s: %s", field, b)
		}
	}
	back, err := DecodeDeployment("stored", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Warnings(), back.Warnings()); diff != "" {
		t.Errorf("warnings change after a round trip (-before +after):\n%s", diff)
	}

	e, err := DecodeEndpoint("test.yml", []byte("name: shop\nidentity: {type: system_assigned}\nproperties: {a: b}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(eb), `"identity":{"type":"system_assigned"}`) || !strings.Contains(string(eb), `"properties":{"a":"b"}`) {
		t.Errorf("stored endpoint spec lacks identity or properties: %s", eb)
	}
}

func TestMaxQueueWaitUnsetByDefault(t *testing.T) {
	d, err := DecodeDeployment("test.yml", []byte("name: blue\nendpoint_name: shop\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.RequestSettings.MaxQueueWaitMs != 0 {
		t.Errorf("max_queue_wait_ms defaults to %d, want 0 (no limit of its own)", d.RequestSettings.MaxQueueWaitMs)
	}
	d, err = DecodeDeployment("test.yml", []byte("name: blue\nendpoint_name: shop\nrequest_settings: {max_queue_wait_ms: 250}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.RequestSettings.MaxQueueWaitMs != 250 {
		t.Errorf("max_queue_wait_ms %d, want the 250 the spec sets", d.RequestSettings.MaxQueueWaitMs)
	}
}

func TestScoringScriptInsideCode(t *testing.T) {
	for script, ok := range map[string]bool{
		"score.py": true, "./score.py": true, "src/score.py": true, "src/../score.py": true,
		"../score.py": false, "src/../../score.py": false, "/abs/score.py": false, "..": false,
	} {
		yml := "name: blue\nendpoint_name: shop\ncode_configuration: {code: ./src, scoring_script: '" + script + "'}\n"
		_, err := DecodeDeployment("test.yml", []byte(yml), nil)
		if got := err == nil; got != ok {
			t.Errorf("scoring_script %q: error %v, want ok=%v", script, err, ok)
			continue
		}
		if err != nil {
			if msg := details(t, err)["code_configuration.scoring_script"]; !strings.Contains(msg, "code_configuration.code") {
				t.Errorf("scoring_script %q: message %q should name the code folder", script, msg)
			}
		}
	}
}
