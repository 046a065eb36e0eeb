package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/telemetry"
)

// runInstance answers as run() does, with the time it took, and echoes the traceparent
// it received.
func runInstance() *table.Instance {
	inst := table.NewInstance("", 2)
	inst.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-run-fn-exec-ms", "2.500")
		w.Header().Set(instance.HeaderFromRun, "true")
		w.Header().Set("x-seen-traceparent", r.Header.Get("traceparent"))
		if body, _ := io.ReadAll(r.Body); string(body) == "fail" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		io.WriteString(w, "ok")
	})
	return inst
}

func TestRequestsObservedAndTraced(t *testing.T) {
	tel, err := telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Stop()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	r := New(Config{EndpointRPS: -1, Metrics: tel.Scoring, Tracer: tp.Tracer("test")})
	defer r.Close()
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{
		"ep": {Name: "ep", AuthMode: "key", Keys: []string{"k1"}, Traffic: map[string]int{"blue": 100},
			Deployments: map[string]*table.Deployment{
				"blue": {Name: "blue", Instances: []*table.Instance{runInstance()}, RequestTimeout: time.Second, MaxConcurrent: 1, Gate: &table.Gate{}},
			}},
	}})
	front := httptest.NewServer(r)
	defer front.Close()
	post := func(key, body string) *http.Response {
		req, _ := http.NewRequest("POST", front.URL+"/endpoints/ep/score", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	ok := post("k1", "x")
	post("k1", "fail")
	post("wrong", "x")

	want := `
# HELP berth_requests_total Scoring requests answered, by status code, its class and the status run() returned (empty when run() did not answer). Azure: RequestsPerMinute.
# TYPE berth_requests_total counter
berth_requests_total{deployment="",endpoint="ep",model_status_code="",status_code="401",status_code_class="4xx"} 1
berth_requests_total{deployment="blue",endpoint="ep",model_status_code="200",status_code="200",status_code_class="2xx"} 1
berth_requests_total{deployment="blue",endpoint="ep",model_status_code="418",status_code="424",status_code_class="4xx"} 1
`
	if err := testutil.GatherAndCompare(tel.Registry(), strings.NewReader(want), "berth_requests_total"); err != nil {
		t.Fatal(err)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		if _, seen := byName[s.Name()]; !seen {
			byName[s.Name()] = s // the first request's
		}
	}
	root := byName["score"]
	if root == nil || root.Parent().SpanID().String() != "00f067aa0ba902b7" || root.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("request span %v not under the client's traceparent", root)
	}
	for name, parent := range map[string]string{"admission": "score", "queue": "score", "worker": "score", "run()": "worker"} {
		s := byName[name]
		if s == nil || s.Parent().SpanID() != byName[parent].SpanContext().SpanID() {
			t.Errorf("span %s is not a child of %s", name, parent)
		}
	}
	if d := byName["run()"].EndTime().Sub(byName["run()"].StartTime()); d != 2500*time.Microsecond {
		t.Errorf("run() span lasts %s, want the worker's 2.5 ms", d)
	}
	worker := byName["worker"].SpanContext()
	if got, want := ok.Header.Get("x-seen-traceparent"), "00-"+worker.TraceID().String()+"-"+worker.SpanID().String()+"-01"; got != want {
		t.Errorf("the instance saw traceparent %q, want the worker span's %q", got, want)
	}
}

// Without metrics and tracing the router records nothing and needs nothing.
func TestNoTelemetry(t *testing.T) {
	front := localRouter(t, 64)
	resp, _ := postLocal(t, front.URL+"/endpoints/ep/score", "x", false)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A deployment or endpoint that leaves the routing snapshot leaves /metrics with it.
func TestMetricsOfRemovedDeploymentsForgotten(t *testing.T) {
	tel, err := telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Stop()
	r := New(Config{EndpointRPS: -1, Metrics: tel.Scoring})
	defer r.Close()
	dep := func(name string) *table.Deployment {
		return &table.Deployment{Name: name, Instances: []*table.Instance{runInstance()}, RequestTimeout: time.Second, MaxConcurrent: 1, Gate: &table.Gate{}}
	}
	ep := func(name string, deps ...string) *table.Endpoint {
		e := &table.Endpoint{Name: name, AuthMode: "key", Keys: []string{"k1"}, Traffic: map[string]int{}, Deployments: map[string]*table.Deployment{}}
		for _, d := range deps {
			e.Traffic[d] = 100 / len(deps)
			e.Deployments[d] = dep(d)
		}
		return e
	}
	front := httptest.NewServer(r)
	defer front.Close()
	score := func(endpoint, deployment string) {
		req, _ := http.NewRequest("POST", front.URL+"/endpoints/"+endpoint+"/score", strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer k1")
		req.Header.Set("azureml-model-deployment", deployment)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{"ep": ep("ep", "blue", "green"), "old": ep("old", "red")}})
	score("ep", "blue")
	score("ep", "green")
	score("old", "red")
	if n, err := testutil.GatherAndCount(tel.Registry(), "berth_requests_total"); err != nil || n != 3 {
		t.Fatalf("%d request series (%v), want blue's, green's and red's", n, err)
	}
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{"ep": ep("ep", "blue")}})
	want := `
# HELP berth_requests_total Scoring requests answered, by status code, its class and the status run() returned (empty when run() did not answer). Azure: RequestsPerMinute.
# TYPE berth_requests_total counter
berth_requests_total{deployment="blue",endpoint="ep",model_status_code="200",status_code="200",status_code_class="2xx"} 1
`
	if err := testutil.GatherAndCompare(tel.Registry(), strings.NewReader(want), "berth_requests_total"); err != nil {
		t.Fatal(err)
	}
}
