package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/wire"
)

// --all-traffic is applied by the server once the deployment succeeds.
func TestAllTrafficAppliedOnSuccess(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.deploy("blue")
	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"blue": 100}}); err != nil {
		t.Fatal(err)
	}
	in := h.input("green")
	in.AllTraffic = true
	if _, err := h.c.CreateDeployment(ctx, in); err != nil {
		t.Fatal(err)
	}
	h.waitState("green", wire.StateSucceeded)
	eventually(t, "green to get all the traffic", func() bool {
		ep, err := h.c.GetEndpoint(ctx, "shop")
		return err == nil && ep.Traffic["green"] == 100 && ep.Traffic["blue"] == 0
	})
	eventually(t, "the intent to be cleared", func() bool {
		d, err := h.c.GetDeployment(ctx, "shop", "green")
		return err == nil && !d.AllTraffic
	})
}

// A server that stops between accepting the create and the deployment's success still
// ends with the traffic the user asked for: the intent is stored, and the next server
// applies it when it re-provisions the deployment.
func TestAllTrafficSurvivesARestart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rt.setNeverReady("green") // the first server never sees it succeed
	in := h.input("green")
	in.AllTraffic = true
	if _, err := h.c.CreateDeployment(ctx, in); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rollout to be under way", func() bool {
		starts, _ := h.rt.counts("green", 0)
		return starts > 0
	})
	h.closeController()

	rt := newFakeRuntime()
	c := controller.New(controller.Config{Store: h.st, Registry: registry.New(h.st, h.arts, nil), Artifacts: h.arts,
		Runtime: rt, DataDir: t.TempDir(), Publish: func(*table.Table) {}, StopGrace: time.Millisecond, Drain: 10 * time.Millisecond})
	defer c.Close()
	if err := c.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted server to give green all the traffic", func() bool {
		ep, err := c.GetEndpoint(ctx, "shop")
		return err == nil && ep.Traffic["green"] == 100
	})
}
