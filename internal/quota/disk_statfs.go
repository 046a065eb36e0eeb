//go:build linux || darwin || freebsd

package quota

import "syscall"

// FreeDisk returns the bytes free to unprivileged users under dir, or -1 when unknown.
func FreeDisk(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
