package fleet_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/rollout"
	"github.com/berthml/berth/internal/runtime"
)

var key = fleet.Key{Endpoint: "ep", Deployment: "blue"}

// harness is a fleet over a fake runtime.
type harness struct {
	t       *testing.T
	rt      *fakeRuntime
	f       *fleet.Fleet
	dir     string
	changed atomic.Int64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, rt: newFakeRuntime(), dir: t.TempDir()}
	h.f = fleet.New(fleet.Config{
		Runtime:   h.rt,
		StopGrace: time.Millisecond,
		Drain:     10 * time.Millisecond,
		Changed:   func(context.Context) { h.changed.Add(1) },
		// Deployments other than key number their instances from 10, so the fake's
		// per-index records never mix them up.
		FirstIndex: func(k fleet.Key) int {
			if k == key {
				return 0
			}
			return 10
		},
	})
	t.Cleanup(h.f.Close)
	return h
}

// desired returns a target with fast probes whose instances live under the test's folder.
func (h *harness) desired(gen string, count int) fleet.Desired {
	return fleet.Desired{
		Target: rollout.Target{Generation: gen, Count: count},
		Prepare: func(_ context.Context, index int) (runtime.InstanceSpec, error) {
			return runtime.InstanceSpec{Endpoint: key.Endpoint, Deployment: key.Deployment, Index: index,
				Dir: filepath.Join(h.dir, strconv.Itoa(index))}, nil
		},
		Readiness: fleet.Probe{Period: 50 * time.Millisecond, FailureThreshold: 20, Timeout: time.Second},
		Liveness:  fleet.Probe{Period: time.Second, FailureThreshold: 3, Timeout: time.Second},
		Routing:   fleet.Routing{RequestTimeout: time.Second, MaxConcurrent: 2},
	}
}

// apply runs Apply with a deadline so a hung rollout fails the test instead of the run.
func (h *harness) apply(k fleet.Key, want fleet.Desired) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.f.Apply(ctx, k, want)
}

// tableAddrs returns the addresses the routing entry of k lists.
func (h *harness) tableAddrs(k fleet.Key) []string {
	td := h.f.Table(k)
	if td == nil {
		return nil
	}
	var out []string
	for _, in := range td.Instances {
		out = append(out, in.Addr)
	}
	slices.Sort(out)
	return out
}

// addrs returns the fake's addresses of indexes, sorted.
func (h *harness) addrs(indexes ...int) []string {
	var out []string
	for _, i := range indexes {
		out = append(out, h.rt.addr(i))
	}
	slices.Sort(out)
	return out
}

// indexes returns the indexes Instances reports, and fails unless each is in state.
func (h *harness) indexes(k fleet.Key, state instance.State) []int {
	h.t.Helper()
	var out []int
	for _, st := range h.f.Instances(k) {
		if st.State != state {
			h.t.Errorf("instance %d is %s, want %s", st.Index, st.State, state)
		}
		out = append(out, st.Index)
	}
	return out
}

func TestApplyCreate(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(key, h.desired("a", 2)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := h.indexes(key, instance.Ready); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("instances %v, want [0 1]", got)
	}
	for _, st := range h.f.Instances(key) {
		if st.Address != h.rt.addr(st.Index) {
			t.Errorf("instance %d address %q, want %q", st.Index, st.Address, h.rt.addr(st.Index))
		}
	}
	td := h.f.Table(key)
	if td == nil {
		t.Fatal("Table is nil after a successful Apply")
	}
	if td.Name != key.Deployment || td.MaxConcurrent != 2 || td.RequestTimeout != time.Second || td.Gate == nil {
		t.Errorf("table entry %+v: want name %s, max concurrent 2, timeout 1s, a gate", td, key.Deployment)
	}
	if got, want := h.tableAddrs(key), h.addrs(0, 1); !slices.Equal(got, want) {
		t.Errorf("table addresses %v, want %v", got, want)
	}
	if h.changed.Load() == 0 {
		t.Error("Changed was never called")
	}
	if got := h.rt.stopped(); len(got) != 0 {
		t.Errorf("stopped %v, want none", got)
	}
}

func TestApplyNewGenerationReplacesAfterReady(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(key, h.desired("a", 2)); err != nil {
		t.Fatalf("Apply a: %v", err)
	}
	if err := h.apply(key, h.desired("b", 2)); err != nil {
		t.Fatalf("Apply b: %v", err)
	}
	log := h.rt.eventLog()
	pos := func(ev string) int {
		i := slices.Index(log, ev)
		if i < 0 {
			t.Fatalf("event %q missing from %v", ev, log)
		}
		return i
	}
	for _, old := range []string{"stop 0", "stop 1"} {
		for _, fresh := range []string{"ready 2", "ready 3"} {
			if pos(old) < pos(fresh) {
				t.Errorf("%q came before %q: %v", old, fresh, log)
			}
		}
	}
	if got := h.indexes(key, instance.Ready); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("instances %v, want [2 3]", got)
	}
	if got, want := h.tableAddrs(key), h.addrs(2, 3); !slices.Equal(got, want) {
		t.Errorf("table addresses %v, want %v", got, want)
	}
	if got := h.rt.stopped(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("stopped %v, want [0 1]", got)
	}
}

func TestApplyScaleInPlace(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(key, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply 1: %v", err)
	}
	if err := h.apply(key, h.desired("a", 3)); err != nil {
		t.Fatalf("Apply 3: %v", err)
	}
	if got := h.rt.started(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("after scale up started %v, want [0 1 2]", got)
	}
	if got := h.rt.stopped(); len(got) != 0 {
		t.Errorf("after scale up stopped %v, want none", got)
	}
	if got, want := h.tableAddrs(key), h.addrs(0, 1, 2); !slices.Equal(got, want) {
		t.Errorf("after scale up table %v, want %v", got, want)
	}
	if err := h.apply(key, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply 1 again: %v", err)
	}
	if got := h.rt.stopped(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("after scale down stopped %v, want [1 2]", got)
	}
	if starts, stops := h.rt.counts(0); starts != 1 || stops != 0 {
		t.Errorf("instance 0 started %d and stopped %d times, want 1 and 0", starts, stops)
	}
	if got := h.indexes(key, instance.Ready); !slices.Equal(got, []int{0}) {
		t.Errorf("instances %v, want [0]", got)
	}
	if got, want := h.tableAddrs(key), h.addrs(0); !slices.Equal(got, want) {
		t.Errorf("after scale down table %v, want %v", got, want)
	}
}

var errPrepare = errors.New("prepare failed")

func TestApplyFailedNewInstanceKeepsOld(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness, want *fleet.Desired)
		check   func(t *testing.T, err error)
		started []int // by the failed rollout
	}{
		{
			name: "prepare error",
			setup: func(h *harness, want *fleet.Desired) {
				prepare := want.Prepare
				want.Prepare = func(ctx context.Context, index int) (runtime.InstanceSpec, error) {
					if index == 3 {
						return runtime.InstanceSpec{}, errPrepare
					}
					return prepare(ctx, index)
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errPrepare) {
					t.Errorf("Apply = %v, want %v", err, errPrepare)
				}
			},
			started: []int{0, 1, 2},
		},
		{
			name:  "exits before ready",
			setup: func(h *harness, _ *fleet.Desired) { h.rt.setMode(3, modeExitEarly) },
			check: func(t *testing.T, err error) {
				if de := diag.As(err); de == nil || de.Code != diag.ResourceNotReady {
					t.Errorf("Apply = %v, want a %s diag.Error", err, diag.ResourceNotReady)
				}
			},
			started: []int{0, 1, 2, 3},
		},
		{
			name: "never ready",
			setup: func(h *harness, want *fleet.Desired) {
				h.rt.setMode(3, modeNeverReady)
				want.Readiness = fleet.Probe{Period: 20 * time.Millisecond, FailureThreshold: 5, Timeout: time.Second}
			},
			check: func(t *testing.T, err error) {
				if de := diag.As(err); de == nil || de.Code != diag.ResourceNotReady {
					t.Errorf("Apply = %v, want a %s diag.Error", err, diag.ResourceNotReady)
				}
			},
			started: []int{0, 1, 2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if err := h.apply(key, h.desired("a", 2)); err != nil {
				t.Fatalf("Apply a: %v", err)
			}
			before := h.tableAddrs(key)
			want := h.desired("b", 2)
			tt.setup(h, &want)
			tt.check(t, h.apply(key, want))
			if got := h.tableAddrs(key); !slices.Equal(got, before) {
				t.Errorf("table after the failed rollout %v, want the old %v", got, before)
			}
			if got := h.indexes(key, instance.Ready); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("instances %v, want the old [0 1]", got)
			}
			if got := h.rt.started(); !slices.Equal(got, tt.started) {
				t.Errorf("started %v, want %v", got, tt.started)
			}
			// Every new instance that started was stopped; the old ones were not.
			if got, want := h.rt.stopped(), tt.started[2:]; !slices.Equal(got, want) {
				t.Errorf("stopped %v, want %v", got, want)
			}
		})
	}
}
