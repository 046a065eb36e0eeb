package controller

import (
	"encoding/json"
	"testing"

	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// TestSupersededRolloutsRecordNothing: the outcome of a rollout is not written over a
// newer one (an update, replace or delete that began while it ran), so a re-provision
// after a restart cannot put back the interpreter an update cleared.
func TestSupersededRolloutsRecordNothing(t *testing.T) {
	read := store.Deployment{Spec: json.RawMessage(`{"a":1}`), ModelArtifact: "m", CodeArtifact: "c", State: wire.StateSucceeded}
	for _, tc := range []struct {
		name   string
		change func(*store.Deployment)
		want   bool
	}{
		{"unchanged", func(*store.Deployment) {}, false},
		{"marked Failed by a crash loop meanwhile", func(d *store.Deployment) { d.State = wire.StateFailed }, false},
		{"an update of the same file began", func(d *store.Deployment) { d.State, d.Python = wire.StateUpdating, "" }, true},
		{"a new spec", func(d *store.Deployment) { d.Spec = json.RawMessage(`{"a":2}`) }, true},
		{"new code", func(d *store.Deployment) { d.CodeArtifact = "c2" }, true},
		{"a new model", func(d *store.Deployment) { d.ModelArtifact = "m2" }, true},
		{"a delete began", func(d *store.Deployment) { d.State = wire.StateDeleting }, true},
	} {
		now := read
		tc.change(&now)
		if got := superseded(&read, &now); got != tc.want {
			t.Errorf("%s: superseded = %v, want %v", tc.name, got, tc.want)
		}
	}
	creating := store.Deployment{Spec: read.Spec, State: wire.StateCreating}
	if superseded(&creating, &creating) {
		t.Errorf("a create's own rollout is superseded by itself")
	}
}
