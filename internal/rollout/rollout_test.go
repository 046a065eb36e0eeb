package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/instance"
)

func serving(idx int, gen string) Instance {
	return Instance{Index: idx, Generation: gen, State: instance.Ready, Serving: true}
}

func starting(idx int, gen string) Instance {
	return Instance{Index: idx, Generation: gen, State: instance.Starting}
}

func failed(idx int, gen string) Instance {
	return Instance{Index: idx, Generation: gen, State: instance.Stopped, Failed: true}
}

func start(i int) Step { return Step{Action: Start, Index: i} }
func wait(i int) Step  { return Step{Action: WaitReady, Index: i} }
func stop(i int) Step  { return Step{Action: Stop, Index: i} }
func route(s ...int) Step {
	if s == nil {
		s = []int{}
	}
	return Step{Action: Route, Serving: s}
}

var (
	drain = Step{Action: Drain}
	done  = Step{Action: Done}
	fail  = Step{Action: Fail}
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		target  Target
		running []Instance
		next    int
		want    []Step
	}{
		{
			name:   "create: start every instance, wait for all, then route",
			target: Target{Generation: "a", Count: 2},
			want:   []Step{start(0), start(1), wait(0), wait(1), route(0, 1), done},
		},
		{
			name:   "create continues numbering after folders left by an earlier server",
			target: Target{Generation: "a", Count: 1},
			next:   7,
			want:   []Step{start(7), wait(7), route(7), done},
		},
		{
			name:    "update with a new model: new set first, old set drains and stops after the switch",
			target:  Target{Generation: "b", Count: 2},
			running: []Instance{serving(0, "a"), serving(1, "a")},
			next:    2,
			want:    []Step{start(2), start(3), wait(2), wait(3), route(2, 3), drain, stop(0), stop(1), done},
		},
		{
			name:    "update in progress: instances already starting are waited for, not started again",
			target:  Target{Generation: "b", Count: 2},
			running: []Instance{serving(0, "a"), starting(2, "b"), starting(3, "b")},
			next:    4,
			want:    []Step{wait(2), wait(3), route(2, 3), drain, stop(0), done},
		},
		{
			name:    "scale up in place: only the missing instances start",
			target:  Target{Generation: "a", Count: 3},
			running: []Instance{serving(0, "a")},
			next:    1,
			want:    []Step{start(1), start(2), wait(1), wait(2), route(0, 1, 2), done},
		},
		{
			name:    "scale down in place: the highest instances leave routing, drain and stop",
			target:  Target{Generation: "a", Count: 1},
			running: []Instance{serving(0, "a"), serving(1, "a"), serving(2, "a")},
			next:    3,
			want:    []Step{route(0), drain, stop(1), stop(2), done},
		},
		{
			name:    "a failed new instance: new ones stop, the old ones keep serving",
			target:  Target{Generation: "b", Count: 2},
			running: []Instance{serving(0, "a"), serving(1, "a"), failed(2, "b"), starting(3, "b")},
			next:    4,
			want:    []Step{stop(2), stop(3), fail},
		},
		{
			name:    "a failed first instance of a create: stop it and fail, nothing serves",
			target:  Target{Generation: "a", Count: 1},
			running: []Instance{failed(0, "a")},
			next:    1,
			want:    []Step{stop(0), fail},
		},
		{
			name:    "delete: out of routing, drain, stop all",
			target:  Target{Count: 0},
			running: []Instance{serving(0, "a"), starting(1, "b")},
			want:    []Step{route(), drain, stop(0), stop(1), done},
		},
		{
			name:   "delete of a deployment with nothing running",
			target: Target{Count: 0},
			want:   []Step{done},
		},
		{
			name:   "scale down keeps the ready instances, not the lowest indexes",
			target: Target{Generation: "a", Count: 1},
			running: []Instance{{Index: 0, Generation: "a", State: instance.Restarting, Serving: true},
				serving(1, "a"), serving(2, "a")},
			next: 3,
			want: []Step{route(1), drain, stop(0), stop(2), done},
		},
		{
			name:    "steady state: nothing to do",
			target:  Target{Generation: "a", Count: 2},
			running: []Instance{serving(0, "a"), serving(1, "a")},
			next:    2,
			want:    []Step{done},
		},
		{
			name:    "an instance out of routing after failed readiness probes is still part of the set",
			target:  Target{Generation: "a", Count: 2},
			running: []Instance{serving(0, "a"), {Index: 1, Generation: "a", State: instance.NotReady, Serving: true}},
			next:    2,
			want:    []Step{done},
		},
		{
			name:    "a stopped leftover of the target generation is stopped, not waited for",
			target:  Target{Generation: "a", Count: 1},
			running: []Instance{serving(0, "a"), {Index: 1, Generation: "a", State: instance.Stopped}},
			next:    2,
			want:    []Step{stop(1), done},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.target, tt.running, tt.next)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Plan() mismatch (-want +got):\n%s\nplan: %v", diff, got)
			}
		})
	}
}

func TestPlanDoesNotReorderCallerSlice(t *testing.T) {
	running := []Instance{serving(1, "a"), serving(0, "a")}
	Plan(Target{Generation: "b", Count: 1}, running, 2)
	if running[0].Index != 1 {
		t.Fatalf("Plan sorted the caller's slice: %v", running)
	}
}
