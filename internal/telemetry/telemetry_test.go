package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berthml/berth/internal/wire"
)

// staticLoad is a LoadSource with fixed deployments.
type staticLoad []DeploymentLoad

func (s staticLoad) Load(yield func(DeploymentLoad)) {
	for _, l := range s {
		yield(l)
	}
}

func newTest(t *testing.T, now func() time.Time) *Telemetry {
	t.Helper()
	tel, err := New(Config{Step: time.Hour, Now: now}) // the ticker never fires: tests call record
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tel.Stop)
	return tel
}

func TestRequestsCountedByStatusAndModelStatus(t *testing.T) {
	tel := newTest(t, nil)
	d := tel.Scoring.Deployment("e", "blue")
	if tel.Scoring.Deployment("e", "blue") != d {
		t.Fatal("the same names resolved to two metric sets")
	}
	for range 3 {
		d.Request(200, 200, time.Millisecond, time.Microsecond, time.Millisecond/2)
	}
	d.Request(424, 418, time.Millisecond, time.Microsecond, time.Millisecond/2)
	d.Request(429, 0, time.Microsecond, 0, 0)
	d.Throttled(ReasonTooManyPending)
	d.Request(9999, 0, time.Microsecond, 0, 0) // out of range: counted, not a panic
	want := `
# HELP berth_requests_total Scoring requests answered, by status code, its class and the status run() returned (empty when run() did not answer). Azure: RequestsPerMinute.
# TYPE berth_requests_total counter
berth_requests_total{deployment="blue",endpoint="e",model_status_code="",status_code="0",status_code_class="unknown"} 1
berth_requests_total{deployment="blue",endpoint="e",model_status_code="",status_code="429",status_code_class="4xx"} 1
berth_requests_total{deployment="blue",endpoint="e",model_status_code="200",status_code="200",status_code_class="2xx"} 3
berth_requests_total{deployment="blue",endpoint="e",model_status_code="418",status_code="424",status_code_class="4xx"} 1
`
	if err := testutil.CollectAndCompare(tel.Scoring.requests, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(tel.Scoring.throttled.WithLabelValues("e", "blue", ReasonTooManyPending)); n != 1 {
		t.Fatalf("throttled %v, want 1", n)
	}
	if n := testutil.CollectAndCount(tel.Scoring.latency); n != 3 {
		t.Fatalf("%d latency series, want total, queue and run", n)
	}
}

// The hot path allocates nothing once a status has been seen.
func TestRequestDoesNotAllocate(t *testing.T) {
	tel := newTest(t, nil)
	d := tel.Scoring.Deployment("e", "blue")
	d.Request(200, 200, time.Millisecond, time.Microsecond, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { d.Request(200, 200, time.Millisecond, time.Microsecond, time.Millisecond) }); n != 0 {
		t.Fatalf("Request allocates %v times", n)
	}
}

func TestHistoryKeepsBoundedSteps(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	tel, err := New(Config{Step: 10 * time.Second, History: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Stop()
	tel.AddLoadSource(staticLoad{{Endpoint: "e", Deployment: "blue", Ready: 1}})
	d := tel.Scoring.Deployment("e", "blue")
	// 8 steps into a ring of 6: the two oldest go. Step i answers i requests.
	for i := 1; i <= 8; i++ {
		for j := 0; j < i; j++ {
			status := 200
			if j == 0 && i == 8 {
				status = 503
			}
			d.Request(status, 0, time.Duration(j+1)*time.Millisecond, 0, 0)
		}
		now = now.Add(10 * time.Second)
		tel.record(now)
	}
	h := tel.History("e", 60)
	if h.StepSeconds != 10 || len(h.Deployments) != 1 || h.Deployments[0].Name != "blue" {
		t.Fatalf("history %+v", h)
	}
	pts := h.Deployments[0].Points
	if len(pts) != 6 {
		t.Fatalf("%d points, want the ring's 6", len(pts))
	}
	if pts[0].T != "2026-12-02T01:00:30Z" || pts[5].T != "2026-12-02T01:01:20Z" {
		t.Fatalf("points from %s to %s", pts[0].T, pts[5].T)
	}
	last := pts[5]
	if diff := cmp.Diff(map[string]int64{"2xx": 7, "4xx": 0, "5xx": 1}, last.Requests); diff != "" {
		t.Fatalf("last step's requests (-want +got):\n%s", diff)
	}
	// 8 answers of 1…8 ms: the median is about 4 ms, p99 about 8 ms (bucket bounds).
	if last.LatencyP50Ms < 4 || last.LatencyP50Ms > 5.5 || last.LatencyP99Ms < 8 || last.LatencyP99Ms > 11 {
		t.Fatalf("p50 %v ms, p99 %v ms", last.LatencyP50Ms, last.LatencyP99Ms)
	}
	if got := tel.History("e", 1).Deployments[0].Points; len(got) != 6 {
		// now is 01:01:20; a minute back is 01:00:20: every kept point.
		t.Fatalf("%d points in the last minute", len(got))
	}
	now = now.Add(time.Hour)
	tel.record(now)
	if got := tel.History("e", 1).Deployments[0].Points; len(got) != 1 || got[0].Requests["2xx"] != 0 {
		t.Fatalf("an idle step: %+v", got)
	}
	if h := tel.History("other", 60); h.Endpoint != "other" || h.Deployments == nil || len(h.Deployments) != 0 {
		t.Fatalf("history of an endpoint without deployments: %+v", h)
	}
}

// selfProcess is this test process as an instance's only worker.
type selfProcess struct{ done chan struct{} }

func (p selfProcess) Pids() []int           { return []int{os.Getpid()} }
func (p selfProcess) Done() <-chan struct{} { return p.done }

func TestInstancesMeasuredAndForgotten(t *testing.T) {
	now := time.Now()
	tel := newTest(t, func() time.Time { return now })
	tel.AddLoadSource(staticLoad{{Endpoint: "e", Deployment: "blue", Ready: 1, InFlight: 3, Queued: 1, MirrorSent: 2}})
	p := selfProcess{done: make(chan struct{})}
	tel.Instances.Started("e", "blue", 4, p)
	tel.Instances.Started("e", "blue", 5, selfProcess{done: make(chan struct{})})
	tel.Instances.Restarted("e", "blue", CauseWorkerCrashed)
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	body := get(t, srv.URL)
	for _, line := range []string{
		`berth_requests_in_flight{deployment="blue",endpoint="e"} 3`,
		`berth_requests_queued{deployment="blue",endpoint="e"} 1`,
		`berth_instances{deployment="blue",endpoint="e",state="ready"} 1`,
		`berth_instances{deployment="blue",endpoint="e",state="not_ready"} 1`,
		`berth_mirror_requests_total{deployment="blue",endpoint="e",result="sent"} 2`,
		`berth_restarts_total{cause="worker_crashed",deployment="blue",endpoint="e"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("no %s in:\n%s", line, body)
		}
	}
	if !strings.Contains(body, `berth_instance_memory_bytes{deployment="blue",endpoint="e",instance="4"}`) {
		t.Errorf("no memory of instance 4")
	}
	close(p.done)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(get(t, srv.URL), `instance="4"`) {
		if time.Now().After(deadline) {
			t.Fatal("an exited instance is still measured")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestOperatedObservesPhases(t *testing.T) {
	tel := newTest(t, nil)
	start := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	ph := func(name string, from, to time.Duration) wire.Phase {
		return wire.Phase{Name: name, Start: start.Add(from).Format(time.RFC3339Nano), End: start.Add(to).Format(time.RFC3339Nano)}
	}
	tel.Operated(context.Background(), "provision", "e", "blue", start, []wire.Phase{ph("environment", 0, time.Second), ph("init()", time.Second, 3*time.Second)}, nil)
	if n := testutil.CollectAndCount(tel.deploy.phases); n != 2 {
		t.Fatalf("%d phase series, want 2", n)
	}
	if tel.Tracing() {
		t.Fatal("tracing without an OTLP endpoint")
	}
}
