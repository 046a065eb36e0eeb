//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// createTokenEndpoint creates endpoint name with auth_mode mode from a copy of the
// quickstart endpoint YAML and deploys the quickstart's blue deployment to it.
func createTokenEndpoint(t *testing.T, s *server, name, mode string) {
	t.Helper()
	yml, err := os.ReadFile(example("quickstart", "endpoint.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(strings.Replace(string(yml), "name: quickstart", "name: "+name, 1), "auth_mode: key", "auth_mode: "+mode, 1)
	if text == string(yml) || !strings.Contains(text, "auth_mode: "+mode) {
		t.Fatalf("the quickstart endpoint YAML changed shape:\n%s", yml)
	}
	path := filepath.Join(t.TempDir(), "endpoint.yml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ok("online-endpoint", "create", "-f", path)
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-e", name, "--all-traffic")
}

func TestTokenAuth(t *testing.T) {
	s := startServer(t, "")
	createTokenEndpoint(t, s, "tok", "aml_token")
	createTokenEndpoint(t, s, "aad", "aad_token")
	s.ok("online-endpoint", "create", "-n", "other", "--auth-mode", "aml_token")
	body, err := os.ReadFile(example("quickstart", "sample-request.json"))
	if err != nil {
		t.Fatal(err)
	}

	var creds map[string]any
	s.okJSON(&creds, "online-endpoint", "get-credentials", "-n", "tok")
	for _, field := range []string{"accessToken", "expiryTimeUtc", "refreshAfterTimeUtc", "tokenType"} {
		if _, ok := creds[field]; !ok {
			t.Errorf("get-credentials of an aml_token endpoint has no %s: %v", field, creds)
		}
	}
	if len(creds) != 4 || creds["tokenType"] != "Bearer" {
		t.Errorf("get-credentials = %v, want exactly Azure's four token fields", creds)
	}
	token := strings.TrimSpace(s.ok("online-endpoint", "get-credentials", "-n", "tok", "--query", "accessToken", "-o", "tsv"))
	if status, _, got := s.score("tok", token, string(body)); status != 200 || strings.TrimSpace(got) != "[7.0, 1.5]" {
		t.Fatalf("scoring with the token: %d %s", status, got)
	}
	if out := s.ok("online-endpoint", "invoke", "-n", "tok", "--request-file", example("quickstart", "sample-request.json")); strings.TrimSpace(out) != "[7.0, 1.5]" {
		t.Fatalf("invoke on an aml_token endpoint printed %q", out)
	}

	// The stored keys, a token of another endpoint and an access token are refused.
	otherToken := strings.TrimSpace(s.ok("online-endpoint", "get-credentials", "-n", "other", "--query", "accessToken", "-o", "tsv"))
	access := strings.TrimSpace(s.ok("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
	for what, cred := range map[string]string{"a key": "not-a-token", "another endpoint's token": otherToken, "an access token": access, "nothing": ""} {
		status, h, got := s.score("tok", cred, string(body))
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(got, "get-credentials -n tok") {
			t.Errorf("%s on an aml_token endpoint: %d %q %s", what, status, h.Get("WWW-Authenticate"), got)
		}
	}
	if r := s.berth("online-endpoint", "regenerate-keys", "-n", "tok"); r.code == 0 || !strings.Contains(r.stderr, "does not use keys") {
		t.Errorf("regenerate-keys on an aml_token endpoint: exit %d, %s", r.code, r.stderr)
	}

	// aad_token: the admin identity's access token scores; so does the Azure ML one.
	if status, _, got := s.score("aad", access, string(body)); status != 200 {
		t.Fatalf("scoring an aad_token endpoint with get-access-token: %d %s", status, got)
	}
	ml := strings.TrimSpace(s.ok("account", "get-access-token", "--resource", "https://ml.azure.com", "--query", "accessToken", "-o", "tsv"))
	if status, _, got := s.score("aad", ml, string(body)); status != 200 {
		t.Fatalf("scoring an aad_token endpoint with an ml.azure.com token: %d %s", status, got)
	}
	if status, h, _ := s.score("aad", token, string(body)); status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("an endpoint token on an aad_token endpoint: %d %q", status, h.Get("WWW-Authenticate"))
	}

	// The control plane takes the access token instead of the admin token.
	r := s.berth("online-endpoint", "list", "--token", access, "--query", "[].name", "-o", "tsv")
	if r.code != 0 || !strings.Contains(r.stdout, "aad") {
		t.Errorf("the control plane with an access token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := s.berth("online-endpoint", "list", "--token", token); r.code == 0 {
		t.Errorf("the control plane accepted an endpoint token:\n%s", r.stdout)
	}

	// A token survives a restart: the signing key is kept in the data dir.
	s.stop()
	s.start()
	eventually(t, 20*time.Second, "the aml_token endpoint scores again with the old token after a restart", func() bool {
		status, _, _ := s.score("tok", token, string(body))
		return status == 200
	})
	var keyInfo os.FileInfo
	if keyInfo, err = os.Stat(filepath.Join(s.dataDir, "token.key")); err != nil || keyInfo.Mode().Perm() != 0o600 {
		t.Errorf("token.key: %v %v", keyInfo, err)
	}
	var at map[string]any
	s.okJSON(&at, "account", "get-access-token")
	if b, _ := json.Marshal(at); len(at) != 6 || at["tokenType"] != "Bearer" {
		t.Errorf("get-access-token = %s, want az's six fields", b)
	}
}
