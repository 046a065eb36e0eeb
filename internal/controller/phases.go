package controller

import (
	"context"
	"sync"
	"time"

	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/wire"
)

// Phase names of a provision, in the order they happen on this machine.
const (
	PhaseEnvironment  = "environment"
	PhaseArtifactCopy = "artifact copy"
	PhaseImport       = "import"
	PhaseInit         = "init()"
	PhaseReadiness    = "readiness"
)

// phaseLog keeps each deployment's latest provision phases, for `show` and the studio.
type phaseLog struct {
	mu   sync.Mutex
	deps map[fleet.Key][]wire.Phase
}

func (l *phaseLog) set(k fleet.Key, phases []wire.Phase) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deps == nil {
		l.deps = map[fleet.Key][]wire.Phase{}
	}
	l.deps[k] = phases
}

func (l *phaseLog) get(k fleet.Key) []wire.Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deps[k]
}

func (l *phaseLog) forget(k fleet.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.deps, k)
}

// Phases times the deployment's latest provision on this machine: environment, then
// the slowest new instance's artifact copy, import of score.py, init() and the rest of
// its readiness wait (nil before a provision has built its environment).
func (c *Controller) Phases(endpoint, name string) []wire.Phase {
	return c.phases.get(fleet.Key{Endpoint: endpoint, Deployment: name})
}

func phase(name string, start, end time.Time) wire.Phase {
	return wire.Phase{Name: name, Start: start.UTC().Format(time.RFC3339Nano), End: end.UTC().Format(time.RFC3339Nano)}
}

// instancePhases lays the slowest instance's start phases (milliseconds, from the
// fleet) after from, the time its artifact copy began: the fleet measures durations,
// and the phases follow each other.
func (c *Controller) instancePhases(k fleet.Key, from time.Time) []wire.Phase {
	var slowest map[string]float64
	for _, in := range c.fleet.Instances(k) {
		if in.Phases["ready_ms"] > 0 && (slowest == nil || in.Phases["ready_ms"] > slowest["ready_ms"]) {
			slowest = in.Phases
		}
	}
	if slowest == nil {
		return nil
	}
	ms := func(name string) time.Duration { return time.Duration(slowest[name] * float64(time.Millisecond)) }
	copyEnd := from.Add(ms("artifact_copy_ms"))
	importEnd := copyEnd.Add(ms("import_ms"))
	initEnd := importEnd.Add(ms("init_ms"))
	readyEnd := copyEnd.Add(ms("ready_ms"))
	if readyEnd.Before(initEnd) {
		readyEnd = initEnd
	}
	return []wire.Phase{phase(PhaseArtifactCopy, from, copyEnd), phase(PhaseImport, copyEnd, importEnd),
		phase(PhaseInit, importEnd, initEnd), phase(PhaseReadiness, initEnd, readyEnd)}
}

// Deployment operations reported to Config.Operated.
const (
	OpProvision = "provision"
	OpDelete    = "delete"
)

// operated reports a finished operation (Config.Operated), with the phases of a provision.
func (c *Controller) operated(ctx context.Context, op string, k fleet.Key, start time.Time, failure error) {
	if c.cfg.Operated == nil {
		return
	}
	var phases []wire.Phase
	if op == OpProvision {
		phases = c.phases.get(k)
	}
	c.cfg.Operated(ctx, op, k.Endpoint, k.Deployment, start, phases, failure)
}
