package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// request is what the fake server saw.
type request struct {
	Method, Path, Query, Auth, ContentType, Body string
}

// recorder is the list of requests a fake server saw.
type recorder struct {
	mu   sync.Mutex
	seen []request
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.seen...)
}

// fakeServer answers every request with status and body and records what it got.
func fakeServer(t *testing.T, status int, body string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, request{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		rec.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL+"/", "tok"), rec
}

func TestDoDecodesSuccess(t *testing.T) {
	c, _ := fakeServer(t, http.StatusOK, `{"primaryKey":"p","secondaryKey":"s"}`)
	k, err := c.ListKeys(context.Background(), "ep")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&wire.Credentials{Keys: &wire.Keys{PrimaryKey: "p", SecondaryKey: "s"}}, k); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestListKeysDecodesAToken(t *testing.T) {
	c, rec := fakeServer(t, http.StatusOK, `{"accessToken":"a.b.c","expiryTimeUtc":1700003600,"refreshAfterTimeUtc":1700001800,"tokenType":"Bearer"}`)
	k, err := c.ListKeys(context.Background(), "ep")
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.Credentials{EndpointToken: &wire.EndpointToken{AccessToken: "a.b.c", ExpiryTimeUTC: 1700003600, RefreshAfterTimeUTC: 1700001800, TokenType: "Bearer"}}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if k.Bearer() != "a.b.c" {
		t.Errorf("bearer %q", k.Bearer())
	}
	if _, err := c.AccessToken(context.Background(), "https://ml.azure.com"); err != nil {
		t.Fatal(err)
	}
	if got := rec.requests()[1]; got.Path != "/api/v1/token" || strings.TrimSpace(got.Body) != `{"resource":"https://ml.azure.com"}` {
		t.Errorf("access token request %+v", got)
	}
}

func TestDoDecodesErrorBody(t *testing.T) {
	body := `{"error":{"code":"BadArgument","message":"the spec is invalid","target":"spec","details":[{"code":"BadArgument","message":"must be set","target":"model"}]}}`
	c, _ := fakeServer(t, http.StatusBadRequest, body)
	_, err := c.CreateEndpoint(context.Background(), map[string]string{"name": "ep"})
	var de *diag.Error
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (%T), want a *diag.Error", err, err)
	}
	want := &diag.Error{Code: diag.BadArgument, Message: "the spec is invalid", Target: "spec",
		Details: []*diag.Error{{Code: diag.BadArgument, Message: "must be set", Target: "model"}}}
	if diff := cmp.Diff(want, de); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestDoNonJSONErrorBody(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   diag.Code
	}{
		{http.StatusBadGateway, diag.InternalServerError},
		{http.StatusUnauthorized, diag.Unauthorized},
		{http.StatusNotFound, diag.ResourceNotFound},
	} {
		c, _ := fakeServer(t, tc.status, "upstream exploded\n")
		_, err := c.ListEndpoints(context.Background())
		de := diag.As(err)
		if de == nil {
			t.Fatalf("%d: err = %v (%T), want a *diag.Error", tc.status, err, err)
		}
		if de.Code != tc.code || !strings.Contains(de.Message, "upstream exploded") || !strings.Contains(de.Message, strconv.Itoa(tc.status)) {
			t.Errorf("%d: error = %+v, want code %s and a message with the status and body", tc.status, de, tc.code)
		}
	}
}

func TestDoUnauthorizedErrorBody(t *testing.T) {
	c, _ := fakeServer(t, http.StatusUnauthorized, `{"error":{"code":"Unauthorized","message":"wrong admin token"}}`)
	_, err := c.GetConnection(context.Background(), "x")
	if de := diag.As(err); de == nil || de.Code != diag.Unauthorized || de.Message != "wrong admin token" {
		t.Fatalf("err = %v, want (Unauthorized) wrong admin token", err)
	}
}

func TestDoConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens on addr any more
	_, err = New("http://"+addr, "tok").ListEndpoints(context.Background())
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("err = %v, want ErrNoServer", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("err = %v, want it to name %s", err, addr)
	}
}

func TestDoOtherTransportErrorIsNotNoServer(t *testing.T) {
	c, _ := fakeServer(t, http.StatusOK, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ListEndpoints(ctx)
	if err == nil || errors.Is(err, ErrNoServer) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled and not ErrNoServer", err)
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func(c *Client) error
		want request
	}{
		{"create model", func(c *Client) error {
			_, err := c.CreateAsset(ctx, wire.KindModel, wire.AssetCreate{Name: "m", PathBase: "model", Artifact: "sha256:1"})
			return err
		}, request{"POST", "/api/v1/assets/model", "", "Bearer tok", "application/json", `{"name":"m","path_base":"model","artifact":"sha256:1"}`}},
		{"list data", func(c *Client) error {
			_, err := c.ListAssets(ctx, wire.KindData, "")
			return err
		}, request{"GET", "/api/v1/assets/data", "", "Bearer tok", "", ""}},
		{"list versions", func(c *Client) error {
			_, err := c.ListAssets(ctx, wire.KindEnvironment, "my env")
			return err
		}, request{"GET", "/api/v1/assets/environment", "name=my+env", "Bearer tok", "", ""}},
		{"get latest", func(c *Client) error {
			_, err := c.GetAsset(ctx, wire.KindModel, "m", "latest")
			return err
		}, request{"GET", "/api/v1/assets/model/m/versions/latest", "", "Bearer tok", "", ""}},
		{"archive", func(c *Client) error {
			_, err := c.ArchiveAsset(ctx, wire.KindData, "d", "2", true)
			return err
		}, request{"POST", "/api/v1/assets/data/d/versions/2/archive", "", "Bearer tok", "", ""}},
		{"restore", func(c *Client) error {
			_, err := c.ArchiveAsset(ctx, wire.KindModel, "a/b", "1", false)
			return err
		}, request{"POST", "/api/v1/assets/model/a%2Fb/versions/1/restore", "", "Bearer tok", "", ""}},
		{"delete deployment", func(c *Client) error {
			return c.DeleteDeployment(ctx, "ep", "blue")
		}, request{"DELETE", "/api/v1/endpoints/ep/deployments/blue", "", "Bearer tok", "", ""}},
		{"upload", func(c *Client) error {
			_, err := c.UploadArtifact(ctx, strings.NewReader("tar bytes"))
			return err
		}, request{"POST", "/api/v1/artifacts", "", "Bearer tok", "application/octet-stream", "tar bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, seen := fakeServer(t, http.StatusOK, `{}`)
			if err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]request{tc.want}, seen.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHasArtifact(t *testing.T) {
	for _, tc := range []struct {
		status  int
		want    bool
		wantErr bool
	}{{http.StatusOK, true, false}, {http.StatusNotFound, false, false}, {http.StatusUnauthorized, false, true}} {
		c, _ := fakeServer(t, tc.status, "")
		got, err := c.HasArtifact(context.Background(), "sha256:1")
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("status %d: HasArtifact = %v, %v; want %v, error %v", tc.status, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestLocalScopesEndpointRoutes checks that a Local client adds ?local=true to the
// endpoint routes only, and that the client it came from is unchanged.
func TestLocalScopesEndpointRoutes(t *testing.T) {
	c, rec := fakeServer(t, http.StatusOK, `[]`)
	ctx := context.Background()
	local := c.Local(true)
	local.ListEndpoints(ctx)
	local.GetDeployment(ctx, "ep", "blue")
	local.ListAssets(ctx, "model", "")
	c.ListEndpoints(ctx)
	var got []string
	for _, r := range rec.requests() {
		got = append(got, r.Path+"?"+r.Query)
	}
	want := []string{"/api/v1/endpoints?local=true", "/api/v1/endpoints/ep/deployments/blue?local=true", "/api/v1/assets/model?", "/api/v1/endpoints?"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
