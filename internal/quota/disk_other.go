//go:build !(linux || darwin || freebsd)

package quota

// FreeDisk returns -1 (unknown) where statfs is not available, e.g. on Windows: the
// disk check then only compares the model with its instance_type's disk.
func FreeDisk(string) int64 { return -1 }
