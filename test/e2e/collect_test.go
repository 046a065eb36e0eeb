//go:build unix

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// collected reads every JSONL record of one collection of the data-collector example,
// failing on a line that is not one whole JSON object.
func collected(t *testing.T, dataDir, collection string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	root := filepath.Join(dataDir, "collections", "collect-demo", "blue", collection)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, ".jsonl") {
			t.Errorf("%s: not a .jsonl file", p)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: a line is not a JSON record (%v): %q", p, err, sc.Text())
			}
			recs = append(recs, r)
		}
		return nil
	})
	return recs
}

// byRequest indexes records by x-request-id, failing on a request collected twice or a
// correlation id that is not the request's.
func byRequest(t *testing.T, what string, recs []map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range recs {
		id, _ := r["xrequestid"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("%s: request %s collected twice", what, id)
		}
		if r["correlationid"] != id {
			t.Errorf("%s: correlationid %v is not the x-request-id %s", what, r["correlationid"], id)
		}
		out[id] = r
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestDataCollectorJoinsInputsAndOutputs is issue 14's acceptance: a deployment with
// data_collector collections model_inputs and model_outputs and a score.py that
// collects pandas DataFrames with azureml.ai.monitoring's Collector (not installed: the
// worker provides it). 100 requests at sampling rate 1.0 make 100 input and 100 output
// records, joined by the x-request-id each client got.
func TestDataCollectorJoinsInputsAndOutputs(t *testing.T) {
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("online-endpoint", "create", "-f", example("data-collector", "endpoint.yml"))
	// Payload logging too: the reserved collections request and response.
	out := s.berth("online-deployment", "create", "-f", example("data-collector", "blue-deployment.yml"), "--all-traffic",
		"--set", "data_collector.collections.request.enabled=true", "--set", "data_collector.collections.response.enabled=true")
	if out.code != 0 {
		t.Fatalf("deployment create: %s%s", out.stdout, out.stderr)
	}
	if strings.Contains(out.stderr, "data_collector") {
		t.Errorf("create warned about data_collector:\n%s", out.stderr)
	}
	si := s.ok("online-deployment", "get-logs", "-e", "collect-demo", "-n", "blue", "--container", "storage-initializer")
	if !strings.Contains(si, "data collector: model_inputs, model_outputs, request, response at sampling rate 1, one folder per hour") {
		t.Errorf("storage-initializer log does not say what is collected:\n%s", si)
	}
	if !strings.Contains(si, "provided by Berth, not installed: azureml-inference-server-http, azureml-ai-monitoring") {
		t.Errorf("the conda file's azureml-ai-monitoring was not left to Berth:\n%s", si)
	}
	key, _ := s.keys("collect-demo")

	const n = 100
	var mu sync.Mutex
	got := map[string]int{} // x-request-id → the request's first feature
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2) // within the admission limit, 2 × 2 requests in flight
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			status, h, body, err := s.tryScore("collect-demo", key, fmt.Sprintf(`{"data": [[%d, 0, 0, 0], [1, 1, 1, 1]]}`, i))
			if err != nil || status != 200 || h.Get("x-request-id") == "" {
				t.Errorf("request %d: %d %v %s", i, status, err, body)
				return
			}
			mu.Lock()
			got[h.Get("x-request-id")] = i
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	inputs := byRequest(t, "model_inputs", collected(t, s.dataDir, "model_inputs"))
	outputs := byRequest(t, "model_outputs", collected(t, s.dataDir, "model_outputs"))
	want := sortedKeys(got)
	if diff := cmp.Diff(want, sortedKeys(inputs)); diff != "" {
		t.Errorf("model_inputs request ids (-client got +collected):\n%s", diff)
	}
	if diff := cmp.Diff(want, sortedKeys(outputs)); diff != "" {
		t.Errorf("model_outputs request ids (-client got +collected):\n%s", diff)
	}
	for _, c := range []string{"request", "response"} {
		recs := byRequest(t, c, collected(t, s.dataDir, c))
		if diff := cmp.Diff(want, sortedKeys(recs)); diff != "" {
			t.Errorf("%s request ids (-client got +collected):\n%s", c, diff)
		}
		for id, i := range got {
			if r := recs[id]; c == "request" && r != nil && !strings.Contains(fmt.Sprint(r["data"]), fmt.Sprintf("[%d 0 0 0]", i)) {
				t.Errorf("request %s: request data = %v, want the body of request %d", id, r["data"], i)
			}
		}
	}
	// Joined by request id, each input and output is that request's: the DataFrames'
	// rows, x1 = i in, 1.5 + 0.5·i out.
	hour := time.Now().UTC().Format("2006-01-02T15")
	for id, i := range got {
		in, outRec := inputs[id], outputs[id]
		if in == nil || outRec == nil {
			continue
		}
		rows, _ := in["data"].([]any)
		if len(rows) != 2 || rows[0].(map[string]any)["x1"] != float64(i) {
			t.Errorf("request %s: model_inputs data = %v, want the rows of request %d", id, in["data"], i)
		}
		preds, _ := outRec["data"].([]any)
		if len(preds) != 2 || preds[0].(map[string]any)["prediction"] != 1.5+0.5*float64(i) {
			t.Errorf("request %s: model_outputs data = %v, want prediction %g", id, outRec["data"], 1.5+0.5*float64(i))
		}
		if in["type"] != "azureml.inference.model_inputs" || in["specversion"] != "1.0" || in["source"] != "/endpoints/collect-demo/deployments/blue" ||
			!strings.HasPrefix(in["time"].(string), hour[:10]) {
			t.Errorf("model_inputs record = %v", in)
		}
	}
	// Partitioned by hour, as Azure's blob paths are.
	matches, _ := filepath.Glob(filepath.Join(s.dataDir, "collections", "collect-demo", "blue", "model_inputs", "*", "*", "*", "*", "*.jsonl"))
	if len(matches) == 0 {
		t.Errorf("no model_inputs/YYYY/MM/DD/HH/*.jsonl file")
	}
}
