package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func endpointCreate(spec string) wire.EndpointCreate {
	return wire.EndpointCreate{Spec: json.RawMessage(spec)}
}

func TestCreateEndpoint(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(http.MethodPost, "/endpoints", endpointCreate(
		`{"name":"my-ep","description":"d","properties":{"team":"ml"}}`))
	got := decodeAs[wire.Endpoint](t, rec, http.StatusCreated)
	want := wire.Endpoint{
		ID:   "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/my-ep",
		Name: "my-ep", Description: "d", Tags: map[string]string{}, AuthMode: "key",
		Kind: "Managed", Location: "local", ProvisioningState: wire.StateSucceeded,
		ScoringURI:          testBaseURL + "/endpoints/my-ep/score",
		OpenAPIURI:          testBaseURL + "/endpoints/my-ep/swagger.json",
		Traffic:             map[string]int{},
		MirrorTraffic:       map[string]int{},
		PublicNetworkAccess: "enabled",
		Properties:          map[string]string{"berth.endpoint": "my-ep", "team": "ml"},
		CreatedAt:           stamp().Format(time.RFC3339),
		UpdatedAt:           stamp().Format(time.RFC3339),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("view (-want +got):\n%s", diff)
	}
	// The JSON shows traffic as {} and tags as {}, never null.
	for _, key := range []string{`"traffic": {}`, `"tags": {}`, `"mirror_traffic": {}`} {
		if !strings.Contains(rec.Body.String(), key) {
			t.Errorf("body has no %s: %s", key, rec.Body)
		}
	}
	if diff := cmp.Diff(want, decodeAs[wire.Endpoint](t, hs.do(http.MethodGet, "/endpoints/my-ep", nil), http.StatusOK)); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	if list := decodeAs[[]wire.Endpoint](t, hs.do(http.MethodGet, "/endpoints", nil), http.StatusOK); len(list) != 1 || list[0].ScoringURI != want.ScoringURI {
		t.Errorf("list %+v, want my-ep alone", list)
	}
}

func TestCreateEndpointBadSpec(t *testing.T) {
	hs := newHarness(t)
	e := errorOf(t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"x"}`)), http.StatusBadRequest)
	if e.Code != string(diag.BadArgument) || len(e.Details) != 1 || e.Details[0].Target != "name" {
		t.Errorf("error %+v, want BadArgument with a detail on name", e)
	}
	if len(hs.control.endpoints) != 0 {
		t.Errorf("the controller was asked to create %v", hs.control.endpoints)
	}
}

func TestEndpointViewShowsStoredState(t *testing.T) {
	hs := newHarness(t)
	hs.control.endpoints["ep1"] = &store.Endpoint{Name: "ep1", Spec: json.RawMessage(`{"name":"ep1","public_network_access":"disabled"}`),
		Traffic: map[string]int{"blue": 100}, State: wire.StateFailed,
		Error: json.RawMessage(`{"code":"ResourceNotReady","message":"boom","target":"blue"}`)}
	got := decodeAs[wire.Endpoint](t, hs.do(http.MethodGet, "/endpoints/ep1", nil), http.StatusOK)
	if diff := cmp.Diff(map[string]int{"blue": 100}, got.Traffic); diff != "" {
		t.Errorf("traffic (-want +got):\n%s", diff)
	}
	if got.PublicNetworkAccess != "disabled" || got.ProvisioningState != wire.StateFailed {
		t.Errorf("public_network_access %q, provisioning_state %q; want disabled, Failed", got.PublicNetworkAccess, got.ProvisioningState)
	}
	if diff := cmp.Diff(&wire.Error{Code: "ResourceNotReady", Message: "boom", Target: "blue"}, got.Error); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestEndpointViewUnreadableSpec checks a damaged stored spec still gives a view of
// what the store has, and the log names the endpoint.
func TestEndpointViewUnreadableSpec(t *testing.T) {
	var logged bytes.Buffer
	control := newFakeControl()
	control.endpoints["ep1"] = &store.Endpoint{Name: "ep1", Spec: json.RawMessage(`{"name":`), State: wire.StateSucceeded}
	h := api.New(api.Config{Controller: control, Token: testToken, BaseURL: func() string { return testBaseURL },
		Log: slog.New(slog.NewTextHandler(&logged, nil))})
	req := httptest.NewRequest(http.MethodGet, wire.APIPrefix+"/endpoints/ep1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := decodeAs[wire.Endpoint](t, rec, http.StatusOK)
	if got.Name != "ep1" || got.ScoringURI != testBaseURL+"/endpoints/ep1/score" || got.ProvisioningState != wire.StateSucceeded {
		t.Errorf("view %+v, want ep1 as stored", got)
	}
	if !strings.Contains(logged.String(), "stored endpoint spec is unreadable") || !strings.Contains(logged.String(), "endpoint=ep1") {
		t.Errorf("log %q, want the damaged record named", logged.String())
	}
}

func TestUpdateEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		body   wire.EndpointUpdate
		status int
		target string // of the error, or "" for success
	}{
		{"traffic", wire.EndpointUpdate{Traffic: map[string]int{"blue": 100}}, http.StatusOK, ""},
		{"same name", wire.EndpointUpdate{Spec: json.RawMessage(`{"name":"ep1","description":"new"}`)}, http.StatusOK, ""},
		{"renamed", wire.EndpointUpdate{Spec: json.RawMessage(`{"name":"ep2"}`)}, http.StatusBadRequest, "name"},
		{"bad spec", wire.EndpointUpdate{Spec: json.RawMessage(`{"name":"ep1","colour":"x"}`)}, http.StatusBadRequest, "request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"ep1"}`)), http.StatusCreated)
			rec := hs.do(http.MethodPatch, "/endpoints/ep1", tt.body)
			if tt.target != "" {
				if e := errorOf(t, rec, tt.status); e.Code != string(diag.BadArgument) || e.Target != tt.target {
					t.Errorf("error %+v, want BadArgument on %s", e, tt.target)
				}
				return
			}
			got := decodeAs[wire.Endpoint](t, rec, tt.status)
			if tt.body.Traffic != nil && !cmp.Equal(got.Traffic, tt.body.Traffic) {
				t.Errorf("traffic %v, want %v", got.Traffic, tt.body.Traffic)
			}
			if tt.body.Spec != nil && got.Description != "new" {
				t.Errorf("description %q, want new", got.Description)
			}
		})
	}
}

func TestEndpointKeys(t *testing.T) {
	hs := newHarness(t)
	decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"ep1"}`)), http.StatusCreated)
	got := decodeAs[wire.Keys](t, hs.do(http.MethodPost, "/endpoints/ep1/listkeys", nil), http.StatusOK)
	if diff := cmp.Diff(wire.Keys{PrimaryKey: "pk-ep1", SecondaryKey: "sk-ep1"}, got); diff != "" {
		t.Errorf("listkeys (-want +got):\n%s", diff)
	}
	got = decodeAs[wire.Keys](t, hs.do(http.MethodPost, "/endpoints/ep1/regenerateKeys", wire.RegenerateKeys{KeyType: "Secondary"}), http.StatusOK)
	if diff := cmp.Diff(wire.Keys{PrimaryKey: "pk-ep1", SecondaryKey: "sk-ep1-new"}, got); diff != "" {
		t.Errorf("regenerateKeys (-want +got):\n%s", diff)
	}
	if e := errorOf(t, hs.do(http.MethodPost, "/endpoints/nope/listkeys", nil), http.StatusNotFound); e.Code != string(diag.EndpointNotFound) {
		t.Errorf("code %s, want EndpointNotFound", e.Code)
	}
}

func TestDeleteEndpoint(t *testing.T) {
	hs := newHarness(t)
	decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"ep1"}`)), http.StatusCreated)
	if rec := hs.do(http.MethodDelete, "/endpoints/ep1", nil); rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Errorf("delete: %d %q, want 204 and no body", rec.Code, rec.Body)
	}
	errorOf(t, hs.do(http.MethodDelete, "/endpoints/ep1", nil), http.StatusNotFound)
}

func TestListOperations(t *testing.T) {
	hs := newHarness(t)
	hs.control.ops = []*store.Operation{
		{ID: 2, Endpoint: "ep1", Deployment: "blue", Kind: "Create", State: "InProgress", StartedAt: stamp()},
		{ID: 1, Endpoint: "ep1", Kind: "Create", State: "Failed", StartedAt: stamp(), EndedAt: stamp().Add(time.Minute),
			Error: json.RawMessage(`not json`)},
	}
	got := decodeAs[[]wire.Operation](t, hs.do(http.MethodGet, "/endpoints/ep1/operations", nil), http.StatusOK)
	if len(got) != 2 {
		t.Fatalf("operations %+v, want 2", got)
	}
	want0 := wire.Operation{ID: 2, Deployment: "blue", Kind: "Create", State: "InProgress", StartedAt: stamp().Format(time.RFC3339)}
	if diff := cmp.Diff(want0, got[0]); diff != "" {
		t.Errorf("in progress (-want +got):\n%s", diff)
	}
	if got[1].EndedAt != stamp().Add(time.Minute).Format(time.RFC3339) {
		t.Errorf("ended_at %q", got[1].EndedAt)
	}
	if e := got[1].Error; e == nil || e.Code != string(diag.InternalServerError) || !strings.Contains(e.Message, "not json") {
		t.Errorf("error %+v, want InternalServerError quoting the stored text", e)
	}
}

func TestEndpointShowsItsIdentity(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"id-ep","identity":{"type":"system_assigned"}}`))
	got := decodeAs[map[string]any](t, rec, http.StatusCreated)
	if id, _ := got["identity"].(map[string]any); id == nil || id["type"] != "system_assigned" {
		t.Fatalf("identity = %v, want the block as written", got["identity"])
	}
	if rec := hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"plain-ep"}`)); strings.Contains(rec.Body.String(), `"identity"`) {
		t.Fatalf("an endpoint without identity shows one: %s", rec.Body)
	}
}
