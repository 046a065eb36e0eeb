package server

import (
	"errors"
	"sync"

	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/telemetry"
)

// lastExits remembers why each instance exited on its own, so that its next start (its
// keeper restarting it) is counted as a restart with that cause. An instance stopped on
// purpose leaves no entry.
type lastExits struct {
	mu    sync.Mutex
	exits map[exitKey]string
}

type exitKey struct {
	endpoint, deployment string
	index                int
}

// watch records inst's cause of exit when it ends.
func (l *lastExits) watch(endpoint, deployment string, index int, inst runtime.Instance) {
	go func() { // ends with the instance
		<-inst.Done()
		err := inst.Err()
		if err == nil {
			return // stopped on purpose
		}
		cause := telemetry.CauseInstanceExited
		var oom *runtime.OutOfMemoryError
		if errors.As(err, &oom) {
			cause = telemetry.CauseInstanceOutOfMemory
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.exits == nil {
			l.exits = map[exitKey]string{}
		}
		l.exits[exitKey{endpoint, deployment, index}] = cause
	}()
}

// take returns and forgets the cause of the instance's last exit.
func (l *lastExits) take(endpoint, deployment string, index int) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := exitKey{endpoint, deployment, index}
	cause, ok := l.exits[k]
	delete(l.exits, k)
	return cause, ok
}
