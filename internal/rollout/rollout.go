// Package rollout owns the rollout plan of a deployment: a pure function from the
// desired state, the instances running now and their probe results to the steps that
// move one to the other. It starts nothing itself; an executor applies the steps.
package rollout

import (
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/instance"
)

// Target is the desired state of one deployment.
type Target struct {
	// Generation identifies what an instance runs: the stored spec (without
	// instance_count) and its artifacts. Instances of another generation are replaced.
	Generation string
	// Count is how many instances should serve; 0 removes them all (a delete).
	Count int
}

// Instance is what the planner knows of one instance.
type Instance struct {
	Index      int
	Generation string
	// State is the keeper's view (Starting, Ready, NotReady, Restarting, Stopped).
	State instance.State
	// Failed is set when the instance did not become ready: it exited while starting,
	// its readiness budget ran out, or it could not be prepared.
	Failed bool
	// Serving is set when the routing table sends it requests.
	Serving bool
}

// Action is what one step does.
type Action int

// The actions, in the order a rollout uses them.
const (
	// Start prepares and starts a new instance with Step.Index.
	Start Action = iota + 1
	// WaitReady waits until instance Step.Index is ready, or reports it failed.
	WaitReady
	// Route makes Step.Serving the instances that receive requests.
	Route
	// Drain lets requests already sent to instances leaving the routing table finish.
	Drain
	// Stop stops instance Step.Index and forgets it.
	Stop
	// Fail ends the rollout as failed; the instances still serving keep serving.
	Fail
	// Done ends the rollout as succeeded.
	Done
)

var actionNames = [...]string{Start: "start", WaitReady: "wait-ready", Route: "route", Drain: "drain", Stop: "stop", Fail: "fail", Done: "done"}

func (a Action) String() string {
	if a > 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Step is one step of a plan.
type Step struct {
	Action  Action
	Index   int   // Start, WaitReady, Stop
	Serving []int // Route: every instance that serves after the switch, in index order
}

func (s Step) String() string {
	switch s.Action {
	case Start, WaitReady, Stop:
		return fmt.Sprintf("%s %d", s.Action, s.Index)
	case Route:
		return fmt.Sprintf("%s %v", s.Action, s.Serving)
	}
	return s.Action.String()
}

// Plan returns the steps that take the running instances to the target. next is the
// index the first new instance gets. The plan always ends with Done or Fail:
//
//   - nothing serves the target yet: start Count new instances, wait until all are
//     ready, switch routing to them, drain and stop whatever served before;
//   - the serving instances run the target's generation: start or stop only the
//     difference (scale up and down in place);
//   - a new instance failed: stop every instance not serving and fail, so the
//     instances that served before go on serving;
//   - Count 0: take everything out of routing, drain, stop all.
func Plan(t Target, running []Instance, next int) []Step {
	running = slices.Clone(running)
	slices.SortFunc(running, byIndex)
	if t.Count <= 0 {
		return remove(running)
	}
	for _, in := range running {
		if in.Failed && !in.Serving {
			return abandon(running)
		}
	}
	var keep, fresh, old []Instance // serving target, starting target, the rest
	for _, in := range byHealth(running) {
		switch {
		case in.Generation == t.Generation && in.Serving && len(keep) < t.Count:
			keep = append(keep, in)
		case in.Generation == t.Generation && !in.Serving && in.State != instance.Stopped:
			fresh = append(fresh, in)
		default:
			old = append(old, in)
		}
	}
	slices.SortFunc(keep, byIndex)
	slices.SortFunc(fresh, byIndex)
	slices.SortFunc(old, byIndex)
	if len(keep) == 0 {
		// A replacement: the whole target set is new; the serving set stays until it is ready.
		return replace(t.Count, fresh, old, next)
	}
	if len(keep)+len(fresh) > t.Count {
		// Scaling down: surplus starting instances of the target are not needed.
		old = append(old, fresh[t.Count-len(keep):]...)
		fresh = fresh[:t.Count-len(keep)]
	}
	return grow(t.Count, keep, fresh, old, next)
}

// remove takes every instance out of routing and stops it.
func remove(running []Instance) []Step {
	var steps []Step
	if anyServing(running) {
		steps = append(steps, Step{Action: Route, Serving: []int{}}, Step{Action: Drain})
	}
	for _, in := range running {
		steps = append(steps, Step{Action: Stop, Index: in.Index})
	}
	return append(steps, Step{Action: Done})
}

// abandon stops every instance that is not serving and fails the rollout.
func abandon(running []Instance) []Step {
	var steps []Step
	for _, in := range running {
		if !in.Serving {
			steps = append(steps, Step{Action: Stop, Index: in.Index})
		}
	}
	return append(steps, Step{Action: Fail})
}

// replace brings up count instances of the target (counting those already starting),
// then switches routing to them and retires the old ones.
func replace(count int, fresh, old []Instance, next int) []Step {
	if len(fresh) > count {
		old = append(old, fresh[count:]...)
		fresh = fresh[:count]
	}
	return grow(count, nil, fresh, old, next)
}

// grow starts what is missing next to keep and fresh, waits for every starting
// instance, routes to keep+fresh, then drains and stops old.
func grow(count int, keep, fresh, old []Instance, next int) []Step {
	var steps []Step
	var waits []int
	for _, in := range fresh {
		waits = append(waits, in.Index)
	}
	for i := len(keep) + len(fresh); i < count; i++ {
		steps = append(steps, Step{Action: Start, Index: next})
		waits = append(waits, next)
		next++
	}
	for _, idx := range waits {
		steps = append(steps, Step{Action: WaitReady, Index: idx})
	}
	serving := make([]int, 0, count)
	for _, in := range keep {
		serving = append(serving, in.Index)
	}
	serving = append(serving, waits...)
	slices.Sort(serving)
	if len(waits) > 0 || anyServing(old) || !sameServing(keep, serving) {
		steps = append(steps, Step{Action: Route, Serving: serving})
	}
	if anyServing(old) {
		steps = append(steps, Step{Action: Drain})
	}
	for _, in := range old {
		steps = append(steps, Step{Action: Stop, Index: in.Index})
	}
	return append(steps, Step{Action: Done})
}

func anyServing(ins []Instance) bool {
	return slices.ContainsFunc(ins, func(in Instance) bool { return in.Serving })
}

// sameServing reports whether the instances serving now are exactly serving.
func sameServing(now []Instance, serving []int) bool {
	if len(now) != len(serving) {
		return false
	}
	for i, in := range now {
		if in.Index != serving[i] {
			return false
		}
	}
	return true
}

func byIndex(a, b Instance) int { return a.Index - b.Index }

// health ranks states for keeping: ready instances first, so scaling down never keeps
// an instance that cannot serve while stopping one that can.
func health(s instance.State) int {
	switch s {
	case instance.Ready:
		return 0
	case instance.NotReady:
		return 1
	case instance.Starting, instance.Restarting:
		return 2
	}
	return 3
}

// byHealth returns the instances healthiest first, in index order within a state.
func byHealth(ins []Instance) []Instance {
	out := slices.Clone(ins)
	slices.SortStableFunc(out, func(a, b Instance) int { return health(a.State) - health(b.State) })
	return out
}
