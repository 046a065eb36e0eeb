package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProcessAutoscale: on this machine, scale_settings.type target_utilization (min 1,
// max 3, polling 1 s) starts instances under real load above the target and stops
// them after the scale-down delay once idle; decisions are logged with their inputs.
func TestProcessAutoscale(t *testing.T) {
	dir := t.TempDir()
	busyDeployment(t, dir, nil)
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("online-endpoint", "create", "-n", "busy")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--all-traffic")
	ready := func() int {
		var d struct {
			Instances []struct{ State string } `json:"instances"`
		}
		s.okJSON(&d, "online-deployment", "show", "-e", "busy", "-n", "blue")
		n := 0
		for _, in := range d.Instances {
			if strings.EqualFold(in.State, "ready") || strings.EqualFold(in.State, "serving") {
				n++
			}
		}
		return n
	}
	wait := func(want int, within time.Duration) time.Duration {
		start := time.Now()
		for ready() != want {
			if time.Since(start) > within {
				t.Fatalf("%d ready instances, want %d after %v; server log:\n%s", ready(), want, within, s.log)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return time.Since(start)
	}
	wait(1, 30*time.Second)

	key, _ := s.keys("busy")
	stopLoad := s.load("busy", key, 6)
	up := wait(3, 60*time.Second)
	stopLoad()
	down := wait(1, 90*time.Second)
	if down < 15*time.Second {
		t.Errorf("back to 1 instance after %v: scale-down must wait 20 polling intervals below target", down)
	}
	if log := s.log.String(); !strings.Contains(log, "autoscale") || !strings.Contains(log, "utilization") {
		t.Errorf("the server log lacks the autoscaler's decisions:\n%s", log)
	}
	t.Logf("1 → 3 instances in %v under load, back to 1 in %v once idle", up.Round(time.Millisecond), down.Round(time.Millisecond))
}

// busyDeployment writes, under dir, deployment blue of endpoint busy: a run() that
// takes 0.2 s, one request at a time per instance, autoscaled between 1 and 3
// instances at 70% utilization, polled every second.
func busyDeployment(t *testing.T, dir string, extra map[string]string) {
	t.Helper()
	files := map[string]string{
		"code/score.py": "import time\ndef init():\n    pass\ndef run(raw):\n    time.sleep(0.2)\n    return {'ok': True}\n",
		"model/m.txt":   "1",
		"deployment.yml": `name: blue
endpoint_name: busy
model: {path: ./model}
code_configuration: {code: ./code, scoring_script: score.py}
instance_count: 1
scale_settings: {type: target_utilization, min_instances: 1, max_instances: 3, target_utilization_percentage: 70, polling_interval: 1}
request_settings: {max_concurrent_requests_per_instance: 1, request_timeout_ms: 30000}
`,
	}
	for k, v := range extra {
		files[k] = v
	}
	writeFiles(t, dir, files)
}
