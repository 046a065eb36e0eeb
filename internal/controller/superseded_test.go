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

// TestServingVersionOnlyAfterAFailedUpdate: a restart serves the recorded version again
// only when the current one is another (an update that failed), not when the version
// that succeeded failed itself (a crash loop) or nothing succeeded yet.
func TestServingVersionOnlyAfterAFailedUpdate(t *testing.T) {
	served := func(spec, model string) json.RawMessage {
		b, _ := json.Marshal(store.Served{Spec: json.RawMessage(spec), ModelArtifact: model, CodeArtifact: "c", Python: "/opt/venv/bin/python"})
		return b
	}
	current := store.Deployment{Spec: json.RawMessage(`{"a":2}`), ModelArtifact: "m", CodeArtifact: "c", State: wire.StateFailed, Python: ""}
	for _, tc := range []struct {
		name    string
		serving json.RawMessage
		want    bool
	}{
		{"never succeeded", nil, false},
		{"the version that succeeded crash-looped", served(`{"a":2}`, "m"), false},
		{"an update of the spec failed", served(`{"a":1}`, "m"), true},
		{"an update of the model failed", served(`{"a":2}`, "m0"), true},
		{"unreadable", json.RawMessage(`{`), false},
	} {
		rec := current
		rec.Serving = tc.serving
		good, ok := servingVersion(&rec)
		if ok != tc.want {
			t.Errorf("%s: restore = %v, want %v", tc.name, ok, tc.want)
			continue
		}
		if ok && (string(good.Spec) == string(rec.Spec) && good.ModelArtifact == rec.ModelArtifact || good.Python != "/opt/venv/bin/python" || good.State != wire.StateFailed) {
			t.Errorf("%s: restores %+v", tc.name, good)
		}
	}
	rec := current
	rec.Serving = served(`{"a":1}`, "m")
	if past := pastOf(&rec); past.Kept != "" || past.Before != "/opt/venv/bin/python" {
		t.Errorf("pastOf = %+v, want nothing kept and the serving version's interpreter before", past)
	}
}
