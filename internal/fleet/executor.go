package fleet

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	// OnRouted, if set, is called once the target's instances serve (before the old
	// ones drain and stop), e.g. to report the rollout as succeeded.
	OnRouted func(ctx context.Context)
	// NoDrain skips the drain wait, for deployments that get no traffic (a delete).
	NoDrain bool
}

// errNotReady ends a rollout whose failure has no error of its own.
var errNotReady = errors.New("the new instances did not become ready")

// ErrClosed is returned by Apply once the fleet is closed.
var ErrClosed = errors.New("the fleet is closed")

// maxReplans bounds how often one rollout plans again after a step failed.
const maxReplans = 4

// Apply rolls the deployment out to want and returns when it is done: nil when the
// target serves, the first failure otherwise (the instances that served before keep
// serving). A rollout of the same deployment still in progress is cancelled, and has
// cleaned up, before this one plans; Apply returns context.Canceled if it is itself
// superseded, and does nothing when ctx is already done.
func (f *Fleet) Apply(ctx context.Context, k Key, want Desired) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dep := f.deployment(k, true)
	if dep == nil {
		return ErrClosed
	}
	ctx, finish := dep.begin(ctx)
	defer finish()
	var failure error
	for range maxReplans {
		steps := rollout.Plan(want.Target, dep.observe(), dep.peekNext())
		f.log.Debug("rollout plan", "endpoint", k.Endpoint, "deployment", k.Deployment, "steps", fmt.Sprint(steps))
		for len(steps) > 0 {
			var batch []rollout.Step
			batch, steps = nextBatch(steps)
			switch batch[0].Action {
			case rollout.Done:
				return nil
			case rollout.Fail:
				return cmpOr(failure, errNotReady)
			}
			err := f.apply(ctx, dep, want, batch)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				failure = cmpOr(failure, err)
				break // plan again: the failed instance shows in what is observed
			}
		}
	}
	return cmpOr(failure, errNotReady)
}

// nextBatch splits off the next steps to apply together: consecutive WaitReady steps
// (all instances start at once, and the first to fail ends the wait) and consecutive
// Stop steps (stopped in parallel); any other step alone.
func nextBatch(steps []rollout.Step) (batch, rest []rollout.Step) {
	n := 1
	if a := steps[0].Action; a == rollout.WaitReady || a == rollout.Stop {
		for n < len(steps) && steps[n].Action == a {
			n++
		}
	}
	return steps[:n], steps[n:]
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// apply runs one batch of steps of the same action.
func (f *Fleet) apply(ctx context.Context, dep *deployment, want Desired, batch []rollout.Step) error {
	s := batch[0]
	switch s.Action {
	case rollout.Start:
		return f.start(ctx, dep, want, s.Index)
	case rollout.WaitReady:
		return dep.waitReady(ctx, indexes(batch))
	case rollout.Route:
		dep.route(s.Serving, want.Routing)
		f.cfg.Changed(ctx)
		if want.OnRouted != nil && len(s.Serving) > 0 {
			want.OnRouted(ctx)
		}
	case rollout.Drain:
		if !want.NoDrain {
			// Requests that picked an old instance from the previous snapshot finish
			// first; only closing the fleet cuts the wait short.
			select {
			case <-time.After(f.cfg.Drain):
			case <-f.closing:
			}
		}
	case rollout.Stop:
		dep.stopAll(indexes(batch))
	}
	return nil
}

func indexes(batch []rollout.Step) []int {
	out := make([]int, len(batch))
	for i, s := range batch {
		out[i] = s.Index
	}
	return out
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
		dep.mu.Lock()
		dep.lastFailed = index
		dep.mu.Unlock()
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

// Close cancels every rollout, stops every instance and waits for their keepers; a
// later Apply returns ErrClosed.
func (f *Fleet) Close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.closing)
	}
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
			var all []int
			for _, m := range d.members() {
				all = append(all, m.index)
			}
			d.stopAll(all)
		}()
	}
	wg.Wait()
	f.wg.Wait()
}

// begin cancels the rollout in progress, waits until it has cleaned up, and registers
// a new one, atomically with respect to other rollouts of the deployment; finish must
// be called when the new one ends.
func (d *deployment) begin(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	r := &run{cancel: cancel, done: make(chan struct{})}
	d.mu.Lock()
	for d.rollout != nil {
		old := d.rollout
		d.mu.Unlock()
		old.cancel()
		<-old.done
		d.mu.Lock()
	}
	d.rollout = r
	d.mu.Unlock()
	return ctx, func() {
		superseded := ctx.Err() != nil // before our own cancel below
		cancel()
		if superseded {
			// Instances this rollout started that do not serve are stopped.
			var idle []int
			for _, m := range d.members() {
				if !d.isServing(m.index) {
					idle = append(idle, m.index)
				}
			}
			d.stopAll(idle)
		}
		d.mu.Lock()
		d.rollout = nil
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
	if len(serving) > 0 {
		d.lastFailed = -1
	}
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
	d.stopped(index)
}

// waitReady waits until every listed instance is ready, or returns the first failure
// as soon as it happens.
func (d *deployment) waitReady(ctx context.Context, idxs []int) error {
	var pending []*member
	d.mu.Lock()
	for _, i := range idxs {
		m := d.instances[i]
		if m == nil {
			d.mu.Unlock()
			return fmt.Errorf("instance %d is gone", i)
		}
		pending = append(pending, m)
	}
	d.mu.Unlock()
	for len(pending) > 0 {
		cases := make([]reflect.SelectCase, 0, len(pending)+1)
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
		for _, m := range pending {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(m.first)})
		}
		chosen, _, _ := reflect.Select(cases)
		if chosen == 0 {
			return ctx.Err()
		}
		m := pending[chosen-1]
		if m.firstErr != nil {
			d.mu.Lock()
			d.lastFailed = m.index
			d.mu.Unlock()
			return m.firstErr
		}
		pending = slices.Delete(pending, chosen-1, chosen)
	}
	return nil
}

// stopAll stops the listed instances in parallel and waits for them.
func (d *deployment) stopAll(idxs []int) {
	var wg sync.WaitGroup
	for _, i := range idxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.stop(i)
		}()
	}
	wg.Wait()
}

// setState records an instance state.
func (m *member) setState(s instance.State) {
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
}
