package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berthml/berth/internal/wire"
)

// seriesOf counts the series of the registry whose labels contain every one of want.
func seriesOf(t *testing.T, tel *Telemetry, want ...string) int {
	t.Helper()
	mfs, err := tel.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			all := strings.Join(labels, ",") + ","
			match := true
			for _, w := range want {
				match = match && strings.Contains(all, w+",")
			}
			if match {
				n++
			}
		}
	}
	return n
}

func TestBatchJobForgottenWhenEnded(t *testing.T) {
	tel := newTest(t, nil)
	tel.BatchJob(BatchProgress{Job: "j1", Endpoint: "e", Deployment: "d", Done: 4, Failed: 1, FilesPerSecond: 2})
	tel.BatchJob(BatchProgress{Job: "j2", Endpoint: "e", Deployment: "d", Done: 1})
	if n := seriesOf(t, tel, "job=j1"); n != 3 {
		t.Fatalf("%d series of a running job, want 3", n)
	}
	tel.BatchJob(BatchProgress{Job: "j1", Ended: true})
	if n := seriesOf(t, tel, "job=j1"); n != 0 {
		t.Fatalf("%d series of an ended job, want none", n)
	}
	if n := seriesOf(t, tel, "job=j2"); n != 3 {
		t.Fatalf("%d series of the other job, want its 3", n)
	}
}

func TestRetainForgetsDeploymentsLeavingRouting(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	tel := newTest(t, func() time.Time { return now })
	routing := &staticLoad{{Endpoint: "e", Deployment: "blue"}, {Endpoint: "e", Deployment: "green"}}
	tel.AddLoadSource(routing)
	blue, green, ep := tel.Scoring.Deployment("e", "blue"), tel.Scoring.Deployment("e", "green"), tel.Scoring.Deployment("e", "")
	for _, d := range []*Deployment{blue, green, ep} {
		d.Request(200, 200, time.Millisecond, time.Microsecond, time.Millisecond)
		d.Throttled(ReasonRateLimited)
	}
	tel.Instances.Restarted("e", "green", CauseWorkerCrashed)
	tel.Operated(context.Background(), "provision", "e", "green", now, []wire.Phase{{Name: "init()",
		Start: now.Format(time.RFC3339Nano), End: now.Add(time.Second).Format(time.RFC3339Nano)}}, nil)
	now = now.Add(time.Second)
	tel.record(now)
	if n := seriesOf(t, tel, "deployment=green"); n < 6 {
		t.Fatalf("%d series of green before it leaves routing", n)
	}

	blueSeries := seriesOf(t, tel, "endpoint=e", "deployment=blue")
	*routing = staticLoad{{Endpoint: "e", Deployment: "blue"}}
	tel.Scoring.Retain([]*Deployment{blue, ep})
	if n := seriesOf(t, tel, "deployment=green"); n != 0 {
		t.Errorf("%d series of green after it left routing, want none", n)
	}
	if n := seriesOf(t, tel, "endpoint=e", "deployment=blue"); n != blueSeries {
		t.Errorf("%d series of blue, want the %d it had", n, blueSeries)
	}
	if _, kept := tel.history.deps[[2]string{"e", "green"}]; kept {
		t.Error("green's history ring is kept")
	}
	// A request still on the old snapshot neither counts nor brings the series back.
	green.Request(503, 0, time.Millisecond, 0, 0)
	now = now.Add(time.Second)
	tel.record(now)
	if n := seriesOf(t, tel, "deployment=green"); n != 0 {
		t.Errorf("a late request brought back %d series of green", n)
	}
	if _, kept := tel.history.deps[[2]string{"e", "green"}]; kept {
		t.Error("a history step brought green's ring back")
	}
	if len(tel.history.deps) != 1 {
		t.Errorf("history of %d deployments, want blue's", len(tel.history.deps))
	}
	// The same names routed again start afresh.
	again := tel.Scoring.Deployment("e", "green")
	if again == green {
		t.Fatal("a forgotten deployment's metrics were reused")
	}
	again.Request(200, 200, time.Millisecond, 0, 0)
	if n := testutil.ToFloat64(tel.Scoring.requests.WithLabelValues("e", "green", "200", "2xx", "200")); n != 1 {
		t.Errorf("green routed again counts %v requests, want 1", n)
	}
}
