package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func deploymentPut(endpoint, name string) wire.DeploymentPut {
	return wire.DeploymentPut{Spec: json.RawMessage(`{"name":"` + name + `","endpoint_name":"` + endpoint + `","instance_count":2}`),
		ModelArtifact: "sha256:model", CodeArtifact: "sha256:code"}
}

// deploymentView decodes a deployment's JSON: the spec's fields next to the status fields.
type deploymentView struct {
	Name              string          `json:"name"`
	EndpointName      string          `json:"endpoint_name"`
	InstanceCount     int             `json:"instance_count"`
	ProvisioningState string          `json:"provisioning_state"`
	Error             *wire.Error     `json:"error"`
	Instances         []wire.Instance `json:"instances"`
	Progress          string          `json:"progress"`
	Warnings          []string        `json:"warnings"`
	CreatedAt         string          `json:"created_at"`
}

func TestCreateDeployment(t *testing.T) {
	hs := newHarness(t)
	hs.control.instances = []controller.InstanceStatus{
		{Index: 0, State: "Ready", Address: "127.0.0.1:4001", Restarts: 1, Phases: map[string]float64{"init_ms": 12}},
		{Index: 1, State: "Starting"},
	}
	hs.control.progress, hs.control.warnings = "starting instance 1 of 2", []string{"pip: numpy unpinned"}
	got := decodeAs[deploymentView](t, hs.do(http.MethodPost, "/endpoints/ep1/deployments", deploymentPut("ep1", "blue")), http.StatusCreated)
	want := deploymentView{Name: "blue", EndpointName: "ep1", InstanceCount: 2, ProvisioningState: wire.StateCreating,
		Instances: []wire.Instance{
			{Index: 0, State: "Ready", Address: "127.0.0.1:4001", Restarts: 1, Phases: map[string]float64{"init_ms": 12}},
			{Index: 1, State: "Starting"},
		},
		Progress: "starting instance 1 of 2", Warnings: []string{"pip: numpy unpinned"}, CreatedAt: stamp().Format(time.RFC3339)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("view (-want +got):\n%s", diff)
	}
	stored := hs.control.deployments["ep1/blue"]
	if stored == nil || stored.ModelArtifact != "sha256:model" || stored.CodeArtifact != "sha256:code" {
		t.Errorf("stored %+v, want the artifacts of the request", stored)
	}
}

func TestDeploymentPathMismatch(t *testing.T) {
	tests := []struct {
		name, method, path string
		body               wire.DeploymentPut
		target             string
	}{
		{"create for another endpoint", http.MethodPost, "/endpoints/ep1/deployments", deploymentPut("ep2", "blue"), "endpoint_name"},
		{"update for another endpoint", http.MethodPatch, "/endpoints/ep1/deployments/blue", deploymentPut("ep2", "blue"), "endpoint_name"},
		{"update renames", http.MethodPatch, "/endpoints/ep1/deployments/blue", deploymentPut("ep1", "green"), "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			e := errorOf(t, hs.do(tt.method, tt.path, tt.body), http.StatusBadRequest)
			if e.Code != string(diag.BadArgument) || e.Target != tt.target {
				t.Errorf("error %+v, want BadArgument on %s", e, tt.target)
			}
			if len(hs.control.deployments) != 0 {
				t.Errorf("the controller was asked to store %v", hs.control.deployments)
			}
		})
	}
}

func TestUpdateDeployment(t *testing.T) {
	hs := newHarness(t)
	got := decodeAs[deploymentView](t, hs.do(http.MethodPatch, "/endpoints/ep1/deployments/blue", deploymentPut("ep1", "blue")), http.StatusOK)
	if got.ProvisioningState != wire.StateUpdating || got.Name != "blue" {
		t.Errorf("view %+v, want blue Updating", got)
	}
}

// TestDeploymentView checks the status fields of the view for each stored state.
func TestDeploymentView(t *testing.T) {
	tests := []struct {
		state, storedErr string
		wantProgress     string
		wantErr          *wire.Error
	}{
		{state: wire.StateCreating, wantProgress: "step 3"},
		{state: wire.StateUpdating, wantProgress: "step 3"},
		{state: wire.StateSucceeded},
		{state: wire.StateFailed, storedErr: `{"code":"ResourceNotReady","message":"init() raised","details":[{"code":"UserScriptInitFailed","message":"KeyError"}]}`,
			wantErr: &wire.Error{Code: "ResourceNotReady", Message: "init() raised", Details: []*wire.Error{{Code: "UserScriptInitFailed", Message: "KeyError"}}}},
		{state: wire.StateFailed, storedErr: `{"code":`,
			wantErr: &wire.Error{Code: "InternalServerError"}},
	}
	for _, tt := range tests {
		t.Run(tt.state+" "+tt.storedErr, func(t *testing.T) {
			hs := newHarness(t)
			hs.control.progress = "step 3"
			hs.control.deployments["ep1/blue"] = &store.Deployment{Endpoint: "ep1", Name: "blue",
				Spec: json.RawMessage(`{"name":"blue","endpoint_name":"ep1"}`), State: tt.state, Error: json.RawMessage(tt.storedErr)}
			got := decodeAs[deploymentView](t, hs.do(http.MethodGet, "/endpoints/ep1/deployments/blue", nil), http.StatusOK)
			if got.ProvisioningState != tt.state || got.Progress != tt.wantProgress {
				t.Errorf("state %q progress %q, want %q %q", got.ProvisioningState, got.Progress, tt.state, tt.wantProgress)
			}
			if tt.wantErr != nil && tt.wantErr.Code == "InternalServerError" {
				// An unreadable stored error is shown, quoting what the store holds.
				if got.Error == nil || got.Error.Code != tt.wantErr.Code || !strings.Contains(got.Error.Message, tt.storedErr) {
					t.Errorf("error %+v, want InternalServerError quoting %s", got.Error, tt.storedErr)
				}
				return
			}
			if diff := cmp.Diff(tt.wantErr, got.Error); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListAndDeleteDeployments(t *testing.T) {
	hs := newHarness(t)
	if got := decodeAs[[]deploymentView](t, hs.do(http.MethodGet, "/endpoints/ep1/deployments", nil), http.StatusOK); len(got) != 0 {
		t.Errorf("list %+v, want [] before any deployment", got)
	}
	decodeAs[deploymentView](t, hs.do(http.MethodPost, "/endpoints/ep1/deployments", deploymentPut("ep1", "blue")), http.StatusCreated)
	if got := decodeAs[[]deploymentView](t, hs.do(http.MethodGet, "/endpoints/ep1/deployments", nil), http.StatusOK); len(got) != 1 || got[0].Name != "blue" {
		t.Errorf("list %+v, want blue", got)
	}
	if rec := hs.do(http.MethodDelete, "/endpoints/ep1/deployments/blue", nil); rec.Code != http.StatusNoContent {
		t.Errorf("delete: %d, want 204", rec.Code)
	}
	if e := errorOf(t, hs.do(http.MethodGet, "/endpoints/ep1/deployments/blue", nil), http.StatusNotFound); e.Code != string(diag.DeploymentNotFound) {
		t.Errorf("code %s, want DeploymentNotFound", e.Code)
	}
}

func TestGetLogs(t *testing.T) {
	tests := []struct {
		name string
		body string
		want logCall
	}{
		{"defaults", `{}`, logCall{"ep1", "blue", "inference-server", 5000}},
		{"empty body", ``, logCall{}},
		{"inference server", `{"containerType":"InferenceServer","tail":10}`, logCall{"ep1", "blue", "inference-server", 10}},
		{"storage initializer", `{"containerType":"StorageInitializer","tail":7}`, logCall{"ep1", "blue", "storage-initializer", 7}},
		{"storage initializer, cli spelling", `{"containerType":"storage-initializer"}`, logCall{"ep1", "blue", "storage-initializer", 5000}},
		{"negative tail", `{"tail":-3}`, logCall{"ep1", "blue", "inference-server", 5000}},
		{"one instance", `{"instance":3}`, logCall{"ep1", "blue", "inference-server#3", 5000}},
		{"the previous instance", `{"previous":true,"tail":4}`, logCall{"ep1", "blue", "inference-server#7", 4}},
		{"bad container", `{"containerType":"sidecar"}`, logCall{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			hs.control.deployments["ep1/blue"] = &store.Deployment{Endpoint: "ep1", Name: "blue", State: wire.StateSucceeded}
			hs.control.logs = []byte("line 1\nline 2\n")
			rec := hs.do(http.MethodPost, "/endpoints/ep1/deployments/blue/getLogs", tt.body)
			if tt.want == (logCall{}) {
				e := errorOf(t, rec, http.StatusBadRequest)
				if e.Code != string(diag.BadArgument) {
					t.Errorf("code %s, want BadArgument", e.Code)
				}
				if len(hs.control.logCalls) != 0 {
					t.Errorf("logs asked %+v", hs.control.logCalls)
				}
				return
			}
			if rec.Code != http.StatusOK || rec.Body.String() != "line 1\nline 2\n" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("%d %s %q, want 200 text/plain with the log", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			if diff := cmp.Diff([]logCall{tt.want}, hs.control.logCalls); diff != "" {
				t.Errorf("Logs calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetLogsBadContainerNamesIt(t *testing.T) {
	hs := newHarness(t)
	hs.control.deployments["ep1/blue"] = &store.Deployment{Endpoint: "ep1", Name: "blue"}
	e := errorOf(t, hs.do(http.MethodPost, "/endpoints/ep1/deployments/blue/getLogs", wire.GetLogs{ContainerType: "sidecar"}), http.StatusBadRequest)
	if e.Target != "containerType" || !strings.Contains(e.Message, `"sidecar"`) {
		t.Errorf("error %+v, want containerType naming sidecar", e)
	}
}

func TestGetLogsUnknownDeployment(t *testing.T) {
	hs := newHarness(t)
	e := errorOf(t, hs.do(http.MethodPost, "/endpoints/ep1/deployments/blue/getLogs", wire.GetLogs{}), http.StatusNotFound)
	if e.Code != string(diag.DeploymentNotFound) || len(hs.control.logCalls) != 0 {
		t.Errorf("error %+v, logs asked %+v; want DeploymentNotFound before any log is read", e, hs.control.logCalls)
	}
}
