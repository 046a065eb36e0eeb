//go:build unix && !linux

package supervise

import "syscall"

// sysProcAttr starts a child in its own process group. These systems have no
// parent-death signal: a child outlives a berth that is killed, and only berth serve's
// shutdown stops it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
