package main

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/cli"
	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/server"
)

func TestServerProcsLeavesHalfTheCPUsToTheWorkers(t *testing.T) {
	for cpus, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 8: 4, 64: 32} {
		if got := serverProcs(cpus); got != want {
			t.Errorf("serverProcs(%d) = %d, want %d", cpus, got, want)
		}
	}
}

func TestSysmonEnvOnlyForServersAndNeverOverridesGODEBUG(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		env  []string
		want string // GODEBUG after; "" = no re-exec
	}{
		{"serve without GODEBUG", "serve", []string{"HOME=/root"}, sysmonSetting},
		{"inference-server", "inference-server", []string{"GODEBUG="}, sysmonSetting},
		{"other settings kept", "serve", []string{"GODEBUG=http2client=0"}, "http2client=0," + sysmonSetting},
		{"schedtrace=0 opts out", "serve", []string{"GODEBUG=gctrace=1,schedtrace=0"}, ""},
		{"a spaced key is not Go's", "serve", []string{"GODEBUG=gctrace=1, schedtrace=0"}, "gctrace=1, schedtrace=0," + sysmonSetting},
		{"a client command", "online-endpoint", nil, ""},
		{"no command", "", nil, ""},
	}
	for _, tt := range tests {
		env, ok := sysmonEnv(tt.cmd, tt.env)
		if ok != (tt.want != "") {
			t.Errorf("%s: re-exec = %v, want %v", tt.name, ok, tt.want != "")
			continue
		}
		if !ok {
			continue
		}
		var got []string
		for _, kv := range env {
			if v, found := strings.CutPrefix(kv, "GODEBUG="); found {
				got = append(got, v)
			}
		}
		if len(got) != 1 || got[0] != tt.want || len(env) < len(tt.env) {
			t.Errorf("%s: GODEBUG %q in %q, want exactly one, %q", tt.name, got, env, tt.want)
		}
	}
}

// TestServerCommandFoundBehindPersistentFlags: the server command is found wherever the
// persistent flags stand; berth -o json serve is a server command too.
func TestServerCommandFoundBehindPersistentFlags(t *testing.T) {
	root := cli.NewRoot(server.NewServeCommand(), inference.NewCommand(), batch.NewPodCommand())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--addr", ":0"}, "serve"},
		{[]string{"-o", "json", "serve"}, "serve"},
		{[]string{"--server", "http://x", "--output=yaml", "inference-server", "--port", "5001"}, "inference-server"},
		{[]string{"online-endpoint", "list"}, "online-endpoint"},
		{[]string{"-o", "json", "online-deployment", "serve"}, "online-deployment"},
		{[]string{"no-such-command"}, ""},
		{nil, ""},
	} {
		if got := commandName(root, tc.args); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestRestoreGODEBUGGivesChildrenTheUsersValue(t *testing.T) {
	for _, tc := range []struct{ marker, before, want string }{
		{"1", sysmonSetting, ""},
		{"1", "http2client=0," + sysmonSetting, "http2client=0"},
		{"", "x=1," + sysmonSetting, "x=1," + sysmonSetting}, // not added by berth: kept
	} {
		t.Setenv(addedMarker, tc.marker)
		t.Setenv("GODEBUG", tc.before)
		restoreGODEBUG()
		if got := os.Getenv("GODEBUG"); got != tc.want {
			t.Errorf("GODEBUG %q (marker %q) restored to %q, want %q", tc.before, tc.marker, got, tc.want)
		}
		if os.Getenv(addedMarker) != "" {
			t.Errorf("marker left in the environment")
		}
	}
}

func TestSchedLineNoteOnlyWhenGoPrintsTheLine(t *testing.T) {
	if note := schedLineNote(24 * 24 * time.Hour); note != "" {
		t.Errorf("24 days up: %q, want nothing (Go prints no SCHED line before 24.8 days)", note)
	}
	if note := schedLineNote(25 * 24 * time.Hour); !strings.Contains(note, "SCHED") || !strings.Contains(note, "GODEBUG=schedtrace=0") {
		t.Errorf("25 days up: %q, want where the SCHED line comes from and how to turn it off", note)
	}
	if runtime.GOOS == "linux" && monotonicNow() <= 0 {
		t.Errorf("monotonicNow() = %v, want the time since boot", monotonicNow())
	}
}
