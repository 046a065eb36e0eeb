//go:build unix

package e2e

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// adminGet GETs path on the server with the admin token of server.json ("" = none).
func (s *server) adminGet(path string, withToken bool) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if withToken {
		b, err := os.ReadFile(filepath.Join(s.dataDir, "server.json"))
		if err != nil {
			s.t.Fatal(err)
		}
		var info struct{ Token string }
		json.Unmarshal(b, &info)
		req.Header.Set("Authorization", "Bearer "+info.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape parses the Prometheus text exposition into "name{labels}" → value, labels
// sorted as the client library writes them.
func scrape(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMetricsCountRequests sends 100 requests, 10 of which run() fails (424) and 5 of
// which admission refuses (429), and reads exactly those counts at /metrics.
func TestMetricsCountRequests(t *testing.T) {
	metricsAddr := freeLoopbackAddr(t)
	s := startServer(t, "", "BERTH_METRICS_ADDR="+metricsAddr)
	deployScript(t, s, "blue", behaviourScript, "request_settings: {max_concurrent_requests_per_instance: 1, request_timeout_ms: 10000}\n", "--all-traffic")
	key, _ := s.keys("dataplane")
	if status, _ := s.adminGet("/metrics", false); status != http.StatusUnauthorized {
		t.Fatalf("/metrics without the admin token: %d, want 401", status)
	}
	metrics := func() map[string]float64 {
		status, body := s.adminGet("/metrics", true)
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d %s", status, body)
		}
		return scrape(t, body)
	}
	const lbl = `deployment="blue",endpoint="dataplane"`
	// Two slow requests fill admission (2 × max_concurrent_requests_per_instance × 1 instance).
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _, body, err := s.tryScore("dataplane", key, `{"sleep": 2}`); err != nil || status != 200 {
				t.Errorf("slow request: %d %s %v", status, body, err)
			}
		}()
	}
	eventually(t, 5*time.Second, "two requests in flight, one queued", func() bool {
		m := metrics()
		return m[`berth_requests_in_flight{`+lbl+`}`] == 2 && m[`berth_requests_queued{`+lbl+`}`] == 1
	})
	for range 5 {
		if status, h, _ := s.score("dataplane", key, `{}`); status != 429 || h.Get("ms-azureml-model-error-reason") != "too_many_pending_request" {
			t.Fatalf("request beyond admission: %d %v", status, h)
		}
	}
	wg.Wait()
	for i := range 10 {
		body := `{"raise": "bad feature"}`
		if i%2 == 1 {
			body = `{"status": 418, "body": "nope"}`
		}
		if status, _, _ := s.score("dataplane", key, body); status != 424 {
			t.Fatalf("failing run(): %d, want 424", status)
		}
	}
	for range 83 {
		if status, _, body := s.score("dataplane", key, `{}`); status != 200 {
			t.Fatalf("request: %d %s", status, body)
		}
	}

	m := metrics()
	want := map[string]float64{
		`berth_requests_total{` + lbl + `,model_status_code="200",status_code="200",status_code_class="2xx"}`: 85,
		`berth_requests_total{` + lbl + `,model_status_code="500",status_code="424",status_code_class="4xx"}`: 5,
		`berth_requests_total{` + lbl + `,model_status_code="418",status_code="424",status_code_class="4xx"}`: 5,
		`berth_requests_total{` + lbl + `,model_status_code="",status_code="429",status_code_class="4xx"}`:    5,
		`berth_throttled_requests_total{` + lbl + `,reason="too_many_pending_request"}`:                       5,
		`berth_throttled_requests_total{` + lbl + `,reason="rate_limited"}`:                                   0,
		`berth_request_duration_seconds_count{` + lbl + `,phase="total"}`:                                     100,
		`berth_request_duration_seconds_count{` + lbl + `,phase="run"}`:                                       95,
		`berth_requests_in_flight{` + lbl + `}`:                                                               0,
		`berth_instances{` + lbl + `,state="ready"}`:                                                          1,
		`berth_instances{` + lbl + `,state="not_ready"}`:                                                      0,
		`berth_mirror_requests_total{` + lbl + `,result="sent"}`:                                              0,
	}
	var total float64
	for k, v := range m {
		if strings.HasPrefix(k, `berth_requests_total{`+lbl) {
			total += v
		}
	}
	if total != 100 {
		t.Errorf("berth_requests_total of blue sums to %v, want 100", total)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m[`berth_instance_memory_bytes{`+lbl+`,instance="0"}`] <= 0 {
		t.Errorf("no memory for instance 0 of blue")
	}
	if m[`berth_deploy_phase_duration_seconds_count{`+lbl+`,phase="init()"}`] != 1 {
		t.Errorf("no init() phase duration for blue's provision")
	}

	// The token-free listener serves the same metrics, and nothing else.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || scrape(t, string(b))[`berth_requests_total{`+lbl+`,model_status_code="418",status_code="424",status_code_class="4xx"}`] != 5 {
		t.Fatalf("--metrics-addr /metrics: %d\n%s", resp.StatusCode, b)
	}
	if resp, err := http.Get("http://" + metricsAddr + "/api/v1/endpoints"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("--metrics-addr serves more than /metrics: %v %v", resp, err)
	}

	// The studio's history: the latest 10 s point counts requests.
	eventually(t, 15*time.Second, "a point of history with requests", func() bool {
		status, body := s.adminGet("/api/v1/endpoints/dataplane/metrics?minutes=5", true)
		var h struct {
			Endpoint    string `json:"endpoint"`
			StepSeconds int    `json:"step_seconds"`
			Deployments []struct {
				Name   string `json:"name"`
				Points []struct {
					Requests  map[string]int64 `json:"requests"`
					P99       float64          `json:"latency_p99_ms"`
					Instances map[string]struct {
						Memory int64 `json:"memory_bytes"`
					} `json:"instances"`
				} `json:"points"`
			} `json:"deployments"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &h) != nil || h.Endpoint != "dataplane" || h.StepSeconds != 10 || len(h.Deployments) != 1 {
			t.Fatalf("history: %d %s", status, body)
		}
		pts := h.Deployments[0].Points
		if len(pts) == 0 {
			return false
		}
		last := pts[len(pts)-1]
		return last.Requests["2xx"]+last.Requests["4xx"] == 100 && last.P99 > 0 && last.Instances["0"].Memory > 0
	})
	if status, _ := s.adminGet("/api/v1/endpoints/dataplane/metrics?minutes=61", true); status != 400 {
		t.Fatalf("minutes=61: %d, want 400", status)
	}

	// The deployment shows its provision's phases, in order, for the studio's waterfall.
	status, body := s.adminGet("/api/v1/endpoints/dataplane/deployments/blue", true)
	var dep struct {
		Phases []struct{ Name, Start, End string } `json:"phases"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &dep) != nil {
		t.Fatalf("deployment: %d %s", status, body)
	}
	var names []string
	prevEnd := ""
	for _, p := range dep.Phases {
		names = append(names, p.Name)
		start, err1 := time.Parse(time.RFC3339Nano, p.Start)
		end, err2 := time.Parse(time.RFC3339Nano, p.End)
		if err1 != nil || err2 != nil || end.Before(start) || (prevEnd != "" && p.Start != prevEnd) {
			t.Errorf("phase %+v does not follow the one before (ending %s)", p, prevEnd)
		}
		prevEnd = p.End
	}
	if got := strings.Join(names, ","); got != "environment,artifact copy,import,init(),readiness" {
		t.Fatalf("phases %s", got)
	}
}

func TestMetricsAddrMustBeLoopback(t *testing.T) {
	out, err := exec.Command(berthBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--metrics-addr", "0.0.0.0:9464").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback") {
		t.Fatalf("--metrics-addr 0.0.0.0:9464 accepted: %v\n%s", err, out)
	}
}

// headersScript answers with the traceparent run() received.
const headersScript = `import json
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(req: AMLRequest):
    return AMLResponse(json.dumps({"traceparent": req.headers.get("traceparent")}), 200)
`

// otlpStub is an OTLP/HTTP trace receiver.
type otlpStub struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = gz
	}
	b, _ := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "not an OTLP trace export", 400)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpStub) byName() map[string]*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range o.spans {
		out[s.Name] = s
	}
	return out
}

// TestTracesReachOTLPCollector sends one scoring request with a traceparent and finds
// its span and the admission, queue, worker and run() spans under the client's trace,
// and run() seeing the worker span's traceparent; a provision's span has its phases as
// children, and a delete has a span of its own.
func TestTracesReachOTLPCollector(t *testing.T) {
	stub := &otlpStub{}
	collector := httptest.NewServer(stub)
	defer collector.Close()
	s := startServer(t, "", "OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	deployScript(t, s, "blue", headersScript, "", "--all-traffic")
	key, _ := s.keys("dataplane")
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	status, h, body := s.score("dataplane", key, `{}`, "traceparent", "00-"+traceID+"-"+parentID+"-01")
	if status != 200 {
		t.Fatalf("score: %d %s", status, body)
	}
	var got struct{ Traceparent string }
	json.Unmarshal([]byte(body), &got)
	deployScript(t, s, "green", headersScript, "")
	s.ok("online-deployment", "delete", "-e", "dataplane", "-n", "green", "--yes")
	var spans map[string]*tracepb.Span
	eventually(t, 10*time.Second, "the request's spans at the collector", func() bool {
		spans = stub.byName()
		for _, n := range []string{"score", "admission", "queue", "worker", "run()", "deployment provision", "deployment delete"} {
			if spans[n] == nil {
				return false
			}
		}
		return true
	})
	hexID := func(b []byte) string { return fmt.Sprintf("%x", b) }
	root := spans["score"]
	if hexID(root.TraceId) != traceID || hexID(root.ParentSpanId) != parentID {
		t.Fatalf("request span in trace %x under %x, want %s under %s", root.TraceId, root.ParentSpanId, traceID, parentID)
	}
	var reqID string
	for _, a := range root.Attributes {
		if a.Key == "x-request-id" {
			reqID = a.Value.GetStringValue()
		}
	}
	if reqID == "" || reqID != h.Get("x-request-id") {
		t.Errorf("x-request-id attribute %q, answer header %q", reqID, h.Get("x-request-id"))
	}
	for name, parent := range map[string]*tracepb.Span{"admission": root, "queue": root, "worker": root, "run()": spans["worker"]} {
		sp := spans[name]
		if hexID(sp.TraceId) != traceID || hexID(sp.ParentSpanId) != hexID(parent.SpanId) {
			t.Errorf("span %s: trace %x parent %x, want %s parent %x (%s)", name, sp.TraceId, sp.ParentSpanId, traceID, parent.SpanId, parent.Name)
		}
	}
	if want := "00-" + traceID + "-" + hexID(spans["worker"].SpanId) + "-01"; got.Traceparent != want {
		t.Errorf("run() saw traceparent %q, want %q (the worker span)", got.Traceparent, want)
	}
	prov := spans["deployment provision"]
	children := map[string]bool{}
	for _, sp := range stub.byName() {
		if hexID(sp.ParentSpanId) == hexID(prov.SpanId) {
			children[sp.Name] = true
		}
	}
	for _, n := range []string{"environment", "artifact copy", "import", "init()", "readiness"} {
		if !children[n] {
			t.Errorf("provision span has no %s child: %v", n, children)
		}
	}
}

// TestMetricsBatchJob runs a job of 6 mini-batches, one of which fails: while it runs
// /metrics has its counts and pace, and once it has ended its series are gone.
func TestMetricsBatchJob(t *testing.T) {
	settings := "  mini_batch_size: 5\n  error_threshold: -1\n  retry_settings: {max_retries: 1, timeout: 30}\n"
	dir := batchProject(t, "mbatch", failOnBadScript, settings, 30)
	s := startServer(t, "")
	deployBatch(t, s, dir, "mbatch")
	job := invokeBatch(t, s, "mbatch", filepath.Join(dir, "data"))
	lbl := `deployment="dep",endpoint="mbatch",job="` + job + `"`
	metrics := func() map[string]float64 {
		status, body := s.adminGet("/metrics", true)
		if status != 200 {
			t.Fatalf("/metrics: %d", status)
		}
		return scrape(t, body)
	}
	var status string
	eventually(t, 60*time.Second, "job "+job+" to end", func() bool {
		// The job may end between two looks: only counts seen while it ran are checked.
		m := metrics()
		if done, ok := m[`berth_batch_job_minibatches{`+lbl+`,result="done"}`]; ok {
			if failed := m[`berth_batch_job_minibatches{`+lbl+`,result="failed"}`]; done > 5 || failed > 1 || m[`berth_batch_job_files_per_second{`+lbl+`}`] < 0 {
				t.Errorf("mini-batches done %v, failed %v while running; want at most 5 and 1", done, failed)
			}
		}
		status = strings.TrimSpace(s.ok("job", "show", "-n", job, "--query", "status", "-o", "tsv"))
		return status == "Completed" || status == "Failed" || status == "Canceled"
	})
	if status != "Completed" {
		t.Fatalf("status %s", status)
	}
	for k := range metrics() {
		if strings.Contains(k, `job="`+job+`"`) {
			t.Errorf("the ended job still has %s", k)
		}
	}
}

// TestMetricsCountWorkerRestarts times a request out inside run(): its worker is
// stopped and replaced, which berth_restarts_total counts with its cause.
func TestMetricsCountWorkerRestarts(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "slow", behaviourScript, "request_settings: {request_timeout_ms: 500}\n", "--all-traffic")
	key, _ := s.keys("dataplane")
	if status, _, body := s.score("dataplane", key, `{"sleep": 3}`); status != 408 {
		t.Fatalf("slow run(): %d %s, want 408", status, body)
	}
	const lbl = `deployment="slow",endpoint="dataplane"`
	eventually(t, 10*time.Second, "the stopped worker counted", func() bool {
		_, body := s.adminGet("/metrics", true)
		m := scrape(t, body)
		return m[`berth_restarts_total{cause="worker_stopped",`+lbl+`}`] == 1 &&
			m[`berth_requests_total{`+lbl+`,model_status_code="",status_code="408",status_code_class="4xx"}`] == 1
	})
}
