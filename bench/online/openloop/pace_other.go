//go:build !linux

package main

import "time"

// pacerThread needs no thread of its own where sleepUntil uses Go's timers.
func pacerThread() (release func()) { return func() {} }

// sleepUntil sleeps with Go's timers (the Linux pacer is more precise).
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }
