package autoscale

import (
	"fmt"
	"time"
)

// Sample is one measurement of a deployment's load.
type Sample struct {
	// Replicas is the current replica count: the one the last decision applied.
	Replicas int
	// Busy is the number of replicas processing a request.
	Busy int
	// Queued is the number of requests waiting for a free replica.
	Queued int
}

// Action names what a Decision does.
type Action string

// The actions of a Decision.
const (
	Hold      Action = "hold"
	ScaleUp   Action = "scale up"
	ScaleDown Action = "scale down"
	Clamp     Action = "clamp"
)

// Decision is the outcome of one Decide call, with every input it was made from.
type Decision struct {
	Time time.Time
	// Current is the sample's replica count; Replicas the desired one.
	Current, Replicas int
	Busy, Queued      int
	// Utilization is (Busy+Queued)/Current in percent; 0 when Current is 0.
	Utilization float64
	// Target, Min and Max are the settings the decision was made with.
	Target, Min, Max int
	// BelowFor is how long utilization has stayed below the target (0 if not below).
	BelowFor time.Duration
	// ScaleDownDelay is how long BelowFor must reach before a replica is removed.
	ScaleDownDelay time.Duration
	Action         Action
	// Reason is the log line: every input above and why the count changed or not.
	Reason string
	// Err is set by Run when applying the decision failed; Decide leaves it nil.
	Err error
}

// Changed reports whether the decision changes the replica count.
func (d Decision) Changed() bool { return d.Replicas != d.Current }

// Decider turns samples into replica counts by azureml-fe's rules. It keeps only
// how long utilization has been below the target; it has no clock and starts no
// goroutine, so tests pass the time in. It is not safe for concurrent use.
type Decider struct {
	s          Settings
	belowSince time.Time // zero while utilization is not below the target
	lastDown   time.Time // the last scale-down step
}

// NewDecider returns a Decider for s with its defaults applied. s should have
// passed Validate.
func NewDecider(s Settings) *Decider {
	return &Decider{s: s.Defaults()}
}

// Settings returns the settings (defaults applied) the Decider decides with.
func (d *Decider) Settings() Settings { return d.s }

// Decide returns the desired replica count for sample at now:
//   - a count below min_instances or above max_instances is clamped at once;
//   - utilization above the target scales up at once to ceil((busy+queued)/target)
//     replicas, at most max_instances;
//   - utilization below the target for ScaleDownDelay removes one replica, then
//     one more per polling interval while it stays below, never below
//     min_instances nor below ceil((busy+queued)/target), the count that keeps
//     utilization at or under the target. Any sample at or above the target
//     restarts the delay.
func (d *Decider) Decide(now time.Time, sample Sample) Decision {
	s := d.s
	cur := sample.Replicas
	demand := max(sample.Busy, 0) + max(sample.Queued, 0)
	dec := Decision{
		Time: now, Current: cur, Replicas: cur, Busy: sample.Busy, Queued: sample.Queued,
		Target: s.TargetUtilizationPercentage, Min: s.MinInstances, Max: s.MaxInstances,
		ScaleDownDelay: s.ScaleDownDelay(), Action: Hold,
	}
	if cur > 0 {
		dec.Utilization = 100 * float64(demand) / float64(cur)
	}
	// Integer arithmetic keeps "exactly at the target" exact.
	load, capacity := 100*demand, s.TargetUtilizationPercentage*cur
	needed := (load + s.TargetUtilizationPercentage - 1) / s.TargetUtilizationPercentage
	var why string
	switch {
	case cur < s.MinInstances:
		d.belowSince = time.Time{}
		dec.Replicas, dec.Action = s.MinInstances, Clamp
		why = fmt.Sprintf("%d replicas is below min_instances: clamp to %d", cur, s.MinInstances)
	case cur > s.MaxInstances:
		d.belowSince = time.Time{}
		dec.Replicas, dec.Action = s.MaxInstances, Clamp
		why = fmt.Sprintf("%d replicas is above max_instances: clamp to %d", cur, s.MaxInstances)
	case load > capacity:
		d.belowSince = time.Time{}
		if want := min(needed, s.MaxInstances); want > cur {
			dec.Replicas, dec.Action = want, ScaleUp
			why = fmt.Sprintf("above target: scale up %d → %d (needed %d, max %d)", cur, want, needed, s.MaxInstances)
		} else {
			why = fmt.Sprintf("above target, but already at max_instances %d (needed %d)", s.MaxInstances, needed)
		}
	case load == capacity:
		d.belowSince = time.Time{}
		why = "at target: hold"
	default:
		why = d.below(now, &dec, needed)
	}
	dec.Reason = fmt.Sprintf("%s: utilization %.1f%% = (busy %d + queued %d) / %d replicas, target %d%%, min %d, max %d, below target for %v of %v",
		why, dec.Utilization, sample.Busy, sample.Queued, cur, dec.Target, dec.Min, dec.Max, dec.BelowFor, dec.ScaleDownDelay)
	return dec
}

// below decides while utilization is below the target, and returns why.
func (d *Decider) below(now time.Time, dec *Decision, needed int) string {
	s, cur := d.s, dec.Current
	if d.belowSince.IsZero() {
		d.belowSince = now
	}
	dec.BelowFor = now.Sub(d.belowSince)
	floor := max(s.MinInstances, needed)
	switch {
	case cur <= s.MinInstances:
		return "below target, already at min_instances: hold"
	case floor >= cur:
		return fmt.Sprintf("below target, but %d replicas would put utilization above target: hold", cur-1)
	case dec.BelowFor < dec.ScaleDownDelay:
		return "below target, waiting for the scale-down delay: hold"
	case !d.lastDown.IsZero() && now.Sub(d.lastDown) < s.PollingInterval/2:
		// Half an interval of slack: ticks may arrive a little early.
		return "below target, one step per polling interval: hold"
	}
	d.lastDown = now
	dec.Replicas, dec.Action = cur-1, ScaleDown
	return fmt.Sprintf("below target for the scale-down delay: scale down %d → %d (floor %d)", cur, cur-1, floor)
}
