package main

import (
	"strings"
	"testing"
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
		args []string
		env  []string
		want string // GODEBUG after; "" = no re-exec
	}{
		{"serve without GODEBUG", []string{"serve", "--addr", ":0"}, []string{"HOME=/root"}, sysmonSetting},
		{"inference-server", []string{"inference-server"}, []string{"GODEBUG="}, sysmonSetting},
		{"other settings kept", []string{"serve"}, []string{"GODEBUG=http2client=0"}, "http2client=0," + sysmonSetting},
		{"schedtrace=0 opts out", []string{"serve"}, []string{"GODEBUG=gctrace=1, schedtrace=0"}, ""},
		{"a client command", []string{"online-endpoint", "list"}, nil, ""},
		{"no command", nil, nil, ""},
	}
	for _, tt := range tests {
		env, ok := sysmonEnv(tt.args, tt.env)
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
