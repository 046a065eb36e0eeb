//go:build unix

package main

import "syscall"

// reexec replaces this process's program with exe, keeping its pid; it returns only
// when the exec failed.
func reexec(exe string, args, env []string) {
	_ = syscall.Exec(exe, args, env) // on failure berth goes on as it is
}
