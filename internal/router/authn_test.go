package router

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/router/table"
)

// authRouter serves endpoints on one fake instance: "keyed" (key), "tok" and
// "tok2" (aml_token), "aad" (aad_token), "local" (none, no keys), with tokens
// validated by iss.
func authRouter(t *testing.T, iss TokenValidator) *httptest.Server {
	t.Helper()
	inst := fakeInstance(t, "blue", 0)
	r := New(Config{EndpointRPS: -1, Tokens: iss})
	t.Cleanup(r.Close)
	ep := func(name, mode string) *table.Endpoint {
		return &table.Endpoint{Name: name, AuthMode: mode, Keys: []string{"k1", "k2"}, Traffic: map[string]int{"blue": 100},
			Deployments: map[string]*table.Deployment{"blue": {Name: "blue", Instances: []*table.Instance{{Addr: addr(inst)}}}}}
	}
	local := ep("local", table.AuthNone)
	local.Keys = nil
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{
		"keyed": ep("keyed", table.AuthKey), "tok": ep("tok", table.AuthAMLToken), "tok2": ep("tok2", table.AuthAMLToken),
		"aad": ep("aad", table.AuthAADToken), "local": local,
	}})
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)
	return front
}

func TestAuthModes(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	iss, err := auth.NewIssuer(bytes.Repeat([]byte{1}, 32), clock)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewIssuer(bytes.Repeat([]byte{2}, 32), clock)
	front := authRouter(t, iss)
	tok, _ := iss.EndpointToken("tok")
	tok2, _ := iss.EndpointToken("tok2")
	forged, _ := other.EndpointToken("tok")
	access, _ := iss.AccessToken(auth.MLResource)
	arm, _ := iss.AccessToken("")
	storage, _ := iss.AccessToken("https://storage.azure.com/")
	expired, _ := auth.NewIssuer(bytes.Repeat([]byte{1}, 32), func() time.Time { return now.Add(-2 * time.Hour) })
	old, _ := expired.EndpointToken("tok")

	for _, tc := range []struct {
		name, endpoint, cred string
		want                 int
		reason               string // in WWW-Authenticate
	}{
		{"key on key endpoint", "keyed", "k2", 200, ""},
		{"wrong key", "keyed", "nope", 401, "missing or wrong key"},
		{"token on key endpoint", "keyed", tok.Value, 401, "a token was sent to a key endpoint"},
		{"no credential on key endpoint", "keyed", "", 401, ""},
		{"token on its endpoint", "tok", tok.Value, 200, ""},
		{"key on token endpoint", "tok", "k1", 401, "a key was sent to a token endpoint"},
		{"token of another endpoint", "tok", tok2.Value, 401, `endpoint 'tok2', not 'tok'`},
		{"forged token", "tok", forged.Value, 401, "signature is not valid"},
		{"expired token", "tok", old.Value, 401, "expired"},
		{"access token on aml_token endpoint", "tok", access.Value, 401, "access token"},
		{"no credential on token endpoint", "tok", "", 401, ""},
		{"access token on aad endpoint", "aad", access.Value, 200, ""},
		{"ARM token on aad endpoint", "aad", arm.Value, 200, ""},
		{"storage token on aad endpoint", "aad", storage.Value, 401, "storage.azure.com"},
		{"endpoint token on aad endpoint", "aad", tok.Value, 401, "not an access token"},
		{"key on aad endpoint", "aad", "k1", 401, "a key was sent"},
		{"no credential on local endpoint", "local", "", 200, ""},
		{"any key on local endpoint", "local", "nope", 200, ""},
		{"token on local endpoint", "local", tok.Value, 200, ""},
		{"forged token on local endpoint", "local", forged.Value, 200, ""},
	} {
		resp, body := call(t, front.URL+"/endpoints/"+tc.endpoint+"/score", tc.cred)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.want, body)
			continue
		}
		if tc.want == 200 {
			continue
		}
		h := resp.Header.Get(HeaderAuthenticate)
		if !strings.HasPrefix(h, "Bearer ") || !strings.Contains(h, tc.reason) {
			t.Errorf("%s: %s %q, want it to name %q", tc.name, HeaderAuthenticate, h, tc.reason)
		}
		if hasErr := strings.Contains(h, `error="invalid_token"`); hasErr != (tc.cred != "") {
			t.Errorf("%s: %s %q: error code only when a credential was sent", tc.name, HeaderAuthenticate, h)
		}
		if !strings.Contains(body, `"Unauthorized"`) || !strings.Contains(body, "berth ") {
			t.Errorf("%s: body %s: want the code and the command that fixes it", tc.name, body)
		}
	}
}

func TestTokenEndpointWithoutValidator(t *testing.T) {
	front := authRouter(t, nil)
	resp, body := call(t, front.URL+"/endpoints/tok/score", "a.b.c")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}
