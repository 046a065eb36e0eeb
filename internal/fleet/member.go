package fleet

import (
	"maps"
	"sync"
	"time"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
)

// member is one instance of a deployment and the state its keeper reports.
type member struct {
	index int
	gen   string
	want  Desired              // probes and routing settings it was started with
	spec  runtime.InstanceSpec // set before the keeper starts

	mu       sync.Mutex
	state    instance.State
	failed   bool
	restarts int
	phases   map[string]float64 // milliseconds per start phase
	entry    *table.Instance    // routing entry of the running process; new per start
	firstErr error

	first  chan struct{} // closed when the first start ended, ready or not
	cancel func()        // stops the keeper (nil when none started)
	done   chan struct{} // closed when the keeper has stopped the instance
}

func newMember(index int, want Desired) *member {
	if want.Phases == nil {
		want.Phases = map[string]float64{}
	}
	return &member{index: index, gen: want.Target.Generation, want: want, state: instance.Starting,
		phases: maps.Clone(want.Phases), first: make(chan struct{}), done: make(chan struct{})}
}

// fail records that the instance never became ready.
func (m *member) fail(err error) {
	m.mu.Lock()
	m.failed, m.firstErr, m.state = true, err, instance.Stopped
	m.mu.Unlock()
	close(m.first)
}

// ready records a running instance as routable.
func (m *member) ready(inst runtime.Instance) {
	m.mu.Lock()
	m.entry = table.NewInstance(inst.Addr(), m.want.Routing.MaxConcurrent)
	m.entry.Handler = inst.Handler()
	m.state = instance.Ready
	m.mu.Unlock()
}

func (m *member) setPhase(name string, ms float64) {
	m.mu.Lock()
	m.phases[name] = ms
	m.mu.Unlock()
}

// readyEntry returns the routing entry of a ready instance, or nil.
func (m *member) readyEntry() *table.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != instance.Ready {
		return nil
	}
	return m.entry
}

func (m *member) status() InstanceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := InstanceStatus{Index: m.index, State: m.state, Restarts: m.restarts, Phases: maps.Clone(m.phases)}
	if m.entry != nil {
		st.Address = m.entry.Addr
	}
	return st
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
