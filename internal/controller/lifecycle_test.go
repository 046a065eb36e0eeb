package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

func TestBusyWhileCreating(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rt.setNeverReady("slow")
	if _, err := h.c.CreateDeployment(ctx, h.input("slow")); err != nil {
		t.Fatalf("CreateDeployment slow: %v", err)
	}
	eventually(t, "the slow instance started", func() bool { s, _ := h.rt.counts("slow", 0); return s == 1 })
	if d, err := h.c.GetDeployment(ctx, "shop", "slow"); err != nil || d.State != wire.StateCreating {
		t.Fatalf("GetDeployment slow = %v, %v; want it %s", d, err, wire.StateCreating)
	}

	_, err := h.c.CreateDeployment(ctx, h.input("other"))
	wantDiag(t, err, diag.OperationCanceled, "shop")
	wantDiag(t, h.c.DeleteDeployment(ctx, "shop", "slow"), diag.OperationCanceled, "shop")
	wantDiag(t, h.c.DeleteEndpoint(ctx, "shop"), diag.OperationCanceled, "shop")
	if _, err := h.c.GetDeployment(ctx, "shop", "other"); err == nil {
		t.Error("the refused deployment was stored")
	}

	// Close cancels the rollout in progress and stops its instance.
	h.closeController()
	if starts, ok := h.rt.balanced("slow"); starts != 1 || !ok {
		t.Errorf("after Close: %d starts, balanced %v; want 1 start, stopped", starts, ok)
	}
}

func TestDeleteDeploymentWithTraffic(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.deploy("blue")
	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"blue": 100}}); err != nil {
		t.Fatalf("UpdateEndpoint blue=100: %v", err)
	}
	wantDiag(t, h.c.DeleteDeployment(ctx, "shop", "blue"), diag.BadArgument, "blue")
	if _, err := h.c.GetDeployment(ctx, "shop", "blue"); err != nil {
		t.Fatalf("the refused delete removed the deployment: %v", err)
	}
	if starts, stops := h.rt.counts("blue", 0); starts != 1 || stops != 0 {
		t.Errorf("after the refused delete: %d starts, %d stops, want 1 and 0", starts, stops)
	}

	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"blue": 0}}); err != nil {
		t.Fatalf("UpdateEndpoint blue=0: %v", err)
	}
	if err := h.c.DeleteDeployment(ctx, "shop", "blue"); err != nil {
		t.Fatalf("DeleteDeployment: %v", err)
	}
	_, err := h.c.GetDeployment(ctx, "shop", "blue")
	wantDiag(t, err, diag.DeploymentNotFound, "blue")
	if starts, ok := h.rt.balanced("blue"); starts != 1 || !ok {
		t.Errorf("after delete: %d starts, balanced %v; want 1 start, stopped", starts, ok)
	}
	if td := h.publishedDeployment("blue"); td != nil {
		t.Errorf("the published table still lists blue: %+v", td)
	}
	ep, err := h.c.GetEndpoint(ctx, "shop")
	if err != nil {
		t.Fatalf("GetEndpoint: %v", err)
	}
	if _, ok := ep.Traffic["blue"]; ok {
		t.Errorf("traffic %v still names the deleted deployment", ep.Traffic)
	}
}

func TestUpdateDeploymentScaleAndReplace(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.deploy("blue")

	// instance_count alone: the serving instance stays, one more starts.
	if _, err := h.c.UpdateDeployment(ctx, h.input("blue", "instance_count: 2")); err != nil {
		t.Fatalf("UpdateDeployment instance_count 2: %v", err)
	}
	h.waitState("blue", wire.StateSucceeded)
	for idx, want := range [][2]int{{1, 0}, {1, 0}} {
		if starts, stops := h.rt.counts("blue", idx); starts != want[0] || stops != want[1] {
			t.Errorf("after scale up, instance %d: %d starts, %d stops, want %v", idx, starts, stops, want)
		}
	}
	eventually(t, "the published table lists two instances", func() bool {
		td := h.publishedDeployment("blue")
		return td != nil && len(td.Instances) == 2
	})

	// Any other change: a new set replaces the old one once ready.
	if _, err := h.c.UpdateDeployment(ctx, h.input("blue", "instance_count: 2", "environment_variables: {COLOR: red}")); err != nil {
		t.Fatalf("UpdateDeployment environment_variables: %v", err)
	}
	// Succeeded as soon as the new set serves; the old set drains, then stops.
	h.waitState("blue", wire.StateSucceeded)
	eventually(t, "the old instances stopped after the drain", func() bool {
		_, stops0 := h.rt.counts("blue", 0)
		_, stops1 := h.rt.counts("blue", 1)
		return stops0 == 1 && stops1 == 1
	})
	for idx, want := range [][2]int{{1, 1}, {1, 1}, {1, 0}, {1, 0}} {
		if starts, stops := h.rt.counts("blue", idx); starts != want[0] || stops != want[1] {
			t.Errorf("after replace, instance %d: %d starts, %d stops, want %v", idx, starts, stops, want)
		}
	}
	eventually(t, "the published table lists the new instances", func() bool {
		td := h.publishedDeployment("blue")
		if td == nil || len(td.Instances) != 2 {
			return false
		}
		return td.Instances[0].Addr == h.rt.addr("blue", 2) && td.Instances[1].Addr == h.rt.addr("blue", 3)
	})
}

func TestCreateDeploymentFailedStart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rt.failStarts("blue", errors.New("no such interpreter"))
	if _, err := h.c.CreateDeployment(ctx, h.input("blue")); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	d := h.waitState("blue", wire.StateFailed)
	var de diag.Error
	if err := json.Unmarshal(d.Error, &de); err != nil {
		t.Fatalf("stored error %s: %v", d.Error, err)
	}
	if de.Code != diag.InternalServerError || !strings.Contains(de.Message, "no such interpreter") {
		t.Errorf("stored error %s: %s, want %s quoting the runtime's error", de.Code, de.Message, diag.InternalServerError)
	}
	eventually(t, "the Create operation is recorded as Failed", func() bool {
		ops, err := h.c.Operations(ctx, "shop", 10)
		if err != nil {
			t.Fatalf("Operations: %v", err)
		}
		for _, op := range ops {
			if op.Deployment == "blue" && op.Kind == "Create" {
				return op.State == "Failed" && len(op.Error) > 0
			}
		}
		return false
	})
	if td := h.publishedDeployment("blue"); td == nil || len(td.Instances) != 0 {
		t.Errorf("published %+v, want blue listed with no instance", td)
	}
	// A failed deployment does not block the endpoint.
	h.deploy("green")
}
