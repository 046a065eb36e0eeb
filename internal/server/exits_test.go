package server

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/telemetry"
)

// exitingInstance is an instance that exits when told, with err.
type exitingInstance struct {
	done chan struct{}
	err  error
}

func (i *exitingInstance) Addr() string                   { return "" }
func (i *exitingInstance) Handler() http.Handler          { return nil }
func (i *exitingInstance) Done() <-chan struct{}          { return i.done }
func (i *exitingInstance) Err() error                     { return i.err }
func (i *exitingInstance) Stop(grace time.Duration) error { return nil }

// instanceRuntime starts exitingInstances and hands each to the test.
type instanceRuntime struct{ started chan *exitingInstance }

func (r instanceRuntime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	i := &exitingInstance{done: make(chan struct{})}
	r.started <- i
	return i, nil
}

func newTracked(t *testing.T) (*trackedRuntime, *telemetry.Telemetry, chan *exitingInstance) {
	t.Helper()
	tel, err := telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tel.Stop)
	started := make(chan *exitingInstance, 1)
	return &trackedRuntime{next: instanceRuntime{started}, tel: tel.Instances}, tel, started
}

// restarts reads berth_restarts_total of deployment e/d with cause from the registry.
func restarts(t *testing.T, tel *telemetry.Telemetry, cause string) float64 {
	t.Helper()
	mfs, err := tel.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "berth_restarts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["endpoint"] == "e" && l["deployment"] == "d" && l["cause"] == cause {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A keeper that restarts an instance as soon as it sees it exit counts the restart:
// the exit's cause is recorded before the exit is observable.
func TestRestartSeenAsSoonAsExitIsCounted(t *testing.T) {
	tr, tel, started := newTracked(t)
	ctx := context.Background()
	spec := runtime.InstanceSpec{Endpoint: "e", Deployment: "d"}
	inst, err := tr.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	for range rounds {
		in := <-started
		in.err = errors.New("exit status 3")
		close(in.done)
		<-inst.Done()
		if inst, err = tr.Start(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	if got := restarts(t, tel, telemetry.CauseInstanceExited); got != rounds {
		t.Fatalf("%v restarts counted, want %d", got, rounds)
	}
}

// An instance that crashed and was never restarted because its deployment was deleted
// does not make the first start of a later deployment of the same names a restart.
func TestExitOfRemovedDeploymentForgotten(t *testing.T) {
	tr, tel, started := newTracked(t)
	ctx := context.Background()
	spec := runtime.InstanceSpec{Endpoint: "e", Deployment: "d"}
	inst, err := tr.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := <-started
	in.err = errors.New("exit status 3")
	close(in.done)
	<-inst.Done()
	routed := func(names ...string) func(func(telemetry.DeploymentLoad)) {
		return func(yield func(telemetry.DeploymentLoad)) {
			for _, n := range names {
				yield(telemetry.DeploymentLoad{Endpoint: "e", Deployment: n})
			}
		}
	}
	tr.last.retain(routed("d", "other")) // still routed: the exit is kept
	if _, ok := tr.last.exits[exitKey{"e", "d", 0}]; !ok {
		t.Fatal("the exit of a routed deployment was forgotten")
	}
	tr.last.retain(routed("other")) // d deleted
	if _, err := tr.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	<-started
	if got := restarts(t, tel, telemetry.CauseInstanceExited); got != 0 {
		t.Fatalf("the first start of a new deployment counted %v restarts", got)
	}
}
