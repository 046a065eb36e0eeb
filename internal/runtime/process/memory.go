package process

import (
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/runtime"
)

// watchMemory kills the instance's process group when it uses more than limit bytes,
// polling until the instance exits. The cause is kept in oom. It needs Linux's /proc
// (canWatchMemory): elsewhere memory limits are not enforced and Start does not call it.
func watchMemory(inst *child, limit int64, oom *atomic.Pointer[runtime.OutOfMemoryError]) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var peak int64
	for {
		select {
		case <-inst.Done():
			return
		case <-tick.C:
		}
		rss := treeRSS(inst.Pid())
		peak = max(peak, rss)
		if rss > limit {
			oom.Store(&runtime.OutOfMemoryError{Peak: peak, Limit: limit})
			inst.Process.Stop(0)
			return
		}
	}
}
