package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/rollout"
	"github.com/berthml/berth/internal/runtime"
)

// Probe is a readiness or liveness probe as the deployment YAML sets it.
type Probe struct {
	InitialDelay, Period, Timeout      time.Duration
	FailureThreshold, SuccessThreshold int
}

// Desired is what a rollout brings a deployment to.
type Desired struct {
	Target rollout.Target
	// Prepare lays out instance index and returns how to start it (the
	// storage-initializer step); an error fails the rollout.
	Prepare             func(ctx context.Context, index int) (runtime.InstanceSpec, error)
	Readiness, Liveness Probe
	Routing             Routing
	// Phases are start phases measured before the rollout (environment_ms), shown
	// with each instance's own.
	Phases map[string]float64
	// NoDrain skips the drain wait, for deployments that get no traffic (a delete).
	NoDrain bool
}

// errNotReady ends a rollout whose failure has no error of its own.
var errNotReady = errors.New("the new instances did not become ready")

// maxReplans bounds how often one rollout plans again after a step failed.
const maxReplans = 4

// Apply rolls the deployment out to d and returns when it is done: nil when the target
// serves, the first failure otherwise (the instances that served before keep serving).
// A rollout of the same deployment still in progress is cancelled first; Apply then
// returns context.Canceled if it is itself superseded.
func (f *Fleet) Apply(ctx context.Context, k Key, want Desired) error {
	dep := f.deployment(k, true)
	ctx, finish := dep.begin(ctx)
	defer finish()
	var failure error
	for range maxReplans {
		steps := rollout.Plan(want.Target, dep.observe(), dep.peekNext())
		f.log.Debug("rollout plan", "endpoint", k.Endpoint, "deployment", k.Deployment, "steps", fmt.Sprint(steps))
		replan := false
		for _, s := range steps {
			err := f.apply(ctx, dep, want, s)
			switch {
			case s.Action == rollout.Done:
				return nil
			case s.Action == rollout.Fail:
				return cmpOr(failure, errNotReady)
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				failure = cmpOr(failure, err)
				replan = true
			}
			if replan {
				break
			}
		}
	}
	return cmpOr(failure, errNotReady)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// apply runs one step.
func (f *Fleet) apply(ctx context.Context, dep *deployment, want Desired, s rollout.Step) error {
	switch s.Action {
	case rollout.Start:
		return f.start(ctx, dep, want, s.Index)
	case rollout.WaitReady:
		return dep.waitReady(ctx, s.Index)
	case rollout.Route:
		dep.route(s.Serving, want.Routing)
		f.cfg.Changed(ctx)
	case rollout.Drain:
		if !want.NoDrain {
			// Requests that picked an old instance from the previous snapshot finish first.
			select {
			case <-time.After(f.cfg.Drain):
			case <-ctx.Done():
			}
		}
	case rollout.Stop:
		dep.stop(s.Index)
	}
	return nil
}

// start prepares instance index and starts its keeper.
func (f *Fleet) start(ctx context.Context, dep *deployment, want Desired, index int) error {
	m := newMember(index, want)
	dep.add(m)
	prepStart := time.Now()
	spec, err := want.Prepare(ctx, index)
	m.spec = spec
	m.setPhase("artifact_copy_ms", msSince(prepStart))
	if err != nil {
		m.fail(err)
		close(m.done)
		return err
	}
	keepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.keep(keepCtx, dep.key, m)
	}()
	return nil
}

// Remove cancels the deployment's rollout, stops its instances and forgets it.
func (f *Fleet) Remove(ctx context.Context, k Key) {
	if f.deployment(k, false) == nil {
		return
	}
	f.Apply(ctx, k, Desired{NoDrain: true})
	f.mu.Lock()
	delete(f.deps, k)
	f.mu.Unlock()
}

// Close cancels every rollout, stops every instance and waits for their keepers.
func (f *Fleet) Close() {
	f.mu.Lock()
	deps := make([]*deployment, 0, len(f.deps))
	for _, d := range f.deps {
		deps = append(deps, d)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.cancelRollout()
			for _, m := range d.members() {
				d.stop(m.index)
			}
		}()
	}
	wg.Wait()
	f.wg.Wait()
}

// begin cancels the rollout in progress, waits until it has cleaned up, and registers
// a new one; finish must be called when the new one ends.
func (d *deployment) begin(parent context.Context) (context.Context, func()) {
	d.cancelRollout()
	ctx, cancel := context.WithCancel(parent)
	r := &run{cancel: cancel, done: make(chan struct{})}
	d.mu.Lock()
	d.rollout = r
	d.mu.Unlock()
	return ctx, func() {
		cancel()
		if ctx.Err() != nil {
			// Superseded or shut down: instances it started that do not serve are stopped.
			for _, m := range d.members() {
				if !d.isServing(m.index) {
					d.stop(m.index)
				}
			}
		}
		d.mu.Lock()
		if d.rollout == r {
			d.rollout = nil
		}
		d.mu.Unlock()
		close(r.done)
	}
}

// cancelRollout cancels the rollout in progress, if any, and waits for it to end.
func (d *deployment) cancelRollout() {
	d.mu.Lock()
	r := d.rollout
	d.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// observe is what the planner needs to know of every instance.
func (d *deployment) observe() []rollout.Instance {
	var out []rollout.Instance
	for _, m := range d.members() {
		serving := d.isServing(m.index)
		m.mu.Lock()
		out = append(out, rollout.Instance{Index: m.index, Generation: m.gen, State: m.state, Failed: m.failed, Serving: serving})
		m.mu.Unlock()
	}
	return out
}

func (d *deployment) isServing(index int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.serving, index)
}

func (d *deployment) peekNext() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.next
}

func (d *deployment) add(m *member) {
	d.mu.Lock()
	d.instances[m.index] = m
	d.next = max(d.next, m.index+1)
	d.mu.Unlock()
}

func (d *deployment) route(serving []int, r Routing) {
	d.mu.Lock()
	d.serving = slices.Clone(serving)
	d.routing = r
	d.mu.Unlock()
}

// stop stops instance index, waits for its keeper and forgets it.
func (d *deployment) stop(index int) {
	d.mu.Lock()
	m := d.instances[index]
	delete(d.instances, index)
	d.serving = slices.DeleteFunc(d.serving, func(i int) bool { return i == index })
	d.mu.Unlock()
	if m == nil {
		return
	}
	if m.cancel != nil {
		m.cancel()
	}
	<-m.done
}

// waitReady waits until instance index is ready or failed.
func (d *deployment) waitReady(ctx context.Context, index int) error {
	d.mu.Lock()
	m := d.instances[index]
	d.mu.Unlock()
	if m == nil {
		return fmt.Errorf("instance %d is gone", index)
	}
	select {
	case <-m.first:
		return m.firstErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setState records an instance state.
func (m *member) setState(s instance.State) {
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
}
