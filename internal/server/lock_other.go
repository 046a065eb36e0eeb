//go:build !unix

package server

import "os"

// lockFile does nothing where flock does not exist (Windows): there, two servers on one
// data dir are not prevented, and the second fails only if the address is in use.
func lockFile(*os.File) error { return nil }
