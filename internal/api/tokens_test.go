package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// keysOf returns the JSON object's field names, sorted.
func keysOf(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	m := decodeAs[map[string]any](t, rec, http.StatusOK)
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestCredentialsShapes(t *testing.T) {
	hs := newHarness(t)
	for _, ep := range []string{`{"name":"keyed"}`, `{"name":"tok","auth_mode":"aml_token"}`, `{"name":"aad","auth_mode":"aad_token"}`} {
		decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(ep)), http.StatusCreated)
	}
	if got := decodeAs[wire.Endpoint](t, hs.do(http.MethodGet, "/endpoints/tok", nil), http.StatusOK).AuthMode; got != "aml_token" {
		t.Errorf("show auth_mode %q, want aml_token", got)
	}
	for ep, want := range map[string][]string{
		"keyed": {"primaryKey", "secondaryKey"},
		"tok":   {"accessToken", "expiryTimeUtc", "refreshAfterTimeUtc", "tokenType"},
		"aad":   {"accessToken", "expiryTimeUtc", "tokenType"},
	} {
		if got := keysOf(t, hs.do(http.MethodPost, "/endpoints/"+ep+"/listkeys", nil)); !slices.Equal(got, want) {
			t.Errorf("%s: listkeys fields %v, want %v", ep, got, want)
		}
	}
	start := time.Now().Unix()
	tok := decodeAs[wire.Credentials](t, hs.do(http.MethodPost, "/endpoints/tok/listkeys", nil), http.StatusOK)
	if tok.EndpointToken == nil || tok.Keys != nil {
		t.Fatalf("credentials %+v, want a token only", tok)
	}
	if err := hs.tokens.ValidateEndpoint(tok.AccessToken, "tok"); err != nil {
		t.Errorf("the token does not validate for its endpoint: %v", err)
	}
	if d := tok.ExpiryTimeUTC - start; d < 3590 || d > 3610 {
		t.Errorf("expiry %d s from now, want an hour", d)
	}
	if d := tok.ExpiryTimeUTC - tok.RefreshAfterTimeUTC; d != 1800 {
		t.Errorf("refresh %d s before expiry, want 1800", d)
	}
	if tok.TokenType != "Bearer" || tok.Bearer() != tok.AccessToken {
		t.Errorf("tokenType %q, bearer %q", tok.TokenType, tok.Bearer())
	}
	aad := decodeAs[wire.Credentials](t, hs.do(http.MethodPost, "/endpoints/aad/listkeys", nil), http.StatusOK)
	if err := hs.tokens.ValidateAccess(aad.Bearer()); err != nil {
		t.Errorf("the aad_token endpoint's token is no access token: %v", err)
	}
	keyed := decodeAs[wire.Credentials](t, hs.do(http.MethodPost, "/endpoints/keyed/listkeys", nil), http.StatusOK)
	if keyed.Bearer() != "pk-keyed" {
		t.Errorf("bearer of a key endpoint %q, want its primary key", keyed.Bearer())
	}
}

func TestAccessTokenRoute(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(http.MethodPost, "/token", wire.TokenRequest{Resource: "https://ml.azure.com"})
	if got, want := keysOf(t, rec), []string{"accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"}; !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	var at wire.AccessToken
	if err := json.Unmarshal(rec.Body.Bytes(), &at); err != nil {
		t.Fatal(err)
	}
	if _, err := time.ParseInLocation(wire.ExpiresOnLayout, at.ExpiresOn, time.Local); err != nil {
		t.Errorf("expiresOn %q: %v", at.ExpiresOn, err)
	}
	if err := hs.tokens.ValidateAccess(at.AccessToken); err != nil {
		t.Errorf("the access token does not validate: %v", err)
	}

	// The control plane accepts the access token instead of the admin token.
	call := func(bearer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, wire.APIPrefix+"/endpoints", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	decodeAs[[]wire.Endpoint](t, call(at.AccessToken), http.StatusOK)
	storage := decodeAs[wire.AccessToken](t, hs.do(http.MethodPost, "/token", wire.TokenRequest{Resource: "https://storage.azure.com/"}), http.StatusOK)
	e := errorOf(t, call(storage.AccessToken), http.StatusUnauthorized)
	if e.Code != string(diag.Unauthorized) || !strings.Contains(e.Message, "storage.azure.com") {
		t.Errorf("a storage token on the control plane: %+v", e)
	}
	ep, _ := hs.tokens.EndpointToken("ep1")
	errorOf(t, call(ep.Value), http.StatusUnauthorized)
}

func TestGetCredentialsMintsNewTokens(t *testing.T) {
	hs := newHarness(t)
	decodeAs[wire.Endpoint](t, hs.do(http.MethodPost, "/endpoints", endpointCreate(`{"name":"tok","auth_mode":"aml_token"}`)), http.StatusCreated)
	first := decodeAs[wire.Credentials](t, hs.do(http.MethodPost, "/endpoints/tok/listkeys", nil), http.StatusOK)
	again := decodeAs[wire.Credentials](t, hs.do(http.MethodPost, "/endpoints/tok/listkeys", nil), http.StatusOK)
	if again.Bearer() == first.Bearer() {
		t.Fatal("get-credentials returned the same token twice")
	}
}

// TestPodTokenScope: a pod's token reads its own artifacts and serves its own job's
// workers, and nothing else: any other call is 403 AuthorizationFailed.
func TestPodTokenScope(t *testing.T) {
	hs := newHarness(t)
	tok, err := hs.tokens.PodToken(auth.PodScope{Artifacts: []string{"sha256:mine"}, Job: "j1"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, wire.APIPrefix+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok.Value)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	// Allowed through: the artifact is not stored, so the handler says 404.
	if e := errorOf(t, call(http.MethodGet, "/artifacts/sha256:mine"), http.StatusNotFound); e.Code != string(diag.ResourceNotFound) {
		t.Errorf("own artifact: %+v", e)
	}
	for _, c := range [][2]string{{http.MethodGet, "/artifacts/sha256:other"}, {http.MethodGet, "/endpoints"},
		{http.MethodPost, "/jobs/j2/workers/0/0/join"}, {http.MethodPost, "/artifacts"}, {http.MethodGet, "/jobs/j1"}} {
		if e := errorOf(t, call(c[0], c[1]), http.StatusForbidden); e.Code != string(diag.AuthorizationFailed) {
			t.Errorf("%s %s with a pod token: %+v", c[0], c[1], e)
		}
	}
}
