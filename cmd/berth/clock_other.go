//go:build !linux

package main

import "time"

// monotonicNow is 0 where Berth does not read the runtime's clock: no note is printed.
func monotonicNow() time.Duration { return 0 }
