//go:build linux

package main

import (
	"context"
	"runtime"
	"syscall"
	"time"
)

// pace releases slots due at start, start+interval, ... into due, each at its time,
// then closes due. Go's timers fire up to a millisecond late on some machines (the
// poller sleeps in whole milliseconds), which would bunch requests together and be
// charged to the server; so the pacer owns an OS thread, sets its timer slack to 1 ns
// and sleeps with nanosleep: a slot is released within tens of microseconds of its time.
func pace(ctx context.Context, start time.Time, interval time.Duration, slots int, due chan<- time.Time) {
	defer close(due)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const prSetTimerSlack = 29
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	for i := range slots {
		at := start.Add(time.Duration(i) * interval)
		for wait := time.Until(at); wait > 0; wait = time.Until(at) {
			ts := syscall.NsecToTimespec(int64(wait))
			syscall.Nanosleep(&ts, nil) // woken early (EINTR): sleep the rest
		}
		if ctx.Err() != nil {
			return
		}
		due <- at
	}
}
