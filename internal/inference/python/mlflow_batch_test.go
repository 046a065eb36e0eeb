package python

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const batchPython = "/usr/bin/python3"

// batchSetupPy builds the models and input files the tests score, in the folder argv[1].
const batchSetupPy = `
import os, pickle, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
d = sys.argv[1]
def save(name, m):
    os.makedirs(os.path.join(d, name))
    with open(os.path.join(d, name, "model.pkl"), "wb") as f:
        pickle.dump(m, f)
X = pd.DataFrame({"a": [0., 1, 2, 3, 4, 5], "b": [1., 0, 3, 2, 5, 4]})
save("lin", LinearRegression().fit(X, 2 * X.a + 3 * X.b + 1))
save("multi", LinearRegression().fit(X, np.c_[X.a + X.b, X.a - X.b]))
C = pd.DataFrame({"a": [0., 1, 2, 3, 10, 11, 12, 13], "b": [1., 0, 1, 0, 1, 0, 1, 0]})
save("clf", Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(C, (C.a > 5).astype(int)))
os.makedirs(os.path.join(d, "fake"))
with open(os.path.join(d, "fake", "berthfake.py"), "w") as f:
    f.write("class Model:\n    pass\n")
sys.path.insert(0, os.path.join(d, "fake"))
import berthfake
save("needs", berthfake.Model())
save("nopredict", {"not": "a model"})
os.makedirs(os.path.join(d, "broken"))
write_bytes = open(os.path.join(d, "broken", "model.pkl"), "wb")
write_bytes.write(b"not a pickle")
write_bytes.close()
def write(name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
write("a.csv", "a,b\n1,1\n2,0\n0,0\n")
write("b.csv", "b,label,a\n1,9,2\n0,9,3\n")
write("clf.csv", "a,b\n0,1\n12,1\n13,0\n")
write("missing.csv", "a\n1\n")
write("badtype.csv", "a,b\nx,1\n")
write("notes.txt", "not data\n")
write("pic.png", "\x89PNG not really\n")
try:
    import pyarrow
    pd.DataFrame({"a": [4.0, 1.0], "b": [0.0, 2.0]}).to_parquet(os.path.join(d, "p.parquet"))
    print("pyarrow")
except ImportError:
    write("p.parquet", "PAR1")
`

// batchHarnessPy imports the script as the batch worker would, calls init() and
// run(argv[2:]) and prints the DataFrame after an OUTPUT line, or the exception.
const batchHarnessPy = `
import importlib.util, os, sys
ws = importlib.util.spec_from_file_location("worker", os.path.join(os.path.dirname(sys.argv[1]), "worker.py"))
worker = importlib.util.module_from_spec(ws)
ws.loader.exec_module(worker)
worker._install_berth_module()  # berth_worker, as the worker makes it for scripts
import logging
logging.basicConfig(stream=sys.stdout)
spec = importlib.util.spec_from_file_location("mlflow_batch", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
try:
    m.init()
    df = m.run(sys.argv[2:])
except Exception as exc:
    print(f"RAISED {type(exc).__name__}: {exc}")
    sys.exit(1)
print("OUTPUT")
sys.stdout.write(df.to_csv(sep=df.attrs["berth_sep"], header=False, index=False))
`

type batchFixture struct {
	dir     string
	pyarrow bool
}

func newBatchFixture(t *testing.T) batchFixture {
	t.Helper()
	if err := exec.Command(batchPython, "-c", "import numpy, pandas, sklearn").Run(); err != nil {
		t.Skipf("%s cannot import numpy, pandas and sklearn (%v): apt-get install python3-numpy python3-pandas python3-sklearn", batchPython, err)
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"mlflow_batch.py": MLflowBatch, "harness.py": batchHarnessPy, "setup.py": batchSetupPy, "worker.py": Worker} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(batchPython, filepath.Join(dir, "setup.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("setup.py: %v\n%s", err, out)
	}
	return batchFixture{dir: dir, pyarrow: strings.Contains(string(out), "pyarrow")}
}

// mlmodel is the MLmodel file as the server passes it in BERTH_MLMODEL.
func mlmodel(t *testing.T, format string, cols ...string) string {
	t.Helper()
	var inputs []map[string]string
	for _, c := range cols {
		inputs = append(inputs, map[string]string{"name": c, "type": "double"})
	}
	sig, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{
		"flavors": map[string]any{
			"python_function": map[string]any{"loader_module": "mlflow.sklearn", "model_path": "model.pkl"},
			"sklearn":         map[string]any{"pickled_model": "model.pkl", "serialization_format": format},
		},
		"signature": map[string]any{"inputs": string(sig)},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type batchResult struct {
	logs   string     // stdout before the output (prints and logging)
	rows   [][]string // the DataFrame written with its berth_sep
	raised string     // "Type: message" when init() or run() raised
}

func (f batchFixture) run(t *testing.T, model, doc string, files ...string) batchResult {
	t.Helper()
	args := []string{filepath.Join(f.dir, "harness.py"), filepath.Join(f.dir, "mlflow_batch.py")}
	for _, name := range files {
		args = append(args, filepath.Join(f.dir, name))
	}
	cmd := exec.Command(batchPython, args...)
	cmd.Env = append(os.Environ(), "BERTH_MLMODEL="+doc, "BERTH_MLFLOW_MODEL_DIR="+filepath.Join(f.dir, model))
	out, err := cmd.Output()
	text := string(out)
	if err != nil {
		_, raised, ok := strings.Cut(text, "RAISED ")
		if !ok {
			t.Fatalf("harness failed: %v\n%s", err, out)
		}
		return batchResult{logs: text, raised: strings.TrimSpace(raised)}
	}
	logs, table, ok := strings.Cut(text, "OUTPUT\n")
	if !ok {
		t.Fatalf("no OUTPUT line:\n%s", out)
	}
	rows, err := csv.NewReader(strings.NewReader(table)).ReadAll()
	if err != nil {
		t.Fatalf("output is not comma-separated: %v\n%s", err, table)
	}
	return batchResult{logs: logs, rows: rows}
}

// want is one expected output row: row index, prediction, file name.
type want struct {
	row  int
	pred float64
	file string
}

func checkRows(t *testing.T, got [][]string, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d rows %q, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if len(g) != 3 {
			t.Fatalf("row %d = %q, want 3 fields (row, prediction, file_name)", i, g)
		}
		pred, err := strconv.ParseFloat(g[1], 64)
		if g[0] != strconv.Itoa(w.row) || err != nil || math.Abs(pred-w.pred) > 1e-6 || g[2] != w.file {
			t.Errorf("row %d = %q, want [%d %v %s]", i, g, w.row, w.pred, w.file)
		}
	}
}

func fileError(dir, name string) string {
	return "ERROR:azureml:Error processing input file: '" + filepath.Join(dir, name) + "'. Exception: "
}

func TestMLflowBatch(t *testing.T) {
	f := newBatchFixture(t)
	lin := mlmodel(t, "cloudpickle", "a", "b")

	t.Run("a model saved with another scikit-learn says so, and names it in a model error", func(t *testing.T) {
		var doc map[string]any
		if err := json.Unmarshal([]byte(mlmodel(t, "pickle", "a", "b")), &doc); err != nil {
			t.Fatal(err)
		}
		doc["flavors"].(map[string]any)["sklearn"].(map[string]any)["sklearn_version"] = "0.0.1"
		old, _ := json.Marshal(doc)
		r := f.run(t, "lin", string(old), "a.csv")
		if r.raised != "" || !strings.Contains(r.logs, "WARNING: the model was saved with scikit-learn 0.0.1 and this interpreter") {
			t.Fatalf("raised %q; logs:\n%s", r.raised, r.logs)
		}
		r = f.run(t, "nopredict", string(old), "a.csv")
		if !strings.Contains(r.logs+r.raised, "AttributeError: 'dict' object has no attribute 'predict' (the model was saved with scikit-learn 0.0.1") {
			t.Errorf("the model's error does not name the version difference:\n%s", r.logs)
		}
		r = f.run(t, "nopredict", mlmodel(t, "pickle", "a", "b"), "a.csv")
		if strings.Contains(r.logs+r.raised, "saved with scikit-learn") || !strings.Contains(r.logs+r.raised, "'dict' object has no attribute 'predict'") {
			t.Errorf("a version note without a version in MLmodel:\n%s", r.logs)
		}
	})

	t.Run("linear regression, files in order, signature selects and casts", func(t *testing.T) {
		r := f.run(t, "lin", lin, "a.csv", "b.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 6, "a.csv"}, {1, 5, "a.csv"}, {2, 1, "a.csv"}, {0, 8, "b.csv"}, {1, 7, "b.csv"}})
	})

	t.Run("pipeline with pickle format", func(t *testing.T) {
		r := f.run(t, "clf", mlmodel(t, "pickle", "a", "b"), "clf.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 0, "clf.csv"}, {1, 1, "clf.csv"}, {2, 1, "clf.csv"}})
	})

	t.Run("unsupported files are logged and skipped", func(t *testing.T) {
		r := f.run(t, "lin", lin, "notes.txt", "a.csv", "pic.png")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 6, "a.csv"}, {1, 5, "a.csv"}, {2, 1, "a.csv"}})
		for _, line := range []string{fileError(f.dir, "notes.txt") + "unsupported file type '.txt'", fileError(f.dir, "pic.png") + "image files (.png)"} {
			if !strings.Contains(r.logs, line) {
				t.Errorf("logs lack %q:\n%s", line, r.logs)
			}
		}
		if !strings.Contains(r.logs, "scoring script") {
			t.Errorf("the errors do not name the fix (a scoring script):\n%s", r.logs)
		}
	})

	t.Run("only bad files", func(t *testing.T) {
		r := f.run(t, "lin", lin, "notes.txt", "pic.png")
		if r.raised != "ValueError: No objects to concatenate" {
			t.Errorf("raised %q, want ValueError: No objects to concatenate\n%s", r.raised, r.logs)
		}
		if !strings.Contains(r.logs, fileError(f.dir, "notes.txt")) {
			t.Errorf("logs lack the notes.txt error:\n%s", r.logs)
		}
	})

	t.Run("signature: missing column and wrong type", func(t *testing.T) {
		r := f.run(t, "lin", lin, "missing.csv", "badtype.csv", "b.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 8, "b.csv"}, {1, 7, "b.csv"}})
		for _, line := range []string{fileError(f.dir, "missing.csv") + "missing column(s) ['b']", fileError(f.dir, "badtype.csv") + "column 'a' must be double"} {
			if !strings.Contains(r.logs, line) {
				t.Errorf("logs lack %q:\n%s", line, r.logs)
			}
		}
	})

	t.Run("multi-output prediction is a list string", func(t *testing.T) {
		r := f.run(t, "multi", mlmodel(t, "pickle", "a", "b"), "b.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		wantPred := [][]float64{{3, 1}, {3, 3}}
		if len(r.rows) != len(wantPred) {
			t.Fatalf("got rows %q, want 2", r.rows)
		}
		for i, w := range wantPred {
			var got []float64
			if err := json.Unmarshal([]byte(r.rows[i][1]), &got); err != nil || len(got) != 2 ||
				math.Abs(got[0]-w[0]) > 1e-6 || math.Abs(got[1]-w[1]) > 1e-6 {
				t.Errorf("row %d = %q, want prediction %v", i, r.rows[i], w)
			}
		}
	})

	t.Run("parquet", func(t *testing.T) {
		if !f.pyarrow {
			t.Skip("pyarrow is not installed for " + batchPython + ": apt-get install python3-pyarrow")
		}
		r := f.run(t, "lin", lin, "p.parquet")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 9, "p.parquet"}, {1, 9, "p.parquet"}})
	})

	t.Run("parquet without pyarrow names the package", func(t *testing.T) {
		if f.pyarrow {
			t.Skip("pyarrow is installed")
		}
		r := f.run(t, "lin", lin, "p.parquet", "a.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 6, "a.csv"}, {1, 5, "a.csv"}, {2, 1, "a.csv"}})
		if !strings.Contains(r.logs, fileError(f.dir, "p.parquet")) || !strings.Contains(r.logs, "apt-get install python3-pyarrow") {
			t.Errorf("logs lack the p.parquet error naming python3-pyarrow:\n%s", r.logs)
		}
	})

	t.Run("no signature scores every column", func(t *testing.T) {
		r := f.run(t, "lin", mlmodel(t, "pickle"), "a.csv")
		if r.raised != "" {
			t.Fatalf("raised %s\n%s", r.raised, r.logs)
		}
		checkRows(t, r.rows, []want{{0, 6, "a.csv"}, {1, 5, "a.csv"}, {2, 1, "a.csv"}})
	})

	t.Run("model needing a missing module names the package", func(t *testing.T) {
		r := f.run(t, "needs", mlmodel(t, "pickle", "a", "b"), "a.csv")
		for _, part := range []string{"ImportError: ", "'berthfake'", "apt-get install python3-berthfake"} {
			if !strings.Contains(r.raised, part) {
				t.Errorf("raised %q, want it to contain %q", r.raised, part)
			}
		}
	})

	t.Run("unsupported flavor fails init", func(t *testing.T) {
		doc := `{"flavors": {"python_function": {"loader_module": "mlflow.pytorch"}, "pytorch": {}}}`
		r := f.run(t, "lin", doc, "a.csv")
		for _, part := range []string{"RuntimeError: ", "['python_function', 'pytorch']", "scoring script"} {
			if !strings.Contains(r.raised, part) {
				t.Errorf("raised %q, want it to contain %q", r.raised, part)
			}
		}
	})
}
