package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// TestLocalNamespace checks that ?local=true reaches the controller on create and list,
// scopes every route under /endpoints/{name}, and that a local endpoint has no
// credentials to list.
func TestLocalNamespace(t *testing.T) {
	hs := newHarness(t)
	local := decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints?local=true", endpointCreate(`{"name":"dev"}`)), http.StatusCreated)
	if !local.Local {
		t.Errorf("created with ?local=true: %+v, want local", local)
	}
	decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"shop"}`)), http.StatusCreated)
	for path, want := range map[string]string{"/endpoints?local=true": "dev", "/endpoints": "shop", "/endpoints?local=false": "shop"} {
		list := decodeAs[[]wire.Endpoint](t, hs.do(http.MethodGet, path, nil), http.StatusOK)
		if len(list) != 1 || list[0].Name != want {
			t.Errorf("GET %s: %+v, want %s alone", path, list, want)
		}
	}
	if got := decodeAs[wire.Endpoint](t, hs.do(http.MethodGet, "/endpoints/dev?local=true", nil), http.StatusOK); !got.Local {
		t.Errorf("show --local: %+v", got)
	}
	if rec := hs.do(http.MethodGet, "/endpoints/shop", nil); strings.Contains(rec.Body.String(), `"local":`) {
		t.Errorf("a managed endpoint's view has a local field: %s", rec.Body)
	}
	for _, path := range []string{"/endpoints/dev", "/endpoints/dev/deployments", "/endpoints/shop?local=true", "/endpoints/shop/deployments?local=1"} {
		if e := errorOf(t, hs.do(http.MethodGet, path, nil), http.StatusNotFound); e.Code != string(diag.EndpointNotFound) {
			t.Errorf("GET %s: code %s, want EndpointNotFound", path, e.Code)
		}
	}
	if e := errorOf(t, hs.do(http.MethodGet, "/endpoints?local=maybe", nil), http.StatusBadRequest); e.Target != wire.LocalParam {
		t.Errorf("?local=maybe: %+v", e)
	}
	e := errorOf(t, hs.do(http.MethodPost, "/endpoints/dev/listkeys?local=true", nil), http.StatusBadRequest)
	if e.Code != string(diag.BadArgument) || !strings.Contains(e.Message, "need no key") {
		t.Errorf("listkeys of a local endpoint: %+v", e)
	}
}
