package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/memory"
	"github.com/berthml/berth/internal/wire"
)

const (
	testToken   = "admin-token"
	testBaseURL = "http://berth.test:8080"
)

// stamp is the time every fake record carries.
func stamp() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// logCall is one call of fakeControl.Logs.
type logCall struct {
	Endpoint, Name, Container string
	Lines                     int
}

// fakeControl is an in-memory api.Control: endpoints and deployments in maps, the live
// state (instances, rollout, logs) set by the test. When err is set every call that can
// fail returns it.
type fakeControl struct {
	mu          sync.Mutex
	err         error
	endpoints   map[string]*store.Endpoint
	deployments map[string]*store.Deployment // by endpoint + "/" + name
	instances   []controller.InstanceStatus
	progress    string
	warnings    []string
	logs        []byte
	logCalls    []logCall
	ops         []*store.Operation
	buildLog    string
}

func newFakeControl() *fakeControl {
	return &fakeControl{endpoints: map[string]*store.Endpoint{}, deployments: map[string]*store.Deployment{}}
}

func (f *fakeControl) CreateEndpoint(_ context.Context, ep *spec.Endpoint, local bool) (*store.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	raw, err := json.Marshal(ep)
	if err != nil {
		return nil, err
	}
	rec := &store.Endpoint{Name: ep.Name, Spec: raw, PrimaryKey: "pk-" + ep.Name, SecondaryKey: "sk-" + ep.Name,
		State: wire.StateSucceeded, Local: local, CreatedAt: stamp(), UpdatedAt: stamp()}
	f.endpoints[ep.Name] = rec
	return rec, nil
}

func (f *fakeControl) GetEndpoint(_ context.Context, name string) (*store.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	rec, ok := f.endpoints[name]
	if !ok {
		return nil, diag.New(diag.EndpointNotFound, "endpoint %s does not exist", name)
	}
	return rec, nil
}

func (f *fakeControl) ListEndpoints(_ context.Context, local bool) ([]*store.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []*store.Endpoint
	for _, e := range f.endpoints {
		if e.Local == local {
			out = append(out, e)
		}
	}
	return out, nil
}

// CheckNamespace refuses an endpoint of the other namespace, as the controller does.
func (f *fakeControl) CheckNamespace(_ context.Context, name string, local bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.endpoints[name]; ok && e.Local != local {
		return diag.New(diag.EndpointNotFound, "endpoint %s is in the other namespace", name)
	}
	return nil
}

func (f *fakeControl) UpdateEndpoint(ctx context.Context, name string, ch controller.EndpointChange) (*store.Endpoint, error) {
	rec, err := f.GetEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch.Spec != nil {
		if rec.Spec, err = json.Marshal(ch.Spec); err != nil {
			return nil, err
		}
	}
	if ch.Traffic != nil {
		rec.Traffic = ch.Traffic
	}
	return rec, nil
}

func (f *fakeControl) DeleteEndpoint(ctx context.Context, name string) error {
	if _, err := f.GetEndpoint(ctx, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.endpoints, name)
	return nil
}

func (f *fakeControl) RegenerateKey(ctx context.Context, name, keyType string) (*store.Endpoint, error) {
	rec, err := f.GetEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch keyType {
	case "Primary":
		rec.PrimaryKey += "-new"
	case "Secondary":
		rec.SecondaryKey += "-new"
	default:
		return nil, &diag.Error{Code: diag.BadArgument, Target: "keyType", Message: "keyType must be Primary or Secondary"}
	}
	return rec, nil
}

func (f *fakeControl) Operations(_ context.Context, _ string, _ int) ([]*store.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops, f.err
}

func (f *fakeControl) putDeployment(in controller.DeploymentInput, state string) (*store.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	raw, err := json.Marshal(in.Spec)
	if err != nil {
		return nil, err
	}
	rec := &store.Deployment{Endpoint: in.Spec.EndpointName, Name: in.Spec.Name, Spec: raw,
		ModelArtifact: in.ModelArtifact, CodeArtifact: in.CodeArtifact, State: state, CreatedAt: stamp(), UpdatedAt: stamp()}
	f.deployments[rec.Endpoint+"/"+rec.Name] = rec
	return rec, nil
}

func (f *fakeControl) CreateDeployment(_ context.Context, in controller.DeploymentInput) (*store.Deployment, error) {
	return f.putDeployment(in, wire.StateCreating)
}

func (f *fakeControl) UpdateDeployment(_ context.Context, in controller.DeploymentInput) (*store.Deployment, error) {
	return f.putDeployment(in, wire.StateUpdating)
}

func (f *fakeControl) GetDeployment(_ context.Context, endpoint, name string) (*store.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	rec, ok := f.deployments[endpoint+"/"+name]
	if !ok {
		return nil, diag.New(diag.DeploymentNotFound, "deployment %s/%s does not exist", endpoint, name)
	}
	return rec, nil
}

func (f *fakeControl) ListDeployments(_ context.Context, endpoint string) ([]*store.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Deployment
	for _, d := range f.deployments {
		if d.Endpoint == endpoint {
			out = append(out, d)
		}
	}
	return out, f.err
}

func (f *fakeControl) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	if _, err := f.GetDeployment(ctx, endpoint, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.deployments, endpoint+"/"+name)
	return nil
}

// ClusterLogs: every fake deployment runs on this machine.
func (f *fakeControl) ClusterLogs(context.Context, string, string, string, int) ([]byte, bool, error) {
	return nil, false, nil
}

func (f *fakeControl) Logs(endpoint, name, container string, lines int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logCalls = append(f.logCalls, logCall{endpoint, name, container, lines})
	return f.logs, f.err
}

func (f *fakeControl) InstanceLogs(endpoint, name, container string, index, lines int) ([]byte, error) {
	return f.Logs(endpoint, name, fmt.Sprintf("%s#%d", container, index), lines)
}

func (f *fakeControl) PreviousInstance(endpoint, name string) (int, error) { return 7, nil }

func (f *fakeControl) Instances(string, string) []controller.InstanceStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances
}

func (f *fakeControl) Phases(string, string) []wire.Phase { return nil }

func (f *fakeControl) Rollout(string, string) (string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progress, f.warnings
}

func (f *fakeControl) EnvironmentBuildLog(*store.Asset) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buildLog
}

// archiveCall is one call of recordingRegistry.ArchiveAsset.
type archiveCall struct {
	Kind, Name, Version string
	Archived            bool
}

// recordingRegistry is the real registry, recording the archive calls it is asked.
type recordingRegistry struct {
	*registry.Registry
	mu       sync.Mutex
	archives []archiveCall
}

func (r *recordingRegistry) ArchiveAsset(ctx context.Context, kind, name, version string, archived bool) error {
	r.mu.Lock()
	r.archives = append(r.archives, archiveCall{kind, name, version, archived})
	r.mu.Unlock()
	return r.Registry.ArchiveAsset(ctx, kind, name, version, archived)
}

// harness is an api handler over a fake controller and a real registry in a temp dir.
type harness struct {
	t       *testing.T
	h       http.Handler
	control *fakeControl
	reg     *recordingRegistry
	tokens  *auth.Issuer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	arts, err := artifacts.Open(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := auth.OpenSealer(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.OpenIssuer(filepath.Join(dir, "token.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{t: t, control: newFakeControl(), tokens: tokens,
		reg: &recordingRegistry{Registry: registry.New(memory.New(), arts, sealer)}}
	hs.h = api.New(api.Config{Controller: hs.control, Registry: hs.reg, Token: testToken, Tokens: tokens,
		BaseURL: func() string { return testBaseURL }})
	return hs
}

// do sends one request with the admin token; body is sent as is when it is a string or
// []byte, as JSON otherwise.
func (hs *harness) do(method, path string, body any) *httptest.ResponseRecorder {
	hs.t.Helper()
	req := httptest.NewRequest(method, wire.APIPrefix+path, requestBody(hs.t, body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

func requestBody(t *testing.T, body any) io.Reader {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return http.NoBody
	case string:
		return bytes.NewBufferString(b)
	case []byte:
		return bytes.NewReader(b)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(raw)
}

// decodeAs checks the status and decodes the JSON body into v.
func decodeAs[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	var v T
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

// errorOf checks the status and returns the error object of the body.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder, status int) *wire.Error {
	t.Helper()
	body := decodeAs[wire.ErrorBody](t, rec, status)
	if body.Error == nil {
		t.Fatalf("no error object in %s", rec.Body)
	}
	return body.Error
}

// uploadDir stores a folder holding files (name → content) as an artifact through the
// API and returns its digest.
func (hs *harness) uploadDir(files map[string]string) string {
	hs.t.Helper()
	dir := hs.t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			hs.t.Fatal(err)
		}
	}
	var tarball bytes.Buffer
	if err := archive.WriteTar(&tarball, dir); err != nil {
		hs.t.Fatal(err)
	}
	a := decodeAs[wire.Artifact](hs.t, hs.do(http.MethodPost, "/artifacts", tarball.Bytes()), http.StatusCreated)
	if a.Size <= 0 {
		hs.t.Fatalf("artifact %s has size %d", a.Digest, a.Size)
	}
	return a.Digest
}
