package main

import (
	"os"
	"strings"
)

// sysmonSetting keeps Go's system monitor thread out of its deep sleep in Berth's
// servers. The monitor sleeps deeply whenever every Go thread is idle; the next system
// call wakes it, and it then polls every 20 µs until it finds everything idle again. A
// server under spread-out traffic goes idle between requests, so it paid that wake and
// those polls for nearly every request (golang/go#18236). Measured on 2 cores in
// interleaved pairs, one worker: the scikit-learn example went from 9,800-11,000 to
// 14,000-16,800 req/s at 8 connections, and its Go CPU per request from 63-70 to 36-46 µs
// (82-88 -> 64 µs for the trivial script at 7,400 req/s on a schedule). With schedtrace
// set the monitor never sleeps deeply, and at an interval of 2^31-1 ms (24.8 days) it
// backs off to a poll every 10 ms when there is nothing to do. What it costs: that poll
// while idle (an idle berth serve with one deployment: ~100 wake-ups/s and 0.5-0.6% of a
// core, against 3-4 and under 0.1%), a one-line SCHED summary on stderr once per 24.8
// days of the machine's uptime, and a scheduler dump before the stack traces of a fatal
// panic.
const sysmonSetting = "schedtrace=2147483647"

// serverCommands are the long-running commands that serve requests.
var serverCommands = map[string]bool{"serve": true, "inference-server": true}

// sysmonEnv is the environment to run berth again with, for a server command whose
// GODEBUG does not set schedtrace already (GODEBUG=schedtrace=0 keeps Go's default);
// ok is false when nothing needs to change.
func sysmonEnv(args, env []string) (out []string, ok bool) {
	if len(args) == 0 || !serverCommands[args[0]] {
		return nil, false
	}
	at, current := -1, ""
	for i, kv := range env {
		if v, found := strings.CutPrefix(kv, "GODEBUG="); found {
			at, current = i, v
		}
	}
	for _, setting := range strings.Split(current, ",") {
		if name, _, _ := strings.Cut(strings.TrimSpace(setting), "="); name == "schedtrace" {
			return nil, false
		}
	}
	out = append([]string(nil), env...)
	if at < 0 {
		return append(out, "GODEBUG="+sysmonSetting), true
	}
	if current == "" {
		out[at] = "GODEBUG=" + sysmonSetting
	} else {
		out[at] = "GODEBUG=" + current + "," + sysmonSetting
	}
	return out, true
}

// keepSysmonAwake runs this server command again, in this process (same pid), with
// sysmonSetting in GODEBUG: the runtime reads GODEBUG's schedtrace only at start. It
// returns only if nothing needs to change or the exec failed; then berth runs as it is.
func keepSysmonAwake() {
	env, ok := sysmonEnv(os.Args[1:], os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	reexec(exe, os.Args, env)
}
