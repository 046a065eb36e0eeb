package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

var (
	_ api.Control  = (*fakeControl)(nil)
	_ api.Registry = (*recordingRegistry)(nil)
)

func TestAdminToken(t *testing.T) {
	hs := newHarness(t)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "Bearer not-" + testToken, http.StatusUnauthorized},
		{"not bearer", "Basic " + testToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"right", "Bearer " + testToken, http.StatusOK},
		{"scheme in lower case", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, wire.APIPrefix+"/endpoints", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			hs.h.ServeHTTP(rec, req)
			if tt.want == http.StatusOK {
				if got := decodeAs[[]wire.Endpoint](t, rec, http.StatusOK); len(got) != 0 {
					t.Errorf("endpoints %v, want none", got)
				}
				return
			}
			e := errorOf(t, rec, tt.want)
			if e.Code != string(diag.Unauthorized) || !strings.Contains(e.Message, "admin token") {
				t.Errorf("error %+v, want Unauthorized about the admin token", e)
			}
		})
	}
}

// TestAdminTokenGuardsUnknownRoutes checks the token is asked before routing: an
// unauthenticated caller learns nothing about which routes exist.
func TestAdminTokenGuardsUnknownRoutes(t *testing.T) {
	hs := newHarness(t)
	req := httptest.NewRequest(http.MethodGet, wire.APIPrefix+"/nothing-here", nil)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if e := errorOf(t, rec, http.StatusUnauthorized); e.Code != string(diag.Unauthorized) {
		t.Errorf("code %s, want Unauthorized", e.Code)
	}
}

// TestEmptyAdminTokenRejectsAll checks a server configured without a token fails
// closed: no header, not even an empty bearer token, gets in.
func TestEmptyAdminTokenRejectsAll(t *testing.T) {
	h := api.New(api.Config{Controller: newFakeControl(), Token: "", BaseURL: func() string { return testBaseURL }})
	for _, header := range []string{"", "Bearer ", "Bearer x"} {
		req := httptest.NewRequest(http.MethodGet, wire.APIPrefix+"/endpoints", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if e := errorOf(t, rec, http.StatusUnauthorized); e.Code != string(diag.Unauthorized) {
			t.Errorf("header %q: code %s, want Unauthorized", header, e.Code)
		}
	}
}

func TestUnknownRoute(t *testing.T) {
	hs := newHarness(t)
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/nothing-here"},
		{http.MethodPut, "/endpoints"},
		{http.MethodGet, "/endpoints/e/deployments/d/extra"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			e := errorOf(t, hs.do(tt.method, tt.path, nil), http.StatusNotFound)
			if e.Code != string(diag.ResourceNotFound) || !strings.Contains(e.Message, tt.path) {
				t.Errorf("error %+v, want ResourceNotFound naming %s", e, tt.path)
			}
		})
	}
}

// TestErrorMapping drives writeError through GET /endpoints/{name} with the fake
// controller failing with each kind of error.
func TestErrorMapping(t *testing.T) {
	detailed := &diag.Error{Code: diag.BadArgument, Message: "2 problems", Target: "spec",
		Details: []*diag.Error{
			{Code: diag.BadArgument, Target: "instance_count", Message: "must be between 1 and 50"},
			{Code: diag.BadArgument, Target: "name", Message: "is required",
				Details: []*diag.Error{{Code: diag.BadArgument, Message: "nested"}}},
		}}
	tests := []struct {
		name   string
		err    error
		status int
		want   *wire.Error
	}{
		{"endpoint not found", diag.New(diag.EndpointNotFound, "endpoint e does not exist"), http.StatusNotFound,
			&wire.Error{Code: "EndpointNotFound", Message: "endpoint e does not exist"}},
		{"bad argument with details and target", detailed, http.StatusBadRequest,
			&wire.Error{Code: "BadArgument", Message: "2 problems", Target: "spec", Details: []*wire.Error{
				{Code: "BadArgument", Target: "instance_count", Message: "must be between 1 and 50"},
				{Code: "BadArgument", Target: "name", Message: "is required",
					Details: []*wire.Error{{Code: "BadArgument", Message: "nested"}}},
			}}},
		{"conflict", &diag.Error{Code: diag.Conflict, Target: "m:1", Message: "exists"}, http.StatusConflict,
			&wire.Error{Code: "Conflict", Target: "m:1", Message: "exists"}},
		{"operation canceled", diag.New(diag.OperationCanceled, "busy"), http.StatusConflict,
			&wire.Error{Code: "OperationCanceled", Message: "busy"}},
		{"wrapped diag error", fmt.Errorf("get endpoint: %w", diag.New(diag.OutOfQuota, "too many")), http.StatusConflict,
			&wire.Error{Code: "OutOfQuota", Message: "too many"}},
		{"plain error", errors.New("disk on fire"), http.StatusInternalServerError,
			&wire.Error{Code: "InternalServerError", Message: "disk on fire"}},
		{"undocumented code", diag.New(diag.ResourceNotReady, "not ready"), http.StatusInternalServerError,
			&wire.Error{Code: "ResourceNotReady", Message: "not ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			hs.control.err = tt.err
			got := errorOf(t, hs.do(http.MethodGet, "/endpoints/e", nil), tt.status)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		target string // in the message
	}{
		{"unknown field", `{"spec":{"name":"e"},"colour":"blue"}`, `"colour"`},
		{"malformed", `{"spec":`, "unexpected EOF"},
		{"wrong type", `{"spec":{"name":"e"},"traffic":"all"}`, "traffic"},
		{"not json", `name: e`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			e := errorOf(t, hs.do(http.MethodPatch, "/endpoints/e", tt.body), http.StatusBadRequest)
			if e.Code != string(diag.BadArgument) || !strings.Contains(e.Message, "request body") || !strings.Contains(e.Message, tt.target) {
				t.Errorf("error %+v, want BadArgument about the request body naming %s", e, tt.target)
			}
		})
	}
}

// TestDecodeBodyUnderLimit checks a body just under the limit is read whole.
func TestDecodeBodyUnderLimit(t *testing.T) {
	hs := newHarness(t)
	body := `{"spec":{"name":"ep1"}` + strings.Repeat(" ", 16<<20-64) + `}`
	if len(body) >= 16<<20 {
		t.Fatalf("body of %d bytes is not under the limit", len(body))
	}
	got := decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", body), http.StatusCreated)
	if got.Name != "ep1" {
		t.Errorf("name %q, want ep1", got.Name)
	}
}

// TestDecodeRejectsTrailingData: a body holding a second JSON value after the first
// should be refused like an unknown field, not silently cut short.
func TestDecodeRejectsTrailingData(t *testing.T) {
	hs := newHarness(t)
	e := errorOf(t, hs.do(http.MethodPost, "/endpoints", `{"spec":{"name":"ep1"}} {"colour":"x"}`), http.StatusBadRequest)
	if e.Code != string(diag.BadArgument) {
		t.Errorf("code %s, want BadArgument", e.Code)
	}
}
