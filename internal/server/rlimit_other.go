//go:build !unix

package server

// raiseOpenFiles reports an unknown limit where RLIMIT_NOFILE does not exist.
func raiseOpenFiles() uint64 { return 0 }
