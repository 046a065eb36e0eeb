package controller_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/memory"
	"github.com/berthml/berth/internal/wire"
)

// harness is a controller over the in-memory store, a registry on a temp artifacts
// store and the fake runtime; it keeps the last published routing table.
type harness struct {
	t    *testing.T
	c    *controller.Controller
	st   *memory.Store
	arts *artifacts.Store
	rt   *fakeRuntime
	dir  string // the controller's data dir

	mu    sync.Mutex
	last  *table.Table
	close sync.Once
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatalf("open artifacts: %v", err)
	}
	h := &harness{t: t, st: memory.New(), arts: arts, rt: newFakeRuntime(), dir: t.TempDir()}
	h.c = controller.New(controller.Config{
		Store:     h.st,
		Registry:  registry.New(h.st, arts, nil),
		Artifacts: arts,
		Runtime:   h.rt,
		DataDir:   h.dir,
		Publish: func(tb *table.Table) {
			h.mu.Lock()
			h.last = tb
			h.mu.Unlock()
		},
		StopGrace: time.Millisecond,
		Drain:     10 * time.Millisecond,
	})
	t.Cleanup(h.closeController)
	if _, err := h.c.CreateEndpoint(context.Background(), &spec.Endpoint{Name: "shop"}, false); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return h
}

func (h *harness) closeController() { h.close.Do(h.c.Close) }

// published returns the last published routing table.
func (h *harness) published() *table.Table {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// publishedDeployment returns a deployment of endpoint shop in the last published table.
func (h *harness) publishedDeployment(name string) *table.Deployment {
	tb := h.published()
	if tb == nil || tb.Endpoints["shop"] == nil {
		return nil
	}
	return tb.Endpoints["shop"].Deployments[name]
}

// codeArtifact stores a folder holding score.py and returns its digest.
func (h *harness) codeArtifact() string {
	h.t.Helper()
	dir := h.t.TempDir()
	src := "def init():\n    pass\n\ndef run(raw):\n    return raw\n"
	if err := os.WriteFile(filepath.Join(dir, "score.py"), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := archive.WriteTar(&buf, dir); err != nil {
		h.t.Fatalf("WriteTar: %v", err)
	}
	digest, _, err := h.arts.Put(&buf)
	if err != nil {
		h.t.Fatalf("Put: %v", err)
	}
	return digest
}

// input decodes a one-instance deployment of endpoint shop with uploaded code; extra
// is more YAML.
func (h *harness) input(name string, extra ...string) controller.DeploymentInput {
	h.t.Helper()
	yml := "name: " + name + `
endpoint_name: shop
code_configuration:
  code: ./src
  scoring_script: score.py
` + strings.Join(extra, "\n")
	if !strings.Contains(yml, "instance_count:") {
		yml += "\ninstance_count: 1\n"
	}
	d, err := spec.DecodeDeployment("test.yml", []byte(yml), nil)
	if err != nil {
		h.t.Fatalf("DecodeDeployment: %v", err)
	}
	return controller.DeploymentInput{Spec: d, CodeArtifact: h.codeArtifact()}
}

// waitState polls the deployment until it is in state.
func (h *harness) waitState(name, state string) *store.Deployment {
	h.t.Helper()
	var last *store.Deployment
	eventually(h.t, "deployment "+name+" is "+state, func() bool {
		d, err := h.c.GetDeployment(context.Background(), "shop", name)
		if err != nil {
			h.t.Fatalf("GetDeployment: %v", err)
		}
		last = d
		return d.State == state
	})
	return last
}

// deploy creates a deployment and waits until it succeeded.
func (h *harness) deploy(name string) {
	h.t.Helper()
	if _, err := h.c.CreateDeployment(context.Background(), h.input(name)); err != nil {
		h.t.Fatalf("CreateDeployment %s: %v", name, err)
	}
	h.waitState(name, wire.StateSucceeded)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantDiag fails unless err is a diag.Error with code and target.
func wantDiag(t *testing.T, err error, code diag.Code, target string) *diag.Error {
	t.Helper()
	var de *diag.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want a %s diag.Error", err, err, code)
	}
	if de.Code != code || de.Target != target {
		t.Fatalf("error %s target %q (%v), want %s target %q", de.Code, de.Target, err, code, target)
	}
	return de
}

func TestCreateDeploymentWiring(t *testing.T) {
	h := newHarness(t)
	in := h.input("blue")
	created, err := h.c.CreateDeployment(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	if created.State != wire.StateCreating || created.CodeArtifact != in.CodeArtifact {
		t.Errorf("created %s with code %q, want %s with %q", created.State, created.CodeArtifact, wire.StateCreating, in.CodeArtifact)
	}
	d := h.waitState("blue", wire.StateSucceeded)
	if len(d.Error) != 0 {
		t.Errorf("succeeded deployment has error %s", d.Error)
	}
	if starts, stops := h.rt.counts("blue", 0); starts != 1 || stops != 0 {
		t.Errorf("instance 0: %d starts, %d stops, want 1 and 0", starts, stops)
	}
	if !h.rt.hadScript("blue", 0) {
		t.Error("the instance started without its entry script: the code artifact was not copied")
	}
	var td *table.Deployment
	eventually(t, "the published table lists blue with one instance", func() bool {
		td = h.publishedDeployment("blue")
		return td != nil && len(td.Instances) == 1
	})
	if got, want := td.Instances[0].Addr, h.rt.addr("blue", 0); got != want {
		t.Errorf("published instance %s, want %s", got, want)
	}
	if td.RequestTimeout != 5*time.Second || td.MaxConcurrent != 1 {
		t.Errorf("published settings timeout %s, concurrency %d, want the defaults 5s and 1", td.RequestTimeout, td.MaxConcurrent)
	}

	logs, err := h.c.Logs("shop", "blue", "storage-initializer", 100)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	for _, want := range []string{"preparing instance 0 of deployment shop/blue", "copied code", "instance 0 ready"} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("storage-initializer log lacks %q:\n%s", want, logs)
		}
	}

	_, err = h.c.CreateDeployment(context.Background(), h.input("blue"))
	wantDiag(t, err, diag.DeploymentAlreadyExists, "blue")

	h.closeController()
	if starts, ok := h.rt.balanced("blue"); starts != 1 || !ok {
		t.Errorf("after Close: %d starts, balanced %v; want 1 start, stopped", starts, ok)
	}
}

func TestEndpointTrafficValidation(t *testing.T) {
	h := newHarness(t)
	h.deploy("blue")
	ctx := context.Background()

	_, err := h.c.CreateEndpoint(ctx, &spec.Endpoint{Name: "shop2", Traffic: map[string]int{"blue": 100}}, false)
	wantDiag(t, err, diag.BadArgument, "traffic")

	tests := []struct {
		name     string
		endpoint string
		change   controller.EndpointChange
		code     diag.Code
		target   string // of the error, or of its only detail when detail is set
		detail   bool
	}{
		{name: "unknown in traffic", endpoint: "shop", change: controller.EndpointChange{Traffic: map[string]int{"blue": 50, "nope": 50}},
			code: diag.BadArgument, target: "traffic.nope", detail: true},
		{name: "unknown in mirror", endpoint: "shop", change: controller.EndpointChange{MirrorTraffic: map[string]int{"nope": 10}},
			code: diag.BadArgument, target: "mirror_traffic.nope", detail: true},
		{name: "missing endpoint", endpoint: "missing", change: controller.EndpointChange{Traffic: map[string]int{"blue": 100}},
			code: diag.EndpointNotFound, target: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.c.UpdateEndpoint(ctx, tt.endpoint, tt.change)
			if !tt.detail {
				wantDiag(t, err, tt.code, tt.target)
				return
			}
			de := wantDiag(t, err, tt.code, "")
			if len(de.Details) != 1 || de.Details[0].Target != tt.target || de.Details[0].Code != tt.code {
				t.Errorf("details %+v, want one %s with target %s", de.Details, tt.code, tt.target)
			}
		})
	}
	ep, err := h.c.GetEndpoint(ctx, "shop")
	if err != nil {
		t.Fatalf("GetEndpoint: %v", err)
	}
	if len(ep.Traffic) != 0 || len(ep.MirrorTraffic) != 0 {
		t.Errorf("rejected changes changed the endpoint: traffic %v, mirror %v", ep.Traffic, ep.MirrorTraffic)
	}

	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Traffic: map[string]int{"blue": 100}}); err != nil {
		t.Fatalf("UpdateEndpoint blue=100: %v", err)
	}
	if got := h.published().Endpoints["shop"].Traffic["blue"]; got != 100 {
		t.Errorf("published traffic of blue %d, want 100", got)
	}
}
