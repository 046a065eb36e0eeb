//go:build unix

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// heartProject lays out the files of Azure's heart-classifier batch sample: an MLflow
// model made here, a folder of CSVs, and the YAML files the script below uses.
func heartProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	makeMLflowModel(t, dir)
	if err := os.Rename(filepath.Join(dir, "mlflow-model"), filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"data/part-000.csv":           "age,income\n20,1\n30,3\n",
		"data/part-001.csv":           "age,income\n40,2\n",
		"heart-dataset-unlabeled.yml": "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\nname: heart-dataset-unlabeled\ntype: uri_folder\npath: data\n",
		"endpoint.yml":                "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\nname: heart-ep\ndescription: heart classifier\nauth_mode: aad_token\n",
		"deployment.yml": `$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
endpoint_name: heart-ep
name: classifier
description: A heart condition classifier based on an MLflow model.
type: model
model: azureml:heart-classifier@latest
compute: azureml:batch-cluster
resources:
  instance_count: 2
settings:
  max_concurrency_per_instance: 2
  mini_batch_size: 2
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 3
    timeout: 300
  error_threshold: -1
  logging_level: info
`,
	})
	return dir
}

// heartScript is the script with az ml replaced by berth, run as written.
const heartScript = `set -euo pipefail
berth() { "$BERTH" "$@"; }
berth compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 5
berth model create --name heart-classifier --type mlflow_model --path model
berth data create -f heart-dataset-unlabeled.yml
berth batch-endpoint create -n heart-ep -f endpoint.yml
berth batch-deployment create --file deployment.yml --endpoint-name heart-ep --set-default
berth batch-endpoint update --name heart-ep --set defaults.deployment_name=classifier
JOB=$(berth batch-endpoint invoke --name heart-ep --input azureml:heart-dataset-unlabeled@latest --query name -o tsv)
berth job stream -n $JOB
berth job show -n $JOB --query status -o tsv
berth batch-deployment list-jobs --name classifier --endpoint-name heart-ep --query [].name
berth job download --name $JOB --output-name score --download-path ./
echo "job $JOB done"
`

func TestBatchHeartScriptRunsAsWritten(t *testing.T) {
	requireDebianPython(t, "sklearn, pandas")
	dir := heartProject(t)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	cmd := exec.Command("bash", "-c", heartScript)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BERTH="+berthBin, "BERTH_DATA_DIR="+s.dataDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Completed") {
		t.Errorf("job show did not print Completed:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "named-outputs", "score", "predictions.csv"))
	if err != nil {
		t.Fatalf("downloaded predictions: %v\n%s", err, out)
	}
	// LinearRegression fitted on y = 2*age + income: row,prediction,file_name per input row.
	want := []string{"0,41.0,part-000.csv", "1,63.0,part-000.csv", "0,82.0,part-001.csv"}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(got) != len(want) {
		t.Fatalf("predictions.csv:\n%s\nwant rows %q", b, want)
	}
	for i := range want {
		if !sameRow(got[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// sameRow compares "row,prediction,file" rows with the prediction rounded.
func sameRow(got, want string) bool {
	g, w := strings.Split(got, ","), strings.Split(want, ",")
	if len(g) != 3 || g[0] != w[0] || g[2] != w[2] {
		return false
	}
	return strings.HasPrefix(g[1], strings.TrimSuffix(w[1], ".0"))
}

func TestBatchRESTInvocationNeedsAnMLToken(t *testing.T) {
	dir := batchProject(t, "rest", echoScript, "  mini_batch_size: 2\n", 4)
	s := startServer(t, "")
	deployBatch(t, s, dir, "rest")
	s.ok("data", "create", "-n", "inputs", "--type", "uri_folder", "--path", filepath.Join(dir, "data"))
	var ep struct {
		ScoringURI string `json:"scoring_uri"`
	}
	s.okJSON(&ep, "batch-endpoint", "show", "-n", "rest")
	if !strings.HasSuffix(ep.ScoringURI, "/endpoints/rest/jobs") {
		t.Fatalf("scoring_uri %q", ep.ScoringURI)
	}
	body := `{"properties": {"InputData": {"heart_dataset": {"JobInputType": "UriFolder", "Uri": "azureml:inputs@latest"}}}}`
	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ep.ScoringURI, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := func(resource ...string) string {
		var tok struct {
			AccessToken string `json:"accessToken"`
		}
		s.okJSON(&tok, append([]string{"account", "get-access-token"}, resource...)...)
		return tok.AccessToken
	}
	if code, msg := post(token()); code != http.StatusUnauthorized || !strings.Contains(msg, "Audiences in JWT are not allowed") {
		t.Errorf("a management token: %d %s", code, msg)
	}
	code, msg := post(token("--resource", "https://ml.azure.com"))
	if code != http.StatusCreated {
		t.Fatalf("an ML token: %d %s", code, msg)
	}
	var job struct{ Name string }
	if err := json.Unmarshal([]byte(msg), &job); err != nil || job.Name == "" {
		t.Fatalf("answer %s: %v", msg, err)
	}
	if st := waitJob(t, s, job.Name, 60*time.Second); st != "Completed" {
		t.Fatalf("status %s", st)
	}
	if lines := downloadScore(t, s, job.Name, "predictions.csv"); len(lines) != 4 {
		t.Errorf("output %q", lines)
	}
}
