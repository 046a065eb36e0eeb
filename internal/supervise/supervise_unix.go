//go:build unix

package supervise

import (
	"os"
	"syscall"
)

// terminate asks the process group of p (p's pid is its group id) to exit.
func terminate(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGTERM) }

// kill kills what is left of the process group of p, grandchildren included.
func kill(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGKILL) }
