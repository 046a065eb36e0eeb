// Package storetest owns the contract tests that every store.Store implementation runs.
package storetest

import (
	"context"
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
	ctx := context.Background()
	t.Run("endpoints", func(t *testing.T) {
		s := open(t)
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
		if err := s.DeleteEndpoint(ctx, "ep0"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteEndpoint(ctx, "ep0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
	t.Run("deployments", func(t *testing.T) {
		s := open(t)
		if err := s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "blue"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deployment without endpoint: %v", err)
		}
		s.CreateEndpoint(ctx, &Endpoint{Name: "ep"})
		s.CreateEndpoint(ctx, &Endpoint{Name: "other"})
		d := &Deployment{Endpoint: "ep", Name: "blue", Spec: json.RawMessage(`{}`), ModelArtifact: "sha256:m", CodeArtifact: "sha256:c", State: "Creating"}
		if err := s.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDeployment(ctx, d); !errors.Is(err, ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "green"})
		s.CreateDeployment(ctx, &Deployment{Endpoint: "other", Name: "blue"})
		got, err := s.GetDeployment(ctx, "ep", "blue")
		if err != nil || got.ModelArtifact != "sha256:m" || got.State != "Creating" {
			t.Fatalf("get: %+v %v", got, err)
		}
		up, err := s.UpdateDeployment(ctx, "ep", "blue", func(d *Deployment) error {
			d.State, d.Error = "Failed", json.RawMessage(`{"code":"X"}`)
			return nil
		})
		if err != nil || up.State != "Failed" || string(up.Error) != `{"code":"X"}` {
			t.Fatalf("update: %+v %v", up, err)
		}
		if l, _ := s.ListDeployments(ctx, "ep"); len(l) != 2 || l[0].Name != "blue" {
			t.Fatalf("list ep: %v", l)
		}
		if l, _ := s.ListDeployments(ctx, ""); len(l) != 3 {
			t.Fatalf("list all: %v", l)
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
	})
	t.Run("connections", func(t *testing.T) {
		s := open(t)
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
	})
	t.Run("operations", func(t *testing.T) {
		s := open(t)
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
	})
	t.Run("models", func(t *testing.T) {
		s := open(t)
		for _, v := range []string{"1", "2", "10"} {
			if err := s.CreateModel(ctx, &Model{Name: "m", Version: v, Type: "custom_model", PathBase: "model", Artifact: "sha256:" + v, Tags: map[string]string{"v": v}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateModel(ctx, &Model{Name: "m", Version: "2"}); !errors.Is(err, ErrExists) {
			t.Fatalf("second create of a version: %v", err)
		}
		list, err := s.ListModels(ctx, "m")
		if err != nil || len(list) != 3 || list[0].Version != "10" || list[2].Version != "1" || list[0].Tags["v"] != "10" {
			t.Fatalf("list newest first: %+v %v", list, err)
		}
		if err := s.SetModelArchived(ctx, "m", "10", true); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetModel(ctx, "m", "10")
		if err != nil || !got.Archived || got.Artifact != "sha256:10" {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.GetModel(ctx, "m", "3"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing version: %v", err)
		}
	})
	t.Run("assets", func(t *testing.T) {
		s := open(t)
		for _, v := range []string{"1", "2"} {
			if err := s.CreateAsset(ctx, &Asset{Kind: "environment", Name: "env", Version: v, Spec: json.RawMessage(`{"image":"x"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateAsset(ctx, &Asset{Kind: "data", Name: "env", Version: "1"}); err != nil {
			t.Fatalf("the same name in another kind: %v", err)
		}
		if err := s.CreateAsset(ctx, &Asset{Kind: "environment", Name: "env", Version: "1"}); !errors.Is(err, ErrExists) {
			t.Fatalf("taken version: %v", err)
		}
		list, err := s.ListAssets(ctx, "environment", "")
		if err != nil || len(list) != 2 || list[0].Version != "2" || string(list[0].Spec) != `{"image":"x"}` {
			t.Fatalf("list: %+v %v", list, err)
		}
		if err := s.SetAssetArchived(ctx, "environment", "env", "2", true); err != nil {
			t.Fatal(err)
		}
		if a, err := s.GetAsset(ctx, "environment", "env", "2"); err != nil || !a.Archived {
			t.Fatalf("get: %+v %v", a, err)
		}
		if _, err := s.GetAsset(ctx, "data", "env", "2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	})
	t.Run("concurrent updates lose nothing", func(t *testing.T) {
		s := open(t)
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
	})
}
