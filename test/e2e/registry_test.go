//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelRegistry(t *testing.T) {
	s := startServer(t, "")
	v2 := t.TempDir()
	writeFiles(t, v2, map[string]string{"model/model.json": `{"intercept": 100.0, "coef": [0, 0, 0, 0]}`})

	var m1, m2 struct{ Name, Version, Artifact, Stage string }
	s.okJSON(&m1, "model", "create", "--name", "qs-model", "--path", example("quickstart", "model"))
	s.okJSON(&m2, "model", "create", "--name", "qs-model", "--path", filepath.Join(v2, "model"))
	if m1.Version != "1" || m2.Version != "2" || m1.Artifact == m2.Artifact {
		t.Fatalf("versions: %+v %+v", m1, m2)
	}
	if r := s.berth("model", "create", "--name", "qs-model", "--version", "1", "--path", filepath.Join(v2, "model")); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("re-registering version 1: %+v", r)
	}

	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "--set", "model=azureml:qs-model:1", "--all-traffic")
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-n", "green", "--set", "model=azureml:qs-model@latest")
	key, _ := s.keys("quickstart")
	if status, _, body := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`); status != 200 || strings.TrimSpace(body) != "[7.0]" {
		t.Fatalf("version 1: %d %s", status, body)
	}
	if status, _, body := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`, "azureml-model-deployment", "green"); status != 200 || strings.TrimSpace(body) != "[100.0]" {
		t.Fatalf("@latest should serve version 2: %d %s", status, body)
	}
	var green struct{ Model string }
	s.okJSON(&green, "online-deployment", "show", "-e", "quickstart", "-n", "green")
	if green.Model != "azureml:qs-model:2" {
		t.Fatalf("green's model should be pinned to version 2, shows %q", green.Model)
	}

	r := s.berth("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-n", "missing", "--set", "model=azureml:qs-model:9")
	if r.code == 0 || !strings.Contains(r.stderr, "ResourceNotFound") || !strings.Contains(r.stderr, "azureml:qs-model:9") {
		t.Fatalf("missing version: %+v", r)
	}

	s.ok("model", "archive", "--name", "qs-model", "--version", "2")
	var latest struct{ Version string }
	s.okJSON(&latest, "model", "show", "--name", "qs-model", "--label", "latest")
	if latest.Version != "1" {
		t.Fatalf("@latest with version 2 archived: %q", latest.Version)
	}
	s.ok("model", "restore", "--name", "qs-model", "--version", "2")

	dl := t.TempDir()
	s.ok("model", "download", "--name", "qs-model", "--version", "1", "--download-path", dl)
	want, _ := os.ReadFile(example("quickstart", "model", "model.json"))
	got, err := os.ReadFile(filepath.Join(dl, "qs-model", "model", "model.json"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("downloaded file differs: %v\n%s", err, got)
	}
	var m3 struct{ Version, Artifact string }
	r = s.berth("model", "create", "--name", "qs-copy", "--path", example("quickstart", "model"))
	if r.code != 0 || !strings.Contains(r.stderr, "already uploaded") {
		t.Fatalf("identical files should not be uploaded twice: %+v", r)
	}
	s.okJSON(&m3, "model", "show", "--name", "qs-copy", "--version", "1")
	if m3.Artifact != m1.Artifact {
		t.Fatalf("identical uploads stored twice: %s vs %s", m3.Artifact, m1.Artifact)
	}
}

func TestEnvironmentAndDataAssets(t *testing.T) {
	requireDebianPython(t, "numpy")
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"conda.yaml":    "name: env\ndependencies:\n  - python=3\n  - numpy\n",
		"env.yml":       "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\nname: np-env\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\nconda_file: conda.yaml\n",
		"code/score.py": "import numpy\n\ndef init():\n    pass\n\ndef run(d):\n    return 'numpy ' + numpy.__version__\n",
		"model/m.txt":   "x",
		"dep.yml":       "name: envref\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\nenvironment: azureml:np-env@latest\n",
		"data/a.csv":    "x,y\n1,2\n",
	})
	var env struct{ Name, Version, Image string }
	s.okJSON(&env, "environment", "create", "-f", filepath.Join(dir, "env.yml"))
	if env.Version != "1" || env.Image == "" {
		t.Fatalf("environment create: %+v", env)
	}
	s.ok("online-endpoint", "create", "-n", "dataplane")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--all-traffic")
	var dep struct{ Environment string }
	s.okJSON(&dep, "online-deployment", "show", "-e", "dataplane", "-n", "envref")
	if dep.Environment != "azureml:np-env:1" {
		t.Fatalf("the environment reference should be pinned: %q", dep.Environment)
	}
	key, _ := s.keys("dataplane")
	if status, _, body := s.score("dataplane", key, "{}"); status != 200 || !strings.Contains(body, "numpy") {
		t.Fatalf("score with a registered environment: %d %s", status, body)
	}
	var shown struct {
		BuildLog string `json:"build_log"`
	}
	s.okJSON(&shown, "environment", "show", "--name", "np-env", "--version", "1")
	if !strings.HasSuffix(shown.BuildLog, "build.log") {
		t.Fatalf("environment show should name the build log once built: %+v", shown)
	}
	// One of Azure's curated environments, not registered here: it runs on this machine's
	// interpreter, and says so.
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-n", "curated", "--set", "environment=azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest")
	if si := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "curated", "--container", "storage-initializer"); !strings.Contains(si, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu is Azure's curated environment") {
		t.Fatalf("the storage-initializer log does not say what it did with the curated environment:\n%s", si)
	}
	// Any other environment that is not registered is refused.
	r := s.berth("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-n", "missing", "--set", "environment=azureml:no-such-env@latest")
	if r.code == 0 || !strings.Contains(r.stderr, "ResourceNotFound") || !strings.Contains(r.stderr, "azureml:no-such-env@latest") {
		t.Fatalf("a missing environment: %+v", r)
	}

	var data struct{ Name, Version, Type, Path string }
	s.okJSON(&data, "data", "create", "--name", "inputs", "--path", filepath.Join(dir, "data"))
	if data.Version != "1" || data.Type != "uri_folder" || data.Path != "data" {
		t.Fatalf("data create: %+v", data)
	}
	s.okJSON(&data, "data", "create", "--name", "inputs", "--path", filepath.Join(dir, "data", "a.csv"), "--type", "uri_file")
	if data.Version != "2" || data.Type != "uri_file" {
		t.Fatalf("second data version: %+v", data)
	}
	s.ok("data", "archive", "--name", "inputs", "--version", "2")
	s.okJSON(&data, "data", "show", "--name", "inputs", "--label", "latest")
	if data.Version != "1" {
		t.Fatalf("@latest with version 2 archived: %+v", data)
	}
}

// TestCuratedEnvironmentDeploys: a deployment that names one of Azure's curated
// environments, as Azure's samples do, deploys on this machine's interpreter.
func TestCuratedEnvironmentDeploys(t *testing.T) {
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"curated.yml": "name: curated\nendpoint_name: quickstart\nmodel: {path: " + example("quickstart", "model") + "}\n" +
			"code_configuration: {code: " + example("quickstart", "onlinescoring") + ", scoring_script: score.py}\n" +
			"environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n",
	})
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "curated.yml"), "--all-traffic")
	key, _ := s.keys("quickstart")
	if status, _, body := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`); status != 200 {
		t.Fatalf("score: %d %s", status, body)
	}
	if si := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "curated", "--container", "storage-initializer"); !strings.Contains(si, "sklearn-1.5 is Azure's curated environment") {
		t.Errorf("the storage-initializer log does not say what it did with the curated environment:\n%s", si)
	}
}
