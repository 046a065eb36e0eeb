//go:build unix

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFailedUpdateStillServesAfterRestart: after an update fails, the version that
// served before goes on serving, also after berth serve restarts; the deployment stays
// Failed with its error until an update fixes it.
func TestFailedUpdateStillServesAfterRestart(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	key, _ := s.keys("quickstart")
	body := `{"data": [[1, 2, 3, 4]]}`
	serves := func(when string) {
		t.Helper()
		eventually(t, 30*time.Second, "scoring "+when, func() bool {
			status, _, _ := s.score("quickstart", key, body)
			return status == 200
		})
	}
	failedWith := func(when, code string) {
		t.Helper()
		var dep struct {
			ProvisioningState string `json:"provisioning_state"`
			Error             struct {
				Details []struct{ Code string }
			}
		}
		s.okJSON(&dep, "online-deployment", "show", "-e", "quickstart", "-n", "blue")
		if dep.ProvisioningState != "Failed" || len(dep.Error.Details) == 0 || dep.Error.Details[0].Code != code {
			t.Fatalf("%s: %+v, want Failed with %s", when, dep, code)
		}
	}

	// An update whose init() cannot open its model fails; the first version serves on.
	app := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("cp", "-r", example("quickstart"), app).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := exec.Command("sed", "-i", `s/model\.json/model.jsn/`, filepath.Join(app, "onlinescoring", "score.py")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r := s.berth("online-deployment", "update", "-f", filepath.Join(app, "blue-deployment.yml")); r.code == 0 {
		t.Fatalf("the broken update succeeded: %+v", r)
	}
	serves("after the failed update")
	failedWith("after the failed update", "UserScriptInitFailed")

	// berth serve restarts: the version that last succeeded serves again, and the
	// deployment still says why it is Failed.
	s.stop()
	s.start()
	serves("after a restart")
	failedWith("after a restart", "UserScriptInitFailed")
	if !strings.Contains(s.log.String(), "the version that last succeeded serves again") {
		t.Errorf("the server log does not say it served the last good version again")
	}

	// The fix rolls out as usual, and is what the next restart serves.
	s.ok("online-deployment", "update", "-f", example("quickstart", "blue-deployment.yml"))
	s.stop()
	s.start()
	serves("after the fix and a restart")
	var dep struct {
		ProvisioningState string `json:"provisioning_state"`
	}
	s.okJSON(&dep, "online-deployment", "show", "-e", "quickstart", "-n", "blue")
	if dep.ProvisioningState != "Succeeded" {
		t.Fatalf("after the fix: %s", dep.ProvisioningState)
	}
}
