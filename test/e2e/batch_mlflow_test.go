//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBatchMLflowCloudpickleXGBoostPipeline scores a folder of CSVs with an MLflow
// model without a script: a scikit-learn pipeline whose last step is Debian's xgboost,
// saved with cloudpickle, as mlflow.sklearn saves it by default.
func TestBatchMLflowCloudpickleXGBoostPipeline(t *testing.T) {
	requireDebianPython(t, "sklearn, pandas, xgboost, cloudpickle")
	dir := t.TempDir()
	build := `
import sys, os, cloudpickle
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor
d = sys.argv[1]
X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0, 60.0], "chol": [180.0, 200.0, 240.0, 210.0, 260.0]})
y = X["age"] / 10 + X["chol"] / 100
model = Pipeline([("scale", StandardScaler()), ("xgb", XGBRegressor(n_estimators=5, max_depth=2))]).fit(X, y)
os.makedirs(d + "/model")
with open(d + "/model/model.pkl", "wb") as f:
    cloudpickle.dump(model, f)
os.makedirs(d + "/data")
a = pd.DataFrame({"age": [25.0, 55.0], "chol": [190.0, 250.0]})
b = pd.DataFrame({"chol": [205.0], "age": [35.0]})  # columns in another order
a.to_csv(d + "/data/a.csv", index=False)
b.to_csv(d + "/data/b.csv", index=False)
pred = list(model.predict(a)) + list(model.predict(b[["age", "chol"]]))
with open(d + "/expected.txt", "w") as f:
    f.write("\n".join("%.4f" % p for p in pred))
`
	if out, err := exec.Command("/usr/bin/python3", "-c", build, dir).CombinedOutput(); err != nil {
		t.Fatalf("build the model: %v\n%s", err, out)
	}
	writeFiles(t, dir, map[string]string{
		"model/MLmodel": `flavors:
  python_function: {loader_module: mlflow.sklearn, model_path: model.pkl, python_version: 3.11.2}
  sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle, sklearn_version: 1.2.1}
signature:
  inputs: '[{"type": "double", "name": "age"}, {"type": "double", "name": "chol"}]'
`,
		"endpoint.yml":   "name: xgb\n",
		"deployment.yml": "name: pipe\nendpoint_name: xgb\ntype: model\nmodel: {path: ./model, type: mlflow_model}\ncompute: azureml:cpu\nsettings: {mini_batch_size: 1}\n",
	})
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	deployBatch(t, s, dir, "xgb")
	job := invokeBatch(t, s, "xgb", filepath.Join(dir, "data"))
	if st := waitJob(t, s, job, 60*time.Second); st != "Completed" {
		t.Fatalf("status %s; errors:\n%s", st, jobFile(t, s, job, "logs/user/error.txt"))
	}
	lines := downloadScore(t, s, job, "predictions.csv")
	want, _ := os.ReadFile(filepath.Join(dir, "expected.txt"))
	exp := strings.Split(string(want), "\n")
	files := []string{"a.csv", "a.csv", "b.csv"}
	rows := []string{"0", "1", "0"}
	if len(lines) != 3 {
		t.Fatalf("predictions.csv: %q", lines)
	}
	for i, l := range lines {
		f := strings.Split(l, ",")
		if len(f) != 3 || f[0] != rows[i] || f[2] != files[i] || !strings.HasPrefix(f[1], exp[i][:len(exp[i])-2]) {
			t.Errorf("row %d = %q, want row %s, prediction %s, file %s", i, l, rows[i], exp[i], files[i])
		}
	}
}
