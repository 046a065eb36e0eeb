package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An Apply whose ctx is already cancelled (a stale, superseded provision) must not
// cancel the rollout in progress: that one would return context.Canceled although its
// own ctx is live, and the deployment would be recorded as Failed "context canceled".
func TestCancelledApplyLeavesLiveRolloutAlone(t *testing.T) {
	h := newHarness(t)
	h.rt.setMode(0, modeNeverReady)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.f.Apply(ctx, key, h.desired("b", 1)) }()
	eventually(t, "instance 0 started", func() bool { s, _ := h.rt.counts(0); return s > 0 })

	stale, staleCancel := context.WithCancel(context.Background())
	staleCancel()
	_ = h.f.Apply(stale, key, h.desired("a", 1))

	err := <-errc
	if ctx.Err() == nil && errors.Is(err, context.Canceled) {
		t.Errorf("live rollout returned %v although its ctx is live (superseded by an already-cancelled Apply)", err)
	}
}
