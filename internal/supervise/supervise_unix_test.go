//go:build unix

package supervise

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStopKillsTheGroup(t *testing.T) {
	pidFile := t.TempDir() + "/child.pid"
	// The shell ignores TERM and starts a grandchild; Stop must kill both.
	p, err := Start(Command{Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; sleep 60 & echo $! > " + pidFile + "; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(pidFile)
		if child, _ = strconv.Atoi(strings.TrimSpace(string(b))); child > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("grandchild did not start")
	}
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 || !strings.Contains(p.Err().Error(), "signal") {
		t.Fatalf("exit %d %v", p.ExitCode(), p.Err())
	}
	for time.Now().Before(deadline) {
		if syscall.Kill(child, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("grandchild survived Stop")
}

func TestExitCode(t *testing.T) {
	p, err := Start(Command{Path: "/bin/sh", Args: []string{"-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if p.ExitCode() != 3 || p.Err() == nil {
		t.Fatalf("exit %d %v", p.ExitCode(), p.Err())
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
}
