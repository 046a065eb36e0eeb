package process

import (
	"time"

	"github.com/berthml/berth/internal/runtime"
)

// watchMemory stops the instance when its workers (and their children) use more than
// limit bytes together, polling until the instance ends; the cause is kept for Err. It
// needs Linux's /proc (canWatchMemory): elsewhere memory limits are not enforced and
// Start does not call it.
func watchMemory(l *local, limit int64) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var peak int64
	for {
		select {
		case <-l.Done():
			return
		case <-tick.C:
		}
		rss := treeRSS(l.Pids())
		peak = max(peak, rss)
		if rss > limit {
			l.oom.Store(&runtime.OutOfMemoryError{Peak: peak, Limit: limit})
			go l.Instance.Stop() // Done closes when the workers are gone
			return
		}
	}
}
