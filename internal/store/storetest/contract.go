// Package storetest owns the contract tests that every store.Store implementation runs.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	. "github.com/berthml/berth/internal/store"
)

// RunContractTests checks that a Store implementation behaves as the interface says.
// open returns a new, empty store.
func RunContractTests(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"endpoints", testEndpoints},
		{"deployments", testDeployments},
		{"connections", testConnections},
		{"operations", testOperations},
		{"concurrent updates lose nothing", testConcurrentUpdates},
		{"timestamps set by the store", testTimestamps},
		{"assets", testAssets},
		{"copies in and out", testCopies},
		{"local endpoints", testLocalEndpoints},
		{"computes", testComputes},
		{"batch endpoints", testBatchEndpoints},
		{"batch deployments", testBatchDeployments},
		{"jobs", testJobs},
		{"batch copies in and out", testBatchCopies},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, open(t)) })
	}
}

func testEndpoints(t *testing.T, s Store) {
	ctx := t.Context()
	e := &Endpoint{Name: "ep1", Spec: json.RawMessage(`{"name":"ep1"}`), Traffic: map[string]int{"blue": 100}, PrimaryKey: "p", SecondaryKey: "s", State: "Succeeded"}
	if err := s.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEndpoint(ctx, e); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	got, err := s.GetEndpoint(ctx, "ep1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Traffic["blue"] != 100 || got.PrimaryKey != "p" || string(got.Spec) != `{"name":"ep1"}` || got.CreatedAt.IsZero() {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.GetEndpoint(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateEndpoint(ctx, "ep1", func(e *Endpoint) error { e.PrimaryKey = "changed"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update with fn error: %v", err)
	}
	if got, _ := s.GetEndpoint(ctx, "ep1"); got.PrimaryKey != "p" {
		t.Fatal("a failed update wrote")
	}
	up, err := s.UpdateEndpoint(ctx, "ep1", func(e *Endpoint) error { e.Traffic = map[string]int{"blue": 50, "green": 50}; return nil })
	if err != nil || up.Traffic["green"] != 50 {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := s.UpdateEndpoint(ctx, "nope", func(*Endpoint) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.CreateEndpoint(ctx, &Endpoint{Name: "ep0"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListEndpoints(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ep0" {
		t.Fatalf("list: %v %v", list, err)
	}
	// Callers write traffic into an endpoint created without any.
	if list[0].Traffic == nil || list[0].MirrorTraffic == nil {
		t.Fatalf("an endpoint created without traffic reads back nil maps: %+v", list[0])
	}
	if err := s.DeleteEndpoint(ctx, "ep0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEndpoint(ctx, "ep0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testDeployments(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "blue"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deployment without endpoint: %v", err)
	}
	s.CreateEndpoint(ctx, &Endpoint{Name: "ep"})
	s.CreateEndpoint(ctx, &Endpoint{Name: "other"})
	d := &Deployment{Endpoint: "ep", Name: "blue", Spec: json.RawMessage(`{}`), ModelArtifact: "sha256:m", CodeArtifact: "sha256:c", State: "Creating", AllTraffic: true}
	if err := s.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeployment(ctx, d); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "green"})
	s.CreateDeployment(ctx, &Deployment{Endpoint: "other", Name: "blue"})
	got, err := s.GetDeployment(ctx, "ep", "blue")
	if err != nil || got.ModelArtifact != "sha256:m" || got.State != "Creating" || !got.AllTraffic {
		t.Fatalf("get: %+v %v", got, err)
	}
	up, err := s.UpdateDeployment(ctx, "ep", "blue", func(d *Deployment) error {
		d.State, d.Error, d.AllTraffic, d.Python = "Failed", json.RawMessage(`{"code":"X"}`), false, "/usr/bin/python3"
		d.Serving = json.RawMessage(`{"spec":{}}`)
		return nil
	})
	if err != nil || up.State != "Failed" || string(up.Error) != `{"code":"X"}` || up.AllTraffic || up.Python != "/usr/bin/python3" || string(up.Serving) != `{"spec":{}}` {
		t.Fatalf("update: %+v %v", up, err)
	}
	if again, _ := s.GetDeployment(ctx, "ep", "blue"); again.AllTraffic || again.Python != "/usr/bin/python3" || string(again.Serving) != `{"spec":{}}` {
		t.Fatalf("the cleared intent came back: %+v", again)
	}
	if l, _ := s.ListDeployments(ctx, "ep"); len(l) != 2 || l[0].Name != "blue" {
		t.Fatalf("list ep: %v", l)
	}
	if l, _ := s.ListDeployments(ctx, ""); len(l) != 3 || l[0].Endpoint != "ep" || l[2].Endpoint != "other" {
		t.Fatalf("list all: %v", l)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateDeployment(ctx, "ep", "blue", func(d *Deployment) error { d.State = "changed"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update with fn error: %v", err)
	}
	if got, _ := s.GetDeployment(ctx, "ep", "blue"); got.State != "Failed" {
		t.Fatalf("a failed update wrote: %+v", got)
	}
	if _, err := s.UpdateDeployment(ctx, "ep", "nope", func(*Deployment) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.DeleteDeployment(ctx, "ep", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := s.DeleteDeployment(ctx, "ep", "green"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeployment(ctx, "ep", "green"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.DeleteEndpoint(ctx, "ep"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListDeployments(ctx, ""); len(l) != 1 || l[0].Endpoint != "other" {
		t.Fatalf("deployments after endpoint delete: %v", l)
	}
}

func testConnections(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.PutConnection(ctx, &Connection{Name: "db", Public: json.RawMessage(`{"target":"x"}`), Sealed: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConnection(ctx, &Connection{Name: "db", Public: json.RawMessage(`{"target":"y"}`), Sealed: []byte{3}}); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetConnection(ctx, "db")
	if err != nil || string(c.Public) != `{"target":"y"}` || len(c.Sealed) != 1 {
		t.Fatalf("get: %+v %v", c, err)
	}
	if l, _ := s.ListConnections(ctx); len(l) != 1 {
		t.Fatalf("list: %v", l)
	}
	if err := s.DeleteConnection(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConnection(ctx, "db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.DeleteConnection(ctx, "db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testOperations(t *testing.T, s Store) {
	ctx := t.Context()
	id, err := s.StartOperation(ctx, &Operation{Endpoint: "ep", Deployment: "blue", Kind: "Create"})
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := s.StartOperation(ctx, &Operation{Endpoint: "ep", Kind: "Update"})
	if err := s.FinishOperation(ctx, id, "Failed", json.RawMessage(`{"code":"X"}`)); err != nil {
		t.Fatal(err)
	}
	ops, err := s.ListOperations(ctx, "ep", 10)
	if err != nil || len(ops) != 2 || ops[0].ID != id2 || ops[0].State != "InProgress" || !ops[0].EndedAt.IsZero() {
		t.Fatalf("list: %+v %v", ops, err)
	}
	if ops[1].State != "Failed" || string(ops[1].Error) != `{"code":"X"}` || ops[1].EndedAt.IsZero() || ops[1].Deployment != "blue" {
		t.Fatalf("finished op: %+v", ops[1])
	}
	if ops[0].StartedAt.IsZero() || ops[0].Kind != "Update" || ops[0].Error != nil {
		t.Fatalf("started op: %+v", ops[0])
	}
	id3, _ := s.StartOperation(ctx, &Operation{Endpoint: "other", Kind: "Create"})
	id4, _ := s.StartOperation(ctx, &Operation{Endpoint: "ep", Kind: "Delete"})
	if !(id < id2 && id2 < id3 && id3 < id4) {
		t.Fatalf("ids do not increase: %d %d %d %d", id, id2, id3, id4)
	}
	ops, err = s.ListOperations(ctx, "ep", 2)
	if err != nil || len(ops) != 2 || ops[0].ID != id4 || ops[1].ID != id2 {
		t.Fatalf("list with limit 2: %+v %v", ops, err)
	}
	if ops, _ := s.ListOperations(ctx, "none", 10); len(ops) != 0 {
		t.Fatalf("operations of an unknown endpoint: %+v", ops)
	}
}

func testConcurrentUpdates(t *testing.T, s Store) {
	ctx := t.Context()
	s.CreateEndpoint(ctx, &Endpoint{Name: "ep", Traffic: map[string]int{}})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateEndpoint(ctx, "ep", func(e *Endpoint) error {
				e.Traffic[fmt.Sprint("d", i)] = i
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := s.GetEndpoint(ctx, "ep")
	if len(got.Traffic) != 20 {
		t.Fatalf("%d of 20 concurrent updates kept", len(got.Traffic))
	}
}

// testLocalEndpoints checks that Local is stored, read back, listed and kept by updates
// that try to change it: one name table holds both namespaces.
func testLocalEndpoints(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.CreateEndpoint(ctx, &Endpoint{Name: "loc", Local: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEndpoint(ctx, &Endpoint{Name: "man"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEndpoint(ctx, &Endpoint{Name: "loc"}); !errors.Is(err, ErrExists) {
		t.Fatalf("a managed endpoint named as a local one: %v, want ErrExists", err)
	}
	if got, err := s.GetEndpoint(ctx, "loc"); err != nil || !got.Local {
		t.Fatalf("get local: %+v %v", got, err)
	}
	if got, err := s.GetEndpoint(ctx, "man"); err != nil || got.Local {
		t.Fatalf("get managed: %+v %v", got, err)
	}
	list, err := s.ListEndpoints(ctx)
	if err != nil || len(list) != 2 || !list[0].Local || list[1].Local {
		t.Fatalf("list: %+v %v", list, err)
	}
	for name, was := range map[string]bool{"loc": true, "man": false} {
		if _, err := s.UpdateEndpoint(ctx, name, func(e *Endpoint) error { e.Local = !was; e.State = "Succeeded"; return nil }); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetEndpoint(ctx, name); got.Local != was || got.State != "Succeeded" {
			t.Fatalf("%s after an update that flips Local: %+v, want Local %v", name, got, was)
		}
	}
}
