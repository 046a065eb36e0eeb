package inference

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

	"github.com/berthml/berth/internal/instance"
)

// collectorEnv is the variable berth serve gives an instance that collects names.
func collectorEnv(t *testing.T, dir string, rate float64, names ...string) string {
	t.Helper()
	c := instance.Collector{Dir: dir, Endpoint: "shop", Deployment: "blue", Instance: 3, SamplingRate: rate,
		RollingRate: "Hour", Collections: names, Headers: []string{"X-Client"}}
	v, err := c.Env()
	if err != nil {
		t.Fatal(err)
	}
	return instance.EnvDataCollector + "=" + v
}

// readCollection reads every record of a collection, failing on a line that is not
// one whole JSON object, and returns them with the files they came from.
func readCollection(t *testing.T, dir, name string) ([]map[string]any, []string) {
	t.Helper()
	var recs []map[string]any
	var files []string
	filepath.WalkDir(filepath.Join(dir, name), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, p)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: a line is not a JSON record (%v): %q", p, err, sc.Text())
			}
			recs = append(recs, r)
		}
		return nil
	})
	return recs, files
}

// collectedIDs returns the x-request-ids of recs, sorted, failing on a duplicate.
func collectedIDs(t *testing.T, what string, recs []map[string]any) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		id, _ := r["xrequestid"].(string)
		if seen[id] {
			t.Errorf("%s: request %s collected twice", what, id)
		}
		if r["correlationid"] != id {
			t.Errorf("%s: correlationid %v, want the x-request-id %s", what, r["correlationid"], id)
		}
		seen[id] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func scoreConcurrently(t *testing.T, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"data": {"a": [%d, 1], "b": [2, 3]}}`, i)
			resp, out := post(t, url+"/score", body, "x-request-id", fmt.Sprintf("req-%03d", i), "Content-Type", "application/json", "X-Client", "test")
			if resp.StatusCode != 200 || !strings.Contains(out, fmt.Sprintf(`"total": [%d, 4]`, i+2)) {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, out)
			}
		}()
	}
	wg.Wait()
}

// TestCollectSamplesWholeRequests: at sampling rate 0.5, over many requests and several
// workers, a request is collected in all four collections or in none, each record once,
// and every line is whole.
func TestCollectSamplesWholeRequests(t *testing.T) {
	dir := t.TempDir()
	url, log := serveWith(t, Config{EntryScript: filepath.Join("testdata", "collect_score.py"), WorkerCount: 3, Python: "/usr/bin/python3",
		Env: []string{collectorEnv(t, dir, 0.5, "model_inputs", "model_outputs", "request", "response")}})
	const n = 200
	scoreConcurrently(t, url, n)

	inputs, _ := readCollection(t, dir, "model_inputs")
	want := collectedIDs(t, "model_inputs", inputs)
	if len(want) < n/4 || len(want) > 3*n/4 {
		t.Fatalf("%d of %d requests collected at sampling rate 0.5", len(want), n)
	}
	for _, name := range []string{"model_outputs", "request", "response"} {
		recs, _ := readCollection(t, dir, name)
		if diff := cmp.Diff(want, collectedIDs(t, name, recs)); diff != "" {
			t.Errorf("%s does not hold the requests model_inputs holds (-inputs +%s):\n%s", name, name, diff)
		}
	}
	// The record shape: Azure's fields, the DataFrame's rows as data.
	r := inputs[0]
	for _, k := range []string{"specversion", "id", "source", "type", "datacontenttype", "time", "data", "correlationid", "xrequestid", "agent"} {
		if _, ok := r[k]; !ok {
			t.Errorf("model_inputs record lacks %s: %v", k, r)
		}
	}
	if r["type"] != "azureml.inference.model_inputs" || r["source"] != "/endpoints/shop/deployments/blue" || r["collectdatatype"] != "pandas.core.frame.DataFrame" {
		t.Errorf("model_inputs record = %v", r)
	}
	if rows, _ := r["data"].([]any); len(rows) != 2 || rows[1].(map[string]any)["b"] != 3.0 {
		t.Errorf("model_inputs data = %v, want the DataFrame's two rows", r["data"])
	}
	reqs, _ := readCollection(t, dir, "request")
	if h, _ := reqs[0]["headers"].(map[string]any); h["x-client"] != "test" || reqs[0]["datacontenttype"] != "application/json" {
		t.Errorf("request record = %v, want the captured X-Client header", reqs[0])
	}
	if strings.Contains(log.String(), "Collector(") && strings.Contains(log.String(), "collects nothing") {
		t.Errorf("an enabled collector warned:\n%s", log)
	}
}

// TestCollectRotatesBySize: files are rotated before they pass the size limit, in the
// hour's folder, one sequence per writer.
func TestCollectRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	url, _ := serveWith(t, Config{EntryScript: filepath.Join("testdata", "collect_score.py"), WorkerCount: 2, Python: "/usr/bin/python3",
		Env: []string{collectorEnv(t, dir, 1, "model_inputs", "response"), instance.EnvCollectMaxFileBytes + "=1024"}})
	const n = 40
	scoreConcurrently(t, url, n)
	for _, name := range []string{"model_inputs", "response"} {
		recs, files := readCollection(t, dir, name)
		if len(recs) != n {
			t.Errorf("%s: %d records, want %d", name, len(recs), n)
		}
		if len(files) < 3 {
			t.Errorf("%s: %d files, want rotation past 1024 bytes: %v", name, len(files), files)
		}
		hour := time.Now().UTC().Format("2006/01/02/15")
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > 1024 {
				t.Errorf("%s is %d bytes, over the 1024 limit", f, fi.Size())
			}
			rel, _ := filepath.Rel(filepath.Join(dir, name), f)
			if !strings.HasPrefix(filepath.ToSlash(rel), hour+"/i3-") || !strings.HasSuffix(rel, ".jsonl") {
				t.Errorf("file %s is not <collection>/%s/i3-<writer>-<seq>.jsonl", rel, hour)
			}
		}
	}
}

// TestCollectorErrorsGoToOnError: collect() never raises into run(); a DataFrame is
// required, and on_error hears why. A Collector whose collection is not enabled warns.
func TestCollectorErrorsGoToOnError(t *testing.T) {
	dir := t.TempDir()
	url, log := serveWith(t, Config{EntryScript: filepath.Join("testdata", "collect_score.py"), Python: "/usr/bin/python3",
		Env: []string{collectorEnv(t, dir, 1, "model_outputs")}})
	resp, body := post(t, url+"/score", `{"data": {"a": [1]}}`, "x-request-id", "one")
	if resp.StatusCode != 200 || !strings.Contains(body, "takes a pandas DataFrame, got list") || !strings.Contains(body, `"context": "one"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if l := log.String(); !strings.Contains(l, "Collector(name='model_inputs') collects nothing") {
		t.Errorf("no warning for the collection that is not enabled:\n%s", l)
	}
	if recs, _ := readCollection(t, dir, "model_inputs"); len(recs) != 0 {
		t.Errorf("a collection that is not enabled has %d records", len(recs))
	}
	if recs, _ := readCollection(t, dir, "model_outputs"); len(recs) != 1 {
		t.Errorf("model_outputs has %d records, want 1", len(recs))
	}
}

func TestRollingFilePartitions(t *testing.T) {
	dir := t.TempDir()
	r := &rollingFile{dir: dir, prefix: "i0-s1", rate: "Minute", max: 1 << 20}
	t0 := time.Date(2026, 12, 2, 23, 59, 30, 0, time.FixedZone("x", 3600))
	for i, at := range []time.Time{t0, t0.Add(10 * time.Second), t0.Add(40 * time.Second)} {
		if err := r.write(at, []byte(fmt.Sprintf("{\"n\":%d}\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	r.close()
	for path, want := range map[string]string{"2026/12/02/22/59/i0-s1-000.jsonl": "{\"n\":0}\n{\"n\":1}\n", "2026/12/02/23/00/i0-s1-000.jsonl": "{\"n\":2}\n"} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	for rate, want := range map[string]string{"Hour": "2026/12/02/22", "Day": "2026/12/02", "Month": "2026/12", "Year": "2026", "": "2026/12/02/22"} {
		if got := partition(t0, rate); got != want {
			t.Errorf("partition(%s) = %s, want %s", rate, got, want)
		}
	}
}

func TestReadCollectorRotationSize(t *testing.T) {
	env := []string{instance.EnvDataCollector + `={"dir":"/d","collections":["request"]}`}
	c, err := instance.ReadCollector(env, func(string) string { return "" })
	if err != nil || c.MaxFileBytes != instance.DefaultCollectMaxFileBytes || c.SamplingRate != 1 {
		t.Fatalf("%+v, %v; want the 64 MiB default and rate 1", c, err)
	}
	_, err = instance.ReadCollector(append(env, instance.EnvCollectMaxFileBytes+"=12"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "at least 1024") {
		t.Fatalf("err = %v, want the minimum named", err)
	}
	c, err = instance.ReadCollector(env, func(k string) string { return map[string]string{instance.EnvCollectMaxFileBytes: "4096"}[k] })
	if err != nil || c.MaxFileBytes != 4096 {
		t.Fatalf("%+v, %v; want the server's 4096", c, err)
	}
}

// TestCollectAfterCloseDropped: a request still in the handler when its instance has
// stopped (and closed the collector) does not reopen a file that nobody would close.
func TestCollectAfterCloseDropped(t *testing.T) {
	dir := t.TempDir()
	c := newCollector(&instance.Collector{Dir: dir, Endpoint: "shop", Deployment: "blue", SamplingRate: 1,
		RollingRate: "Hour", Collections: []string{"response"}, MaxFileBytes: 1 << 20})
	if err := c.response("one", 200, "application/json", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := c.response("two", 200, "application/json", []byte(`{"a":2}`)); err != nil {
		t.Fatalf("a record after close: %v", err)
	}
	if f := c.files["response"]; f == nil || f.f != nil {
		t.Errorf("a record after close left a file open")
	}
	if recs, _ := readCollection(t, dir, "response"); len(recs) != 1 {
		t.Errorf("%d records, want the one written before close", len(recs))
	}
}
