//go:build unix

package e2e

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeMLflowModel writes an MLflow scikit-learn model folder (MLmodel + model.pkl) with
// Debian's scikit-learn, as mlflow.sklearn.save_model would lay it out.
func makeMLflowModel(t *testing.T, dir string) {
	t.Helper()
	script := `
import pickle, sys
import pandas as pd
from sklearn.linear_model import LinearRegression
X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "income": [1.0, 3.0, 2.0, 5.0]})
y = X["age"] * 2 + X["income"]
model = LinearRegression().fit(X, y)
with open(sys.argv[1] + "/model.pkl", "wb") as f:
    pickle.dump(model, f)
`
	writeFiles(t, dir, map[string]string{"mlflow-model/MLmodel": `artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.2
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: pickle
    sklearn_version: 1.2.1
mlflow_version: 2.9.2
signature:
  inputs: '[{"type": "double", "name": "age"}, {"type": "double", "name": "income"}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
`})
	out, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(dir, "mlflow-model")).CombinedOutput()
	if err != nil {
		t.Fatalf("make the model: %v\n%s", err, out)
	}
}

func TestMLflowNoCodeDeployment(t *testing.T) {
	requireDebianPython(t, "sklearn, pandas")
	dir := t.TempDir()
	makeMLflowModel(t, dir)
	writeFiles(t, dir, map[string]string{"dep.yml": "name: mlflow\nendpoint_name: dataplane\nmodel: {path: ./mlflow-model, type: mlflow_model}\ninstance_count: 1\n"})
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("online-endpoint", "create", "-n", "dataplane")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--all-traffic")
	key, _ := s.keys("dataplane")

	near := func(body string, want ...float64) bool {
		var got []float64
		if json.Unmarshal([]byte(body), &got) != nil || len(got) != len(want) {
			return false
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-6 {
				return false
			}
		}
		return true
	}
	status, _, body := s.score("dataplane", key, `{"input_data": {"columns": ["age", "income"], "index": [0, 1], "data": [[10, 1], [60, 5]]}}`)
	if status != 200 || !near(body, 21, 125) {
		t.Fatalf("split-orientation input: %d %s", status, body)
	}
	if status, _, body := s.score("dataplane", key, `[[10, 1]]`); status != 200 || !near(body, 21) {
		t.Fatalf("plain list of rows: %d %s", status, body)
	}
	status, _, body = s.score("dataplane", key, `{"input_data": {"columns": ["age", "salary"], "data": [[10, 1]]}}`)
	if status != 400 || !strings.Contains(body, "salary") {
		t.Fatalf("a wrong column name: %d %s, want 400 naming it", status, body)
	}
	if status, _, body := s.score("dataplane", key, `{"input_data": {"columns": ["age", "income"], "data": [["old", 1]]}}`); status != 400 || !strings.Contains(body, "age") {
		t.Fatalf("a wrong column type: %d %s, want 400 naming it", status, body)
	}

	// The same folder registered as an mlflow_model deploys by reference, still without code.
	s.ok("model", "create", "--name", "regression", "--path", filepath.Join(dir, "mlflow-model"), "--type", "mlflow_model")
	writeFiles(t, dir, map[string]string{"ref.yml": "name: byref\nendpoint_name: dataplane\nmodel: azureml:regression@latest\n"})
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "ref.yml"))
	if status, _, body := s.score("dataplane", key, `[[10, 1]]`, "azureml-model-deployment", "byref"); status != 200 || !near(body, 21) {
		t.Fatalf("registered MLflow model: %d %s", status, body)
	}
	if r := s.berth("model", "create", "--name", "notmlflow", "--path", filepath.Join(dir, "dep.yml"), "--type", "mlflow_model"); r.code == 0 || !strings.Contains(r.stderr, "MLmodel") {
		t.Fatalf("an mlflow_model without MLmodel was registered: %+v", r)
	}
}
