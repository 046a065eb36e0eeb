//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFixFailedDeploymentWithCreate follows a new user's path: a score.py whose init()
// raises leaves the deployment Failed; the user fixes the file and runs the same
// `create` again, which replaces the failed deployment. Scoring then says the
// deployment has no traffic and which command gives it some; that command works. A
// missing endpoint is EndpointNotFound, also when traffic names a deployment.
func TestFixFailedDeploymentWithCreate(t *testing.T) {
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-n", "fixit")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py": "def init():\n    raise RuntimeError('model not trained yet')\n\ndef run(raw):\n    return {'ok': True}\n",
		"model/m.txt":   "x",
		"dep.yml":       "name: blue\nendpoint_name: fixit\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 1\n",
		"req.json":      `{"data": [1]}`,
	})
	depFile := filepath.Join(dir, "dep.yml")
	if r := s.berth("online-deployment", "create", "-f", depFile); r.code == 0 {
		t.Fatalf("a score.py whose init() raises was deployed:\n%s", r.stdout)
	}
	if state, code, _, msg := deploymentError(t, s, "fixit", "blue"); state != "Failed" || !strings.Contains(msg, "model not trained yet") {
		t.Fatalf("after the failing create: %s %s %q, want Failed quoting the script's error", state, code, msg)
	}

	fixed := "def init():\n    pass\n\ndef run(raw):\n    return {'ok': True}\n"
	if err := os.WriteFile(filepath.Join(dir, "code", "score.py"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ok("online-deployment", "create", "-f", depFile)
	if state, code, _, msg := deploymentError(t, s, "fixit", "blue"); state != "Succeeded" || code != "" {
		t.Fatalf("after create from the fixed file: %s %s %q, want Succeeded without error", state, code, msg)
	}

	// A create over a deployment that works is refused, naming the command that changes it.
	r := s.berth("online-deployment", "create", "-f", depFile)
	if r.code == 0 || !strings.Contains(r.stderr, "DeploymentAlreadyExists") || !strings.Contains(r.stderr, "berth online-deployment update -f <file>") {
		t.Fatalf("create over a Succeeded deployment: exit %d\n%s", r.code, r.stderr)
	}

	// The deployment has no traffic yet: 404 names it and the --traffic command.
	key, _ := s.keys("fixit")
	status, _, body := s.score("fixit", key, `{"data": [1]}`)
	if status != 404 || !strings.Contains(body, "NoValidDeployment") || !strings.Contains(body, "0 traffic: blue") ||
		!strings.Contains(body, `berth online-endpoint update -n fixit --traffic \"blue=100\"`) {
		t.Fatalf("scoring without traffic: %d %s", status, body)
	}
	r = s.berth("online-endpoint", "invoke", "-n", "fixit", "--request-file", filepath.Join(dir, "req.json"))
	if r.code == 0 || !strings.Contains(r.stderr, "berth online-endpoint update -n fixit --traffic") {
		t.Fatalf("invoke without traffic: exit %d\n%s", r.code, r.stderr)
	}
	s.ok("online-endpoint", "update", "-n", "fixit", "--traffic", "blue=100")
	out := s.ok("online-endpoint", "invoke", "-n", "fixit", "--request-file", filepath.Join(dir, "req.json"))
	if !strings.Contains(out, `"ok": true`) && !strings.Contains(out, `"ok":true`) {
		t.Fatalf("invoke after the fix: %s", out)
	}

	for _, args := range [][]string{
		{"online-endpoint", "update", "-n", "nope", "--traffic", "blue=100"},
		{"online-deployment", "show", "-e", "nope", "-n", "blue"},
		{"online-deployment", "get-logs", "-e", "nope", "-n", "blue"},
	} {
		r := s.berth(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "EndpointNotFound") || strings.Contains(r.stderr, "deployment blue does not exist") {
			t.Errorf("berth %s: exit %d\n%s\nwant EndpointNotFound", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
