package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// withoutCreatedAt checks a view's created_at is an RFC 3339 time and drops it.
func withoutCreatedAt(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	s, _ := v["created_at"].(string)
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("created_at %v: %v", v["created_at"], err)
	}
	delete(v, "created_at")
	return v
}

func TestCreateModel(t *testing.T) {
	hs := newHarness(t)
	digest := hs.uploadDir(map[string]string{"m.pkl": "weights"})
	tests := []struct {
		name string
		body wire.AssetCreate
		want map[string]any
	}{
		{"every field", wire.AssetCreate{Name: "m", Version: "3", Type: "custom_model", Description: "a model",
			Tags: map[string]string{"k": "v"}, PathBase: "model", Artifact: digest},
			map[string]any{"id": "azureml:m:3", "name": "m", "version": "3", "type": "custom_model", "description": "a model",
				"tags": map[string]any{"k": "v"}, "path": "model", "artifact": digest, "stage": "Development"}},
		{"defaults", wire.AssetCreate{Name: "bare", PathBase: "m.pkl", Artifact: digest},
			map[string]any{"id": "azureml:bare:1", "name": "bare", "version": "1", "type": "custom_model",
				"tags": map[string]any{}, "path": "m.pkl", "artifact": digest, "stage": "Development"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAs[map[string]any](t, hs.do(http.MethodPost, "/assets/model", tt.body), http.StatusCreated)
			if diff := cmp.Diff(tt.want, withoutCreatedAt(t, got)); diff != "" {
				t.Errorf("view (-want +got):\n%s", diff)
			}
			// The same view decodes as wire.Model, as the client reads it.
			var m wire.Model
			if err := json.Unmarshal(hs.do(http.MethodGet, "/assets/model/"+tt.body.Name+"/versions/"+tt.want["version"].(string), nil).Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m.ID != tt.want["id"] || m.Tags == nil || m.Path != tt.body.PathBase {
				t.Errorf("wire.Model %+v", m)
			}
		})
	}
}

func TestCreateAssetErrors(t *testing.T) {
	tests := []struct {
		name, kind string
		body       wire.AssetCreate
		status     int
		code       diag.Code
	}{
		{"unknown kind", "widget", wire.AssetCreate{Name: "w"}, http.StatusNotFound, diag.ResourceNotFound},
		{"model without files", "model", wire.AssetCreate{Name: "m"}, http.StatusBadRequest, diag.BadArgument},
		{"bad name", "environment", wire.AssetCreate{Name: "-x", Spec: json.RawMessage(`{"image":"i"}`)}, http.StatusBadRequest, diag.BadArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			if e := errorOf(t, hs.do(http.MethodPost, "/assets/"+tt.kind, tt.body), tt.status); e.Code != string(tt.code) {
				t.Errorf("error %+v, want %s", e, tt.code)
			}
		})
	}
}

func TestAssetVersionConflict(t *testing.T) {
	hs := newHarness(t)
	body := wire.AssetCreate{Name: "env", Version: "1", Spec: json.RawMessage(`{"image":"python:3.12"}`)}
	decodeAs[map[string]any](t, hs.do(http.MethodPost, "/assets/environment", body), http.StatusCreated)
	if e := errorOf(t, hs.do(http.MethodPost, "/assets/environment", body), http.StatusConflict); e.Code != string(diag.Conflict) || e.Target != "env:1" {
		t.Errorf("error %+v, want Conflict on env:1", e)
	}
}

func TestEnvironmentViewFlattensSpec(t *testing.T) {
	hs := newHarness(t)
	hs.control.buildLog = "/data/envs/abc/build.log"
	body := wire.AssetCreate{Name: "env", Version: "2",
		Spec: json.RawMessage(`{"image":"python:3.12","conda_file":{"dependencies":["pip"]},"description":"py"}`)}
	got := decodeAs[map[string]any](t, hs.do(http.MethodPost, "/assets/environment", body), http.StatusCreated)
	want := map[string]any{"id": "azureml:env:2", "name": "env", "version": "2", "stage": "Development",
		"image": "python:3.12", "conda_file": map[string]any{"dependencies": []any{"pip"}}, "description": "py",
		"build_log": "/data/envs/abc/build.log"}
	if diff := cmp.Diff(want, withoutCreatedAt(t, got)); diff != "" {
		t.Errorf("view (-want +got):\n%s", diff)
	}
	list := decodeAs[[]map[string]any](t, hs.do(http.MethodGet, "/assets/environment?name=env", nil), http.StatusOK)
	if len(list) != 1 || list[0]["image"] != "python:3.12" {
		t.Errorf("list %v, want env:2 with its image", list)
	}
}

func TestArchiveAndRestoreAsset(t *testing.T) {
	hs := newHarness(t)
	digest := hs.uploadDir(map[string]string{"d.csv": "a,b\n"})
	decodeAs[map[string]any](t, hs.do(http.MethodPost, "/assets/data", wire.AssetCreate{Name: "d", Version: "1", Type: "uri_folder", Artifact: digest}), http.StatusCreated)
	steps := []struct {
		action, stage string
		archived      bool
	}{
		{"archive", "Archived", true},
		{"restore", "Development", false},
	}
	for i, s := range steps {
		got := decodeAs[map[string]any](t, hs.do(http.MethodPost, "/assets/data/d/versions/1/"+s.action, nil), http.StatusOK)
		if got["stage"] != s.stage || got["id"] != "azureml:d:1" {
			t.Errorf("%s: view %v, want stage %s", s.action, got, s.stage)
		}
		if diff := cmp.Diff(archiveCall{"data", "d", "1", s.archived}, hs.reg.archives[i]); diff != "" {
			t.Errorf("%s: ArchiveAsset call (-want +got):\n%s", s.action, diff)
		}
	}
	if e := errorOf(t, hs.do(http.MethodPost, "/assets/data/d/versions/9/archive", nil), http.StatusNotFound); e.Code != string(diag.ResourceNotFound) {
		t.Errorf("code %s, want ResourceNotFound", e.Code)
	}
}

func TestArtifacts(t *testing.T) {
	hs := newHarness(t)
	digest := hs.uploadDir(map[string]string{"a.txt": "hello"})
	if rec := hs.do(http.MethodHead, "/artifacts/"+digest, nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD stored: %d, want 200", rec.Code)
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	if rec := hs.do(http.MethodHead, "/artifacts/"+missing, nil); rec.Code != http.StatusNotFound {
		t.Errorf("HEAD missing: %d, want 404", rec.Code)
	}
	rec := hs.do(http.MethodGet, "/artifacts/"+digest, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-tar" || !bytes.Contains(rec.Body.Bytes(), []byte("hello")) {
		t.Errorf("GET stored: %d %s, want 200 with the tar", rec.Code, rec.Header().Get("Content-Type"))
	}
	if e := errorOf(t, hs.do(http.MethodGet, "/artifacts/"+missing, nil), http.StatusNotFound); e.Code != string(diag.ResourceNotFound) {
		t.Errorf("code %s, want ResourceNotFound", e.Code)
	}
	if e := errorOf(t, hs.do(http.MethodPost, "/artifacts", "not a tar"), http.StatusBadRequest); !strings.HasPrefix(e.Message, "upload: ") {
		t.Errorf("error %+v, want BadArgument about the upload", e)
	}
}

func TestConnections(t *testing.T) {
	hs := newHarness(t)
	conn := wire.Connection{Name: "git", Type: "git", Target: "https://example.test/repo",
		Metadata: map[string]string{"branch": "main"}, Credentials: map[string]string{"pat": "s3cret", "user": "me"}}
	masked := conn
	masked.Credentials = map[string]string{"pat": "***", "user": "***"}
	rec := hs.do(http.MethodPost, "/connections", conn)
	if diff := cmp.Diff(masked, decodeAs[wire.Connection](t, rec, http.StatusCreated)); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(masked, decodeAs[wire.Connection](t, hs.do(http.MethodGet, "/connections/git", nil), http.StatusOK)); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	list := hs.do(http.MethodGet, "/connections", nil)
	if diff := cmp.Diff([]wire.Connection{masked}, decodeAs[[]wire.Connection](t, list, http.StatusOK)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	for _, r := range []string{rec.Body.String(), list.Body.String()} {
		if strings.Contains(r, "s3cret") {
			t.Errorf("a credential left the server: %s", r)
		}
	}
	// The secret is still stored: the registry opens it for the controller.
	if got, err := hs.reg.GetConnection(t.Context(), "git"); err != nil || got.Credentials["pat"] != "s3cret" {
		t.Errorf("stored connection %+v, %v", got, err)
	}
	if rec := hs.do(http.MethodDelete, "/connections/git", nil); rec.Code != http.StatusNoContent {
		t.Errorf("delete: %d, want 204", rec.Code)
	}
	if e := errorOf(t, hs.do(http.MethodGet, "/connections/git", nil), http.StatusNotFound); e.Code != string(diag.ResourceNotFound) {
		t.Errorf("code %s, want ResourceNotFound", e.Code)
	}
	if e := errorOf(t, hs.do(http.MethodPost, "/connections", wire.Connection{Name: "no spaces"}), http.StatusBadRequest); e.Target != "name" {
		t.Errorf("error %+v, want BadArgument on name", e)
	}
}
