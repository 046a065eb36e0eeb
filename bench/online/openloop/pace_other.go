//go:build !linux

package main

import (
	"context"
	"time"
)

// pace releases slots due at start, start+interval, ... into due, each at its time,
// then closes due (Go's timers; the Linux pacer is more precise).
func pace(ctx context.Context, start time.Time, interval time.Duration, slots int, due chan<- time.Time) {
	defer close(due)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := range slots {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		due <- at
	}
}
