//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
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
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if bytes.HasPrefix(kv, []byte("GODEBUG=")) {
				got = append(got, kv)
			}
		}
		if len(got) != 1 || string(got[0]) != tc.want {
			t.Errorf("started with %s: the serving process (pid %d) has %q, want %s", tc.env, s.cmd.Process.Pid, got, tc.want)
		}
		if r := s.berth("online-endpoint", "list"); r.code != 0 {
			t.Errorf("started with %s: online-endpoint list exit %d: %s", tc.env, r.code, r.stderr)
		}
		s.stop()
	}
}
