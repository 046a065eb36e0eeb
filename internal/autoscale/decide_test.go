package autoscale

import (
	"strings"
	"testing"
	"time"
)

// step is one sample fed to the Decider at start+at; the sample's replica count
// is the one the previous step decided (or the case's initial count).
type step struct {
	at           time.Duration
	busy, queued int
	want         int
	action       Action
}

// idle returns steps with no load every second from `from` to `to` seconds
// (inclusive), all holding at n replicas.
func idle(from, to, n int) []step {
	var steps []step
	for s := from; s <= to; s++ {
		steps = append(steps, step{at: time.Duration(s) * time.Second, want: n, action: Hold})
	}
	return steps
}

func join(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// green is the EX green deployment's scale_settings with a 1 s polling interval:
// 1–3 instances, 70 %, scale-down delay 20 s.
var green = Settings{MinInstances: 1, MaxInstances: 3, TargetUtilizationPercentage: 70, PollingInterval: time.Second}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		initial  int
		steps    []step
	}{
		{"eager scale-up to max under high utilization", green, 1, []step{
			{at: 0, busy: 1, queued: 5, want: 3, action: ScaleUp},
			{at: time.Second, busy: 3, queued: 9, want: 3, action: Hold}, // above target, at max
		}},
		{"scale-up to ceil(demand/target)", Settings{MaxInstances: 10}, 1, []step{
			// (1+1)/1 = 200% > 70%: ceil(2/0.7) = 3 at once, not one at a time.
			{at: 0, busy: 1, queued: 1, want: 3, action: ScaleUp},
			// (3+2)/3 = 167%: ceil(5/0.7) = 8.
			{at: time.Second, busy: 3, queued: 2, want: 8, action: ScaleUp},
		}},
		{"no scale-down before the delay", green, 3, idle(0, 19, 3)},
		{"scale-down after the delay, one replica per polling interval, to min", green, 3, join(
			idle(0, 19, 3),
			[]step{
				{at: 20 * time.Second, want: 2, action: ScaleDown},
				{at: 21 * time.Second, want: 1, action: ScaleDown},
				{at: 22 * time.Second, want: 1, action: Hold}, // at min
				{at: 60 * time.Second, want: 1, action: Hold},
			})},
		{"a spike in the middle of the delay restarts it", green, 3, join(
			idle(0, 10, 3),
			[]step{{at: 11 * time.Second, busy: 3, want: 3, action: Hold}}, // 100% > 70%, already at max
			idle(12, 31, 3), // below again from 12 s: 19 s at 31 s
			[]step{{at: 32 * time.Second, want: 2, action: ScaleDown}},
		)},
		{"exactly at target restarts the delay", Settings{MinInstances: 1, MaxInstances: 10, TargetUtilizationPercentage: 70, PollingInterval: time.Second}, 10, join(
			idle(0, 10, 10),
			[]step{{at: 11 * time.Second, busy: 7, want: 10, action: Hold}}, // 7/10 = 70%
			idle(12, 31, 10),
			[]step{{at: 32 * time.Second, want: 9, action: ScaleDown}},
		)},
		{"scale-down stops where utilization would exceed the target", Settings{MinInstances: 1, MaxInstances: 4, TargetUtilizationPercentage: 70, PollingInterval: time.Second}, 4, []step{
			{at: 0, busy: 2, want: 4, action: Hold}, // 50%
			{at: 20 * time.Second, busy: 2, want: 3, action: ScaleDown},
			// 2/3 = 67% < 70%, but 2 replicas would be 100%: hold.
			{at: 21 * time.Second, busy: 2, want: 3, action: Hold},
			{at: 90 * time.Second, busy: 2, want: 3, action: Hold},
		}},
		{"one step per polling interval even when asked more often", green, 3, []step{
			{at: 0, want: 3, action: Hold},
			{at: 20 * time.Second, want: 2, action: ScaleDown},
			{at: 20*time.Second + 100*time.Millisecond, want: 2, action: Hold},
			{at: 21 * time.Second, want: 1, action: ScaleDown},
		}},
		{"clamp up to min at once", Settings{MinInstances: 2, MaxInstances: 5}, 0, []step{
			{at: 0, want: 2, action: Clamp},
			{at: time.Second, want: 2, action: Hold},
		}},
		{"clamp down to max at once, even under load", green, 7, []step{
			{at: 0, busy: 7, queued: 4, want: 3, action: Clamp},
			{at: time.Second, busy: 3, queued: 4, want: 3, action: Hold},
		}},
		{"defaults: one replica, never scaled", Settings{}, 1, []step{
			{at: 0, busy: 1, queued: 50, want: 1, action: Hold},
			{at: time.Minute, want: 1, action: Hold},
		}},
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecider(tt.settings)
			cur := tt.initial
			for _, st := range tt.steps {
				dec := d.Decide(start.Add(st.at), Sample{Replicas: cur, Busy: st.busy, Queued: st.queued})
				if dec.Replicas != st.want || dec.Action != st.action {
					t.Fatalf("at %v with %d replicas, busy %d, queued %d: got %d (%s), want %d (%s)\n%s",
						st.at, cur, st.busy, st.queued, dec.Replicas, dec.Action, st.want, st.action, dec.Reason)
				}
				cur = dec.Replicas
			}
		})
	}
}

func TestDecisionReasonHoldsInputs(t *testing.T) {
	d := NewDecider(green)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec := d.Decide(start, Sample{Replicas: 1, Busy: 1, Queued: 5})
	want := "above target: scale up 1 → 3 (needed 9, max 3): utilization 600.0% = (busy 1 + queued 5) / 1 replicas, target 70%, min 1, max 3, below target for 0s of 20s"
	if dec.Reason != want {
		t.Errorf("Reason =\n%s\nwant\n%s", dec.Reason, want)
	}
	d.Decide(start.Add(time.Second), Sample{Replicas: 3})
	dec = d.Decide(start.Add(6*time.Second), Sample{Replicas: 3})
	for _, part := range []string{"waiting for the scale-down delay", "utilization 0.0%", "/ 3 replicas", "below target for 5s of 20s"} {
		if !strings.Contains(dec.Reason, part) {
			t.Errorf("Reason %q does not contain %q", dec.Reason, part)
		}
	}
	if dec.BelowFor != 5*time.Second || dec.ScaleDownDelay != 20*time.Second || dec.Changed() {
		t.Errorf("BelowFor %v, ScaleDownDelay %v, Changed %v; want 5s, 20s, false", dec.BelowFor, dec.ScaleDownDelay, dec.Changed())
	}
}
