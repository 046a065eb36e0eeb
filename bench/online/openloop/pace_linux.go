//go:build linux

package main

import (
	"runtime"
	"syscall"
	"time"
)

// pacerThread gives the calling goroutine an OS thread of its own with a timer slack of
// 1 ns, so that sleepUntil wakes within tens of microseconds of its time; the returned
// function gives the thread back.
func pacerThread() (release func()) {
	runtime.LockOSThread()
	const prSetTimerSlack = 29
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	return runtime.UnlockOSThread
}

// sleepUntil sleeps with nanosleep, which keeps the thread's timer slack: Go's timers
// fired up to a millisecond late here (the poller sleeps in whole milliseconds).
func sleepUntil(at time.Time) {
	for wait := time.Until(at); wait > 0; wait = time.Until(at) {
		ts := syscall.NsecToTimespec(int64(wait))
		syscall.Nanosleep(&ts, nil) // woken early (EINTR): sleep the rest
	}
}
