package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// TestCreateReplacesFailedDeployment: create over a Failed deployment replaces it in
// one call and answers as a create does; create over any other one is refused with
// the command that changes it.
func TestCreateReplacesFailedDeployment(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rt.failStarts("red", errors.New("no such interpreter"))
	if _, err := h.c.CreateDeployment(ctx, h.input("red")); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	h.waitState("red", wire.StateFailed)

	h.rt.allowStarts("red")
	// It had run on another interpreter once: the new spec is built on the server's.
	if _, err := h.st.UpdateDeployment(ctx, "shop", "red", func(r *store.Deployment) error {
		r.Python = "/opt/earlier/bin/python3"
		r.Serving = json.RawMessage(`{"spec":{"name":"red"}}`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := h.c.CreateDeployment(ctx, h.input("red"))
	if err != nil {
		t.Fatalf("CreateDeployment over the Failed one: %v", err)
	}
	if rec.State != wire.StateCreating || len(rec.Error) != 0 || rec.Python != "" || rec.Serving != nil {
		t.Errorf("create answered %s with error %s, interpreter %q and serving version %s; want %s, no error and nothing of the old one kept", rec.State, rec.Error, rec.Python, rec.Serving, wire.StateCreating)
	}
	d := h.waitState("red", wire.StateSucceeded)
	if len(d.Error) != 0 {
		t.Errorf("the replaced deployment kept the failed one's error %s", d.Error)
	}
	logs, err := h.c.Logs("shop", "red", "storage-initializer", 1000)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if strings.Contains(string(logs), "no such interpreter") {
		t.Errorf("the failed deployment's logs were kept:\n%s", logs)
	}
	ops, err := h.c.Operations(ctx, "shop", 10)
	if err != nil {
		t.Fatalf("Operations: %v", err)
	}
	creates := 0
	for _, op := range ops {
		if op.Deployment == "red" && op.Kind == "Create" {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("%d Create operations of red recorded, want 2: %+v", creates, ops)
	}

	_, err = h.c.CreateDeployment(ctx, h.input("red"))
	de := wantDiag(t, err, diag.DeploymentAlreadyExists, "red")
	if !strings.Contains(de.Message, "berth online-deployment update -f <file>") {
		t.Errorf("message %q does not name the update command", de.Message)
	}
}

// TestCreateStopsWhatTheFailedDeploymentRuns: a deployment whose update failed still
// runs the instances of its last good rollout; create over it stops them.
func TestCreateStopsWhatTheFailedDeploymentRuns(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.deploy("green")
	h.rt.failStarts("green", errors.New("bad update"))
	if _, err := h.c.UpdateDeployment(ctx, h.input("green", "environment_variables: {A: b}")); err != nil {
		t.Fatalf("UpdateDeployment: %v", err)
	}
	h.waitState("green", wire.StateFailed)
	if starts, stops := h.rt.counts("green", 0); starts != 1 || stops != 0 {
		t.Fatalf("instance 0 after the failed update: %d starts, %d stops, want it still running", starts, stops)
	}

	// With live traffic the Failed deployment is not replaced: its old instance serves it.
	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"green": 100}}); err != nil {
		t.Fatalf("UpdateEndpoint green=100: %v", err)
	}
	_, err := h.c.CreateDeployment(ctx, h.input("green"))
	de := wantDiag(t, err, diag.DeploymentAlreadyExists, "green")
	if !strings.Contains(de.Message, "100%") || !strings.Contains(de.Message, "berth online-deployment update -f <file>") {
		t.Errorf("message %q does not name the traffic and the update command", de.Message)
	}
	if _, stops := h.rt.counts("green", 0); stops != 0 {
		t.Fatal("the refused create stopped the serving instance")
	}

	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"green": 0}}); err != nil {
		t.Fatalf("UpdateEndpoint green=0: %v", err)
	}
	h.rt.allowStarts("green")
	if _, err := h.c.CreateDeployment(ctx, h.input("green")); err != nil {
		t.Fatalf("CreateDeployment over the Failed one: %v", err)
	}
	if _, stops := h.rt.counts("green", 0); stops != 1 {
		t.Errorf("instance 0 of the failed deployment: %d stops after the create returned, want 1", stops)
	}
	h.waitState("green", wire.StateSucceeded)
	// The replaced deployment's folders are gone, so its instances count from 0 again.
	if starts, stops := h.rt.counts("green", 0); starts != 2 || stops != 1 {
		t.Errorf("instance 0: %d starts, %d stops, want 2 and 1 (the old one stopped, the new one runs)", starts, stops)
	}
	eventually(t, "the published table lists green's new instance", func() bool {
		td := h.publishedDeployment("green")
		return td != nil && len(td.Instances) == 1 && td.Instances[0].Addr == h.rt.addr("green", 0)
	})
}
