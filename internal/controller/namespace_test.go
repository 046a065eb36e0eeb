package controller_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// TestLocalNamespace checks the rules of local endpoints: list sees one namespace,
// a request in the wrong one is EndpointNotFound naming the flag, a name is taken
// in both, and a local endpoint is published without keys.
func TestLocalNamespace(t *testing.T) {
	h := newHarness(t) // creates the managed endpoint shop
	ctx := context.Background()
	rec, err := h.c.CreateEndpoint(ctx, &spec.Endpoint{Name: "dev"}, true)
	if err != nil {
		t.Fatalf("create local endpoint: %v", err)
	}
	if !rec.Local {
		t.Fatalf("created local endpoint reads back managed: %+v", rec)
	}
	names := func(eps []*store.Endpoint) (out []string) {
		for _, e := range eps {
			out = append(out, e.Name)
		}
		return out
	}
	for local, want := range map[bool]string{true: "dev", false: "shop"} {
		eps, err := h.c.ListEndpoints(ctx, local)
		if err != nil || strings.Join(names(eps), ",") != want {
			t.Errorf("list local=%v: %v %v, want [%s]", local, names(eps), err, want)
		}
	}

	for _, tc := range []struct {
		name  string
		local bool
		hint  string // "" = no error
	}{
		{"dev", true, ""},
		{"shop", false, ""},
		{"dev", false, "exists as a local endpoint: add --local"},
		{"shop", true, "exists as a managed endpoint: drop --local"},
		{"none", true, ""}, // the operation itself reports a missing endpoint
	} {
		err := h.c.CheckNamespace(ctx, tc.name, tc.local)
		if tc.hint == "" {
			if err != nil {
				t.Errorf("%s local=%v: %v", tc.name, tc.local, err)
			}
			continue
		}
		if de := wantDiag(t, err, diag.EndpointNotFound, tc.name); !strings.Contains(de.Message, tc.hint) {
			t.Errorf("%s local=%v: %q, want it to say %q", tc.name, tc.local, de.Message, tc.hint)
		}
	}

	for _, tc := range []struct {
		name  string
		local bool
		hint  string
	}{
		{"shop", true, "already exists as a managed endpoint"},
		{"dev", false, "already exists as a local endpoint"},
		{"dev", true, "already exists:"},
	} {
		_, err := h.c.CreateEndpoint(ctx, &spec.Endpoint{Name: tc.name}, tc.local)
		if de := wantDiag(t, err, diag.EndpointAlreadyExists, tc.name); !strings.Contains(de.Message, tc.hint) {
			t.Errorf("create %s local=%v: %q, want it to say %q", tc.name, tc.local, de.Message, tc.hint)
		}
	}

	_, err = h.c.RegenerateKey(ctx, "dev", "Primary")
	if de := wantDiag(t, err, diag.BadArgument, "dev"); !strings.Contains(de.Message, "need no key") {
		t.Errorf("regenerate-keys on a local endpoint: %q", de.Message)
	}
	tb := h.published()
	if dev := tb.Endpoints["dev"]; dev == nil || dev.AuthMode != table.AuthNone || len(dev.Keys) != 0 {
		t.Errorf("published local endpoint: %+v, want auth mode none and no keys", dev)
	}
	if shop := tb.Endpoints["shop"]; shop.AuthMode != table.AuthKey || len(shop.Keys) != 2 {
		t.Errorf("published managed endpoint: %+v", shop)
	}
	if err := h.c.DeleteEndpoint(ctx, "dev"); err != nil {
		t.Fatalf("delete local endpoint: %v", err)
	}
	if _, err := h.c.CreateEndpoint(ctx, &spec.Endpoint{Name: "dev"}, false); err != nil {
		t.Fatalf("a deleted local endpoint's name is free for a managed one: %v", err)
	}
}
