package main

import (
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
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
// core, against 3-4 and under 0.1%); on a machine up for more than 24.8 days, a one-line
// SCHED summary on stderr at start (schedLineNote then says where it comes from) and
// every 24.8 days after (the runtime counts from boot); and a scheduler dump before the
// stack traces of a fatal panic. The processes berth starts (Python workers, pip) get
// the GODEBUG berth was given (restoreGODEBUG).
const sysmonSetting = "schedtrace=2147483647"

// addedMarker, in the environment, tells the re-executed berth that it added
// sysmonSetting to GODEBUG itself.
const addedMarker = "BERTH_ADDED_SCHEDTRACE"

// serverCommands are the long-running commands that serve requests.
var serverCommands = map[string]bool{"serve": true, "inference-server": true}

// commandName is the name of the top-level command args run, wherever the persistent
// flags stand (berth -o json serve); "" when they run none.
func commandName(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == root {
		return ""
	}
	for cmd.Parent() != root {
		cmd = cmd.Parent()
	}
	return cmd.Name()
}

// sysmonEnv is the environment to run berth again with, for a server command whose
// GODEBUG does not set schedtrace already (GODEBUG=schedtrace=0 keeps Go's default);
// ok is false when nothing needs to change.
func sysmonEnv(command string, env []string) (out []string, ok bool) {
	if !serverCommands[command] {
		return nil, false
	}
	at, current := -1, ""
	for i, kv := range env {
		if v, found := strings.CutPrefix(kv, "GODEBUG="); found {
			at, current = i, v
		}
	}
	for _, setting := range strings.Split(current, ",") {
		if name, _, _ := strings.Cut(setting, "="); name == "schedtrace" { // untrimmed, as Go reads it
			return nil, false
		}
	}
	out = append(append([]string(nil), env...), addedMarker+"=1")
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
func keepSysmonAwake(command string) {
	env, ok := sysmonEnv(command, os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	reexec(exe, os.Args, env)
}

// restoreGODEBUG, in the process keepSysmonAwake started, gives its environment back
// the GODEBUG berth was started with, once the runtime has read sysmonSetting from it
// (Go reads schedtrace only at start, so the setting stays), so that the processes berth
// starts do not inherit it; it also explains Go's SCHED line where Go prints one.
func restoreGODEBUG() {
	if os.Getenv(addedMarker) == "" {
		return
	}
	os.Unsetenv(addedMarker)
	if note := schedLineNote(monotonicNow()); note != "" {
		os.Stderr.WriteString(note)
	}
	current := os.Getenv("GODEBUG")
	if current == sysmonSetting {
		os.Unsetenv("GODEBUG")
	} else if before, ok := strings.CutSuffix(current, ","+sysmonSetting); ok {
		os.Setenv("GODEBUG", before)
	}
}

// schedLineNote explains, on a machine up long enough for Go to print its SCHED line at
// start (Go counts schedtrace's interval from boot), where that line comes from.
func schedLineNote(up time.Duration) string {
	if up < 2147483647*time.Millisecond {
		return ""
	}
	return "berth: the \"SCHED ...\" line from Go at start is its scheduler summary: berth sets GODEBUG=" + sysmonSetting +
		" to keep Go's monitor thread awake between requests (see schedtrace in the README); GODEBUG=schedtrace=0 turns both off\n"
}
