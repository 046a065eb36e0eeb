//go:build unix

package server

import "syscall"

// raiseOpenFiles raises the soft limit of open files to the hard limit and returns the
// resulting soft limit (0 when unknown). Go (1.19+) already does this at startup on
// most systems; this covers the rest. Children get the raised limit too.
func raiseOpenFiles() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return uint64(lim.Cur)
}
