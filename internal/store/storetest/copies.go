package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	. "github.com/berthml/berth/internal/store"
)

// testTimestamps checks that the store, not the caller, sets creation and update times.
func testTimestamps(t *testing.T, s Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	s.CreateEndpoint(ctx, &Endpoint{Name: "ep", CreatedAt: old, UpdatedAt: old})
	s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "d", CreatedAt: old, UpdatedAt: old})
	s.CreateAsset(ctx, &Asset{Kind: KindModel, Name: "m", Version: "1", CreatedAt: old})
	s.PutConnection(ctx, &Connection{Name: "c", CreatedAt: old, UpdatedAt: old})
	e, err := s.GetEndpoint(ctx, "ep")
	if err != nil || e.CreatedAt.Before(before) || e.UpdatedAt.Before(e.CreatedAt) {
		t.Fatalf("endpoint: %+v %v", e, err)
	}
	up, err := s.UpdateEndpoint(ctx, "ep", func(e *Endpoint) error { e.State = "Succeeded"; return nil })
	if err != nil || up.UpdatedAt.Before(e.UpdatedAt) {
		t.Fatalf("updated endpoint: %+v %v", up, err)
	}
	if got, _ := s.GetEndpoint(ctx, "ep"); !got.CreatedAt.Equal(e.CreatedAt) || !got.UpdatedAt.Equal(up.UpdatedAt) {
		t.Fatalf("after update: created %v updated %v, want %v %v", got.CreatedAt, got.UpdatedAt, e.CreatedAt, up.UpdatedAt)
	}
	if d, err := s.GetDeployment(ctx, "ep", "d"); err != nil || d.CreatedAt.Before(before) || d.UpdatedAt.Before(before) {
		t.Fatalf("deployment: %+v %v", d, err)
	}
	if a, err := s.GetAsset(ctx, KindModel, "m", "1"); err != nil || a.CreatedAt.Before(before) {
		t.Fatalf("asset: %+v %v", a, err)
	}
	if c, err := s.GetConnection(ctx, "c"); err != nil || c.CreatedAt.Before(before) || c.UpdatedAt.Before(before) {
		t.Fatalf("connection: %+v %v", c, err)
	}
}

// testCopies checks that callers cannot change stored state through the values they
// passed in or got back.
func testCopies(t *testing.T, s Store) {
	ctx := t.Context()
	traffic, spec := map[string]int{"blue": 100}, []byte(`{"a":1}`)
	s.CreateEndpoint(ctx, &Endpoint{Name: "ep", Spec: spec, Traffic: traffic})
	traffic["blue"], spec[2] = 0, 'X'
	checkEndpoint(t, s, "after changing what was passed to create")

	e, _ := s.GetEndpoint(ctx, "ep")
	e.Traffic["blue"], e.Spec[2] = 0, 'X'
	checkEndpoint(t, s, "after changing what get returned")

	if l, _ := s.ListEndpoints(ctx); len(l) == 1 {
		l[0].Traffic["green"] = 1
	}
	checkEndpoint(t, s, "after changing what list returned")

	boom := errors.New("boom")
	s.UpdateEndpoint(ctx, "ep", func(e *Endpoint) error { e.Traffic["blue"], e.Spec[2] = 0, 'X'; return boom })
	checkEndpoint(t, s, "after a failed update changed the maps it was given")

	up, _ := s.UpdateEndpoint(ctx, "ep", func(e *Endpoint) error { return nil })
	up.Traffic["blue"] = 0
	checkEndpoint(t, s, "after changing what update returned")

	tags, aspec := map[string]string{"k": "v"}, []byte(`{"a":1}`)
	s.CreateAsset(ctx, &Asset{Kind: KindData, Name: "d", Version: "1", Tags: tags, Spec: aspec})
	tags["k"], aspec[2] = "changed", 'X'
	a, _ := s.GetAsset(ctx, KindData, "d", "1")
	if a.Tags["k"] != "v" || string(a.Spec) != `{"a":1}` {
		t.Fatalf("asset after changing what was passed to create: %+v", a)
	}
	a.Tags["k"], a.Spec[2] = "changed", 'X'
	if l, _ := s.ListAssets(ctx, KindData, "d"); len(l) != 1 || l[0].Tags["k"] != "v" || string(l[0].Spec) != `{"a":1}` {
		t.Fatalf("asset after changing what get returned: %+v", l)
	}

	sealed := []byte{1, 2}
	s.PutConnection(ctx, &Connection{Name: "c", Public: json.RawMessage(`{}`), Sealed: sealed})
	sealed[0] = 9
	c, _ := s.GetConnection(ctx, "c")
	if c.Sealed[0] != 1 {
		t.Fatalf("connection after changing what was passed to put: %v", c.Sealed)
	}
	c.Sealed[0] = 9
	if c, _ := s.GetConnection(ctx, "c"); c.Sealed[0] != 1 {
		t.Fatalf("connection after changing what get returned: %v", c.Sealed)
	}

	s.CreateDeployment(ctx, &Deployment{Endpoint: "ep", Name: "blue", Error: json.RawMessage(`{"code":"A"}`)})
	d, _ := s.GetDeployment(ctx, "ep", "blue")
	d.Error[2] = 'X'
	if d, _ := s.GetDeployment(ctx, "ep", "blue"); string(d.Error) != `{"code":"A"}` {
		t.Fatalf("deployment after changing what get returned: %s", d.Error)
	}
}

// checkEndpoint checks that endpoint "ep" still holds what testCopies stored.
func checkEndpoint(t *testing.T, s Store, when string) {
	t.Helper()
	e, err := s.GetEndpoint(t.Context(), "ep")
	if err != nil || len(e.Traffic) != 1 || e.Traffic["blue"] != 100 || string(e.Spec) != `{"a":1}` {
		t.Fatalf("endpoint %s: %+v %v", when, e, err)
	}
}
