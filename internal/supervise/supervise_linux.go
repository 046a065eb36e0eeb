package supervise

import "syscall"

// sysProcAttr starts a child in its own process group, and has the kernel kill it when
// berth dies (parent-death signal).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
