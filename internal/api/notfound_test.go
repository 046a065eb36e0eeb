package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/store/memory"
	"github.com/berthml/berth/internal/wire"
)

// TestMissingEndpointEverywhere sends every request that names an endpoint, for an
// endpoint that does not exist, through the API to a real controller: each answers 404
// EndpointNotFound naming it, before anything about its deployments or its body.
func TestMissingEndpointEverywhere(t *testing.T) {
	dir := t.TempDir()
	st := memory.New()
	arts, err := artifacts.Open(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	// No runtime: no request here may get as far as starting an instance.
	c := controller.New(controller.Config{Store: st, Registry: registry.New(st, arts, nil), Artifacts: arts, DataDir: dir})
	t.Cleanup(c.Close)
	hs := &harness{t: t}
	hs.h = api.New(api.Config{Controller: c, Registry: registry.New(st, arts, nil), Token: testToken,
		BaseURL: func() string { return testBaseURL }})

	tests := []struct {
		name, method, path string
		body               any
	}{
		{"show", http.MethodGet, "/endpoints/nope", nil},
		{"update spec", http.MethodPatch, "/endpoints/nope", wire.EndpointUpdate{Spec: []byte(`{"name":"nope"}`)}},
		{"traffic", http.MethodPatch, "/endpoints/nope", wire.EndpointUpdate{Traffic: map[string]int{"blue": 100}}},
		{"mirror traffic", http.MethodPatch, "/endpoints/nope", wire.EndpointUpdate{MirrorTraffic: map[string]int{"blue": 10}}},
		{"delete", http.MethodDelete, "/endpoints/nope", nil},
		{"list keys", http.MethodPost, "/endpoints/nope/listkeys", nil},
		{"regenerate keys", http.MethodPost, "/endpoints/nope/regenerateKeys", wire.RegenerateKeys{KeyType: "primary"}},
		{"operations", http.MethodGet, "/endpoints/nope/operations", nil},
		{"create deployment", http.MethodPost, "/endpoints/nope/deployments", deploymentPut("nope", "blue")},
		{"list deployments", http.MethodGet, "/endpoints/nope/deployments", nil},
		{"show deployment", http.MethodGet, "/endpoints/nope/deployments/blue", nil},
		{"update deployment", http.MethodPatch, "/endpoints/nope/deployments/blue", deploymentPut("nope", "blue")},
		{"delete deployment", http.MethodDelete, "/endpoints/nope/deployments/blue", nil},
		{"get logs", http.MethodPost, "/endpoints/nope/deployments/blue/getLogs", wire.GetLogs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := errorOf(t, hs.do(tt.method, tt.path, tt.body), http.StatusNotFound)
			if e.Code != string(diag.EndpointNotFound) || e.Target != "nope" || !strings.Contains(e.Message, `endpoint "nope" does not exist`) {
				t.Errorf("error %+v, want EndpointNotFound for nope", e)
			}
		})
	}
}
