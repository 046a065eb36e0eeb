//go:build !linux

package process

// canWatchMemory is false: without Linux's /proc the resident memory of a process tree
// is not measured, so an instance's memory limit is not enforced on this system.
const canWatchMemory = false

// treeRSS is not implemented on this system; it reports 0.
func treeRSS([]int) int64 { return 0 }
