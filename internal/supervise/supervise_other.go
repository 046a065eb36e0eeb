//go:build !unix

package supervise

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to add: without process groups a child is started as is.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate kills p at once: there is no SIGTERM to ask it first (Windows), so Stop
// has no grace period here.
func terminate(p *os.Process) { p.Kill() }

// kill kills p itself; without process groups its own children are not reached.
func kill(p *os.Process) { p.Kill() }
