package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCreatePrintsSpecWarnings checks that create prints what Azure would refuse and the
// fields with no effect as WARNING lines on stderr, still sends them to the server, and
// keeps stdout for the result.
func TestCreatePrintsSpecWarnings(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints/shop":              {body: `{"name":"shop"}`},
		"POST /endpoints":                  {status: 201, body: `{"name":"shop"}`},
		"POST /endpoints/shop/deployments": {status: 201, body: `{"name":"blue"}`},
	})
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dep.yml"), "name: blue\nendpoint_name: shop\napp_insights_enabled: true\nproperties: {owner: me}\n")
	write(t, filepath.Join(dir, "ep.yml"), "name: shop\nidentity: {type: system_assigned}\n")

	out, stderr, err := f.berth(t, "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--no-wait")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, field := range []string{"app_insights_enabled", "environment", "instance_type"} {
		if !strings.Contains(stderr, "WARNING: "+field+": ") {
			t.Errorf("stderr lacks a warning on %s:\n%s", field, stderr)
		}
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("warnings went to stdout: %q", out)
	}
	var sent string
	for _, r := range f.requests() {
		if r.Method == "POST" && r.Path == "/endpoints/shop/deployments" {
			sent = r.Body
		}
	}
	if !strings.Contains(sent, `"app_insights_enabled":true`) || !strings.Contains(sent, `"properties":{"owner":"me"}`) {
		t.Errorf("the spec sent lacks the warned or new fields: %s", sent)
	}

	_, stderr, err = f.berth(t, "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "WARNING: identity: has no effect on one machine") {
		t.Errorf("endpoint create stderr lacks the identity warning:\n%s", stderr)
	}
}
