//go:build unix

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const irisScript = `import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    global weights
    weights = np.array([0.1, 0.2, 0.3, 0.4])

@input_schema("data", NumpyParameterType(np.array([[5.1, 3.5, 1.4, 0.2]])))
@input_schema("scale", StandardPythonParameterType(1.0), optional=True)
@output_schema(StandardPythonParameterType([1.71]))
def run(data, scale=1.0):
    assert isinstance(data, np.ndarray), type(data)
    return (data @ weights * scale).round(4)
`

const pandasScript = `import pandas as pd
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType

def init():
    pass

@input_schema("rows", PandasParameterType(pd.DataFrame({"age": [30], "income": [1.5]})))
def run(rows):
    assert isinstance(rows, pd.DataFrame)
    return {"n": len(rows), "mean_income": float(rows["income"].mean())}
`

func requireDebianPython(t *testing.T, modules string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import "+modules).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have Debian's %s for /usr/bin/python3: %v", modules, err)
		}
		t.Skipf("Debian's %s is not installed for /usr/bin/python3: %v", modules, err)
	}
}

func scoreWithType(t *testing.T, s *server, key, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/endpoints/dataplane/score", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestInferenceSchemaNumpy(t *testing.T) {
	requireDebianPython(t, "numpy")
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	deployScript(t, s, "iris", irisScript, "", "--all-traffic")
	key, _ := s.keys("dataplane")

	status, body := scoreWithType(t, s, key, "application/json", `{"data": [[5.1, 3.5, 1.4, 0.2], [1, 1, 1, 1]], "scale": 2}`)
	if status != 200 || strings.ReplaceAll(body, " ", "") != "[3.42,2.0]" {
		t.Fatalf("decorated run: %d %s", status, body)
	}
	if status, body := scoreWithType(t, s, key, "text/plain", `{"data": [[1, 2, 3, 4]]}`); status != 415 {
		t.Fatalf("text/plain: %d %s, want 415", status, body)
	}
	if status, body := scoreWithType(t, s, key, "application/json", `[1, 2]`); status != 400 || !strings.Contains(body, "JSON dictionary") {
		t.Fatalf("JSON list: %d %s, want 400", status, body)
	}
	if status, body := scoreWithType(t, s, key, "application/json", `{"data": [[1, 2]]}`); status != 400 {
		t.Fatalf("wrong shape: %d %s, want 400", status, body)
	}

	var ep struct {
		OpenAPIURI string `json:"openapi_uri"`
	}
	s.okJSON(&ep, "online-endpoint", "show", "-n", "dataplane")
	for _, version := range []string{"2", "3"} {
		req, _ := http.NewRequest(http.MethodGet, ep.OpenAPIURI+"?version="+version, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(b, &doc) != nil {
			t.Fatalf("swagger v%s: %d %s", version, resp.StatusCode, b)
		}
		var input any
		if version == "2" {
			input = doc["definitions"].(map[string]any)["ServiceInput"]
		} else {
			input = doc["components"].(map[string]any)["schemas"].(map[string]any)["ServiceInput"]
		}
		example, _ := json.Marshal(input.(map[string]any)["example"])
		if !strings.Contains(string(example), `"data":[[5.1,3.5,1.4,0.2]]`) {
			t.Fatalf("swagger v%s ServiceInput example is %s", version, example)
		}
	}
}

func TestInferenceSchemaPandas(t *testing.T) {
	requireDebianPython(t, "pandas")
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	deployScript(t, s, "frame", pandasScript, "", "--all-traffic")
	key, _ := s.keys("dataplane")
	status, body := scoreWithType(t, s, key, "application/json", `{"rows": [{"age": 40, "income": 2}, {"age": 50, "income": 4}]}`)
	if status != 200 || !strings.Contains(body, `"mean_income": 3.0`) || !strings.Contains(body, `"n": 2`) {
		t.Fatalf("pandas input: %d %s", status, body)
	}
	if status, body := scoreWithType(t, s, key, "application/json", `{"rows": [{"age": 40}]}`); status != 400 || !strings.Contains(body, "income") {
		t.Fatalf("missing column: %d %s, want 400 naming it", status, body)
	}
}
