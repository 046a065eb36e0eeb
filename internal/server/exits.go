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

// watch records inst's cause of exit when it ends, and returns inst as the keeper must
// see it: its exit becomes observable (Done closes) only once the cause is recorded, so
// the keeper's restart always finds it.
func (l *lastExits) watch(endpoint, deployment string, index int, inst runtime.Instance) runtime.Instance {
	w := &watched{Instance: inst, done: make(chan struct{})}
	go func() { // ends with the instance
		defer close(w.done)
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
	return w
}

// watched is an instance whose Done closes once lastExits has recorded its exit.
type watched struct {
	runtime.Instance
	done chan struct{}
}

func (w *watched) Done() <-chan struct{} { return w.done }

// retain forgets the exits of deployments no longer routed (routed lists the routed
// ones): an instance of a deleted deployment that crashed and was never restarted must
// not make the first start of a later deployment of the same names a restart.
func (l *lastExits) retain(routed func(yield func(telemetry.DeploymentLoad))) {
	keep := map[[2]string]bool{}
	routed(func(d telemetry.DeploymentLoad) { keep[[2]string{d.Endpoint, d.Deployment}] = true })
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.exits {
		if !keep[[2]string{k.endpoint, k.deployment}] {
			delete(l.exits, k)
		}
	}
}

// afterPublish returns publish followed by then, for the controller's Publish.
func afterPublish[T any](publish func(T), then func()) func(T) {
	return func(t T) {
		publish(t)
		then()
	}
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
