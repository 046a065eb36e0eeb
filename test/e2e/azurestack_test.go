//go:build unix

package e2e

import (
	"strings"
	"testing"
)

// schemaScript is written against Azure's serving stack: inference-schema decorators
// and azureml.contrib.services, none of which is installed in the environment.
const schemaScript = `from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@input_schema("data", StandardPythonParameterType([1, 2]))
@output_schema(StandardPythonParameterType({"sum": 3}))
def run(data):
    return AMLResponse({"sum": sum(data)}, 200)
`

// TestAzureServingStack deploys a conda file that lists Azure's serving packages with
// no package index reachable: Berth provides them, so pip never runs.
func TestAzureServingStack(t *testing.T) {
	s := startServer(t, "", "PIP_INDEX_URL=http://127.0.0.1:9/simple")
	conda := "environment:\n  conda_file:\n    name: model-env\n    channels: [conda-forge]\n    dependencies:\n" +
		"      - python=3\n      - pip\n      - pip:\n        - azureml-inference-server-http==1.4.1\n        - inference-schema[numpy-support]\n"
	deployScript(t, s, "azure", schemaScript, conda, "--all-traffic")

	if state, code, _, msg := deploymentError(t, s, "dataplane", "azure"); state != "Succeeded" {
		t.Fatalf("provisioning_state = %q: %s %s", state, code, msg)
	}
	key, _ := s.keys("dataplane")
	if status, _, body := s.score("dataplane", key, `{"data": [2, 3]}`); status != 200 || !strings.Contains(body, `"sum": 5`) {
		t.Fatalf("score: %d %s", status, body)
	}
	si := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "azure", "--container", "storage-initializer")
	const line = "provided by Berth, not installed: azureml-inference-server-http==1.4.1, inference-schema[numpy-support]"
	if !strings.Contains(si, line) || strings.Contains(si, "installing") {
		t.Fatalf("storage-initializer log:\n%s", si)
	}
}
