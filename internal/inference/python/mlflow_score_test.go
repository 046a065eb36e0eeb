package python

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// scoreHarnessPy imports mlflow_score.py as the worker would (with berth_worker),
// calls init() and run(argv[2]), and prints the answer or the exception.
const scoreHarnessPy = `
import importlib.util, os, sys
ws = importlib.util.spec_from_file_location("worker", os.path.join(os.path.dirname(sys.argv[1]), "worker.py"))
worker = importlib.util.module_from_spec(ws)
ws.loader.exec_module(worker)
worker._install_berth_module()  # berth_worker, as the worker makes it for scripts
import json
spec = importlib.util.spec_from_file_location("mlflow_score", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
try:
    m.init()
    print("ANSWER " + json.dumps(m.run(sys.argv[2])))
except Exception as exc:
    print(f"RAISED {type(exc).__name__}: {exc}")
`

// TestMLflowScoreNamesAScikitLearnVersionDifference: the online no-code scorer warns
// when the model was saved with another scikit-learn, and an error loading or running
// the model carries that note.
func TestMLflowScoreNamesAScikitLearnVersionDifference(t *testing.T) {
	f := newBatchFixture(t)
	for name, src := range map[string]string{"mlflow_score.py": MLflow, "score_harness.py": scoreHarnessPy} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(mlmodel(t, "pickle", "a", "b")), &doc); err != nil {
		t.Fatal(err)
	}
	doc["flavors"].(map[string]any)["sklearn"].(map[string]any)["sklearn_version"] = "0.0.1"
	old, _ := json.Marshal(doc)
	score := func(model string) string {
		cmd := exec.Command(batchPython, filepath.Join(f.dir, "score_harness.py"), filepath.Join(f.dir, "mlflow_score.py"), `[[1, 1]]`)
		cmd.Env = append(os.Environ(), "BERTH_MLMODEL="+string(old), "BERTH_MLFLOW_MODEL_DIR="+filepath.Join(f.dir, model))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("harness: %v\n%s", err, out)
		}
		return string(out)
	}
	note := "(the model was saved with scikit-learn 0.0.1 and this interpreter"
	if out := score("lin"); !strings.Contains(out, "WARNING: the model was saved with scikit-learn 0.0.1") || !strings.Contains(out, "ANSWER [6.0") {
		t.Errorf("a model that works: want the warning and its answer:\n%s", out)
	}
	if out := score("nopredict"); !strings.Contains(out, "RAISED RuntimeError: AttributeError: 'dict' object has no attribute 'predict' "+note) {
		t.Errorf("an error in predict does not carry the note:\n%s", out)
	}
	if out := score("broken"); !strings.Contains(out, "RAISED RuntimeError: UnpicklingError:") || !strings.Contains(out, note) {
		t.Errorf("an error loading the model does not carry the note:\n%s", out)
	}
}
