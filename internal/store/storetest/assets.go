package storetest

import (
	"encoding/json"
	"errors"
	"testing"

	. "github.com/berthml/berth/internal/store"
)

// testAssets runs the asset contract once per kind, in one store, so that each kind
// also proves it does not see the others.
func testAssets(t *testing.T, s Store) {
	for _, c := range []struct {
		kind, typ string
		spec      json.RawMessage
	}{
		{KindModel, "mlflow_model", nil},
		{KindEnvironment, "", json.RawMessage(`{"image":"python:3.12"}`)},
		{KindData, "uri_folder", json.RawMessage(`{"path":"data"}`)},
	} {
		t.Run(c.kind, func(t *testing.T) { testAssetKind(t, s, c.kind, c.typ, c.spec) })
	}
}

func testAssetKind(t *testing.T, s Store, kind, typ string, spec json.RawMessage) {
	ctx := t.Context()
	// Created in this order, "newest first" is 10, 2, 1: neither the lexical nor the
	// reverse lexical order of the version strings.
	for _, v := range []string{"1", "2", "10"} {
		a := &Asset{Kind: kind, Name: "a", Version: v, Type: typ, Description: "d" + v, Tags: map[string]string{"v": v},
			PathBase: "p" + v, Spec: spec, Artifact: "sha256:" + v}
		if err := s.CreateAsset(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"9", "3"} {
		if err := s.CreateAsset(ctx, &Asset{Kind: kind, Name: "b", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAsset(ctx, &Asset{Kind: kind, Name: "a", Version: "2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create of a version: %v, want ErrExists", err)
	}
	got, err := s.GetAsset(ctx, kind, "a", "10")
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != kind || got.Name != "a" || got.Version != "10" || got.Type != typ || got.Description != "d10" ||
		len(got.Tags) != 1 || got.Tags["v"] != "10" || got.PathBase != "p10" || string(got.Spec) != string(spec) ||
		got.Artifact != "sha256:10" || got.Archived || got.CreatedAt.IsZero() {
		t.Fatalf("get: %+v", got)
	}
	if b, err := s.GetAsset(ctx, kind, "b", "9"); err != nil || b.Tags != nil || b.Spec != nil {
		t.Fatalf("an asset without tags or spec reads back %+v %v, want nil tags and spec", b, err)
	}
	checkVersions(t, s, kind, "a", "a/10 a/2 a/1")
	checkVersions(t, s, kind, "b", "b/3 b/9")
	checkVersions(t, s, kind, "", "a/10 a/2 a/1 b/3 b/9")
	checkVersions(t, s, kind, "none", "")

	if err := s.SetAssetArchived(ctx, kind, "a", "2", true); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetAsset(ctx, kind, "a", "2"); err != nil || !a.Archived || a.Description != "d2" {
		t.Fatalf("archived: %+v %v", a, err)
	}
	if l, _ := s.ListAssets(ctx, kind, "a"); len(l) != 3 || !l[1].Archived || l[0].Archived {
		t.Fatalf("list keeps archived versions, flagged: %+v", l)
	}
	if err := s.SetAssetArchived(ctx, kind, "a", "2", false); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetAsset(ctx, kind, "a", "2"); err != nil || a.Archived {
		t.Fatalf("restored: %+v %v", a, err)
	}
	if _, err := s.GetAsset(ctx, kind, "a", "3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get a missing version: %v, want ErrNotFound", err)
	}
	if err := s.SetAssetArchived(ctx, kind, "a", "3", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("archive a missing version: %v, want ErrNotFound", err)
	}
	if _, err := s.GetAsset(ctx, "other-"+kind, "a", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get in another kind: %v, want ErrNotFound", err)
	}
}

// checkVersions lists the versions of name and compares them, as "name/version" words,
// with want.
func checkVersions(t *testing.T, s Store, kind, name, want string) {
	t.Helper()
	l, err := s.ListAssets(t.Context(), kind, name)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for i, a := range l {
		if a.Kind != kind {
			t.Fatalf("list %s %q returned a %s", kind, name, a.Kind)
		}
		if i > 0 {
			got += " "
		}
		got += a.Name + "/" + a.Version
	}
	if got != want {
		t.Fatalf("list %s %q: %q, want %q", kind, name, got, want)
	}
}
