package fleet_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/instance"
)

func TestKeeperRestartsCrashedInstance(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(key, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	first := h.rt.addr(0)
	changed := h.changed.Load()
	h.rt.crash(0)
	eventually(t, "instance 0 was restarted and is ready", func() bool {
		st := h.f.Instances(key)
		return len(st) == 1 && st[0].Restarts == 1 && st[0].State == instance.Ready
	})
	if starts, stops := h.rt.counts(0); starts != 2 || stops != 0 {
		t.Errorf("instance 0: %d starts, %d stops, want 2 and 0 (it exited on its own)", starts, stops)
	}
	second := h.rt.addr(0)
	if second == first {
		t.Fatalf("the restarted instance has the crashed one's address %s", first)
	}
	if got := h.tableAddrs(key); !slices.Equal(got, []string{second}) {
		t.Errorf("table %v, want the restarted instance %s", got, second)
	}
	if h.changed.Load() < changed+2 {
		t.Errorf("Changed called %d times since the crash, want at least 2 (out of routing, back in)", h.changed.Load()-changed)
	}
}

func TestKeeperReportsCrashLoop(t *testing.T) {
	rt := newFakeRuntime()
	loops := make(chan *diag.Error, 10)
	f := fleet.New(fleet.Config{
		Runtime: rt, StopGrace: time.Millisecond, Drain: 10 * time.Millisecond,
		CrashLoop: func(_ context.Context, k fleet.Key, de *diag.Error) {
			if k == key {
				loops <- de
			}
		},
	})
	t.Cleanup(f.Close)
	h := &harness{t: t, rt: rt, f: f, dir: t.TempDir()}
	if err := h.apply(key, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	rt.setMode(0, modeExitEarly) // every restart exits before it is ready
	rt.crash(0)
	select {
	case de := <-loops:
		if de.Code != diag.DeploymentCrashLoopBackOff || de.Target != key.Deployment {
			t.Errorf("crash loop error %s target %q, want %s target %q", de.Code, de.Target, diag.DeploymentCrashLoopBackOff, key.Deployment)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("CrashLoop was not called")
	}
	st := f.Instances(key)
	if len(st) != 1 || st[0].State != instance.Restarting || st[0].Restarts != instance.CrashLoopRestarts {
		t.Errorf("instances %+v, want one Restarting after %d restarts", st, instance.CrashLoopRestarts)
	}
	if got := h.tableAddrs(key); len(got) != 0 {
		t.Errorf("table %v, want no instance while it crash-loops", got)
	}
}
