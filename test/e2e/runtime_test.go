//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestServeKeepsGoSysmonAwake: berth serve runs itself again, same pid, with
// schedtrace in GODEBUG (so Go's monitor thread is not woken for every spread-out
// request), keeps the user's other GODEBUG settings, and leaves a GODEBUG that sets
// schedtrace itself alone.
func TestServeKeepsGoSysmonAwake(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"GODEBUG=http2client=0", "GODEBUG=http2client=0,schedtrace=2147483647"},
		{"GODEBUG=schedtrace=0", "GODEBUG=schedtrace=0"},
	} {
		s := startServer(t, "", tc.env)
		got := environ(t, s.cmd.Process.Pid, "GODEBUG")
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("started with %s: the serving process (pid %d) has %q, want %s", tc.env, s.cmd.Process.Pid, got, tc.want)
		}
		// The workers berth starts get the GODEBUG berth was given.
		deployQuickstart(t, s)
		workers := workerPIDs(t, s, "quickstart", "blue")
		if len(workers) == 0 {
			t.Fatalf("started with %s: no worker process found", tc.env)
		}
		if got := environ(t, workers[0], "GODEBUG", "BERTH_ADDED_SCHEDTRACE"); len(got) != 1 || got[0] != tc.env {
			t.Errorf("started with %s: a worker has %q, want only %s", tc.env, got, tc.env)
		}
		s.stop()
	}
}

// environ is the entries of /proc/PID/environ (the environment the process was started
// with) whose names are among names.
func environ(t *testing.T, pid int, names ...string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		name, _, _ := strings.Cut(string(kv), "=")
		if slices.Contains(names, name) {
			out = append(out, string(kv))
		}
	}
	return out
}
