package autoscale

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDeployment is what Run scales: a replica count and a synthetic load.
type fakeDeployment struct {
	replicas, busy, queued atomic.Int64
	mu                     sync.Mutex
	decisions              []Decision
}

func (f *fakeDeployment) sample() Sample {
	return Sample{Replicas: int(f.replicas.Load()), Busy: int(f.busy.Load()), Queued: int(f.queued.Load())}
}

func (f *fakeDeployment) scale(_ context.Context, n int) error {
	f.replicas.Store(int64(n))
	return nil
}

func (f *fakeDeployment) log(d Decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, d)
}

// waitFor polls cond until it holds or 2 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startRun(t *testing.T, s Settings, sample func() Sample, scale func(context.Context, int) error, log func(Decision)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, sample, scale, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestRunScalesUpThenBackToMin(t *testing.T) {
	f := &fakeDeployment{}
	f.replicas.Store(1)
	f.busy.Store(1)
	f.queued.Store(10)
	// Polling 10 ms: the scale-down delay is 200 ms.
	startRun(t, Settings{MinInstances: 1, MaxInstances: 3, PollingInterval: 10 * time.Millisecond}, f.sample, f.scale, f.log)

	waitFor(t, "scaled to 3", func() bool { return f.replicas.Load() == 3 })
	f.busy.Store(0)
	f.queued.Store(0)
	waitFor(t, "scaled back to 1", func() bool { return f.replicas.Load() == 1 })

	f.mu.Lock()
	defer f.mu.Unlock()
	var ups, downs int
	for _, d := range f.decisions {
		if d.Reason == "" {
			t.Errorf("decision without a reason: %+v", d)
		}
		switch d.Action {
		case ScaleUp:
			ups++
		case ScaleDown:
			downs++
		}
	}
	if ups != 1 || downs != 2 {
		t.Errorf("got %d scale-ups and %d scale-downs, want 1 and 2", ups, downs)
	}
}

func TestRunClampsAtOnceAndLogsScaleErrors(t *testing.T) {
	var calls atomic.Int64
	logged := make(chan Decision, 1)
	startRun(t, Settings{MinInstances: 2, MaxInstances: 4, PollingInterval: time.Hour},
		func() Sample { return Sample{Replicas: 0} },
		func(_ context.Context, n int) error {
			calls.Add(1)
			return errors.New("cluster unreachable")
		},
		func(d Decision) {
			select {
			case logged <- d:
			default:
			}
		})
	// The first decision comes before the first tick, an hour away.
	select {
	case d := <-logged:
		if d.Action != Clamp || d.Replicas != 2 || d.Err == nil || d.Err.Error() != "scale to 2 replicas: cluster unreachable" {
			t.Errorf("first decision: action %s, replicas %d, err %v; want clamp to 2 with the scale error", d.Action, d.Replicas, d.Err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no decision logged within 2s")
	}
	if calls.Load() != 1 {
		t.Errorf("scale called %d times, want 1", calls.Load())
	}
}
