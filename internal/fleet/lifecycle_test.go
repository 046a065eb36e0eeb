package fleet_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/instance"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemove(t *testing.T) {
	h := newHarness(t)
	other := fleet.Key{Endpoint: "ep", Deployment: "green"}
	if err := h.apply(key, h.desired("a", 2)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := h.apply(other, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply other: %v", err)
	}
	h.f.Remove(context.Background(), key)
	if got := h.f.Instances(key); got != nil {
		t.Errorf("Instances after Remove = %v, want nil", got)
	}
	if td := h.f.Table(key); td != nil {
		t.Errorf("Table after Remove = %+v, want nil", td)
	}
	if got := h.rt.stopped(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("stopped %v, want [0 1]", got)
	}
	if got, want := h.tableAddrs(other), h.addrs(10); !slices.Equal(got, want) {
		t.Errorf("other deployment's table %v, want %v", got, want)
	}
	if got := h.indexes(other, instance.Ready); !slices.Equal(got, []int{10}) {
		t.Errorf("other deployment's instances %v, want [10]", got)
	}
	// A deployment applied again after Remove starts from scratch.
	if err := h.apply(key, h.desired("a", 1)); err != nil {
		t.Fatalf("Apply after Remove: %v", err)
	}
	if got := h.indexes(key, instance.Ready); len(got) != 1 {
		t.Errorf("instances after Remove and Apply %v, want one", got)
	}
	h.f.Remove(context.Background(), fleet.Key{Endpoint: "ep", Deployment: "unknown"}) // a no-op
}

func TestCloseStopsEveryKeeper(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(key, h.desired("a", 2)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// A rollout still in progress is cancelled by Close too.
	h.rt.setMode(2, modeNeverReady)
	slow := h.desired("b", 1)
	slow.Readiness.FailureThreshold = 1000
	errc := make(chan error, 1)
	go func() { errc <- h.apply(key, slow) }()
	eventually(t, "instance 2 started", func() bool { s, _ := h.rt.counts(2); return s == 1 })
	h.f.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply cancelled by Close = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return after Close")
	}
	for _, idx := range []int{0, 1, 2} {
		if starts, stops := h.rt.counts(idx); starts != 1 || stops != starts {
			t.Errorf("instance %d: %d starts, %d stops, want 1 and 1", idx, starts, stops)
		}
	}
	for _, st := range h.f.Instances(key) {
		t.Errorf("instance %d still known after Close (%s)", st.Index, st.State)
	}
}

func TestApplyCancelsRolloutInProgress(t *testing.T) {
	h := newHarness(t)
	h.rt.setMode(0, modeNeverReady)
	slow := h.desired("a", 1)
	slow.Readiness.FailureThreshold = 1000 // 50 s: only the second Apply ends it
	errc := make(chan error, 1)
	go func() { errc <- h.apply(key, slow) }()
	eventually(t, "instance 0 started", func() bool { s, _ := h.rt.counts(0); return s == 1 })

	if err := h.apply(key, h.desired("b", 1)); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("first Apply = %v, want context.Canceled", err)
		}
	default:
		t.Fatal("the first Apply was still running when the second returned")
	}
	if starts, stops := h.rt.counts(0); starts != 1 || stops != 1 {
		t.Errorf("instance 0 of the cancelled rollout: %d starts, %d stops, want 1 and 1", starts, stops)
	}
	if got := h.indexes(key, instance.Ready); !slices.Equal(got, []int{1}) {
		t.Errorf("instances %v, want [1]", got)
	}
	if got, want := h.tableAddrs(key), h.addrs(1); !slices.Equal(got, want) {
		t.Errorf("table %v, want %v", got, want)
	}
}

func TestApplyParentCancelled(t *testing.T) {
	h := newHarness(t)
	h.rt.setMode(0, modeNeverReady)
	slow := h.desired("a", 1)
	slow.Readiness.FailureThreshold = 1000
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.f.Apply(ctx, key, slow) }()
	eventually(t, "instance 0 started", func() bool { s, _ := h.rt.counts(0); return s == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return after its context was cancelled")
	}
	if starts, stops := h.rt.counts(0); starts != 1 || stops != 1 {
		t.Errorf("instance 0: %d starts, %d stops, want 1 and 1", starts, stops)
	}
	if got := h.f.Instances(key); len(got) != 0 {
		t.Errorf("instances after a cancelled rollout: %v, want none", got)
	}
}
