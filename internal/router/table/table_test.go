package table

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// deployment returns a deployment whose instances a0, a1, ... have the given loads.
func deployment(loads ...int64) *Deployment {
	d := &Deployment{Name: "blue"}
	for i, l := range loads {
		in := NewInstance("a"+string(rune('0'+i)), 1)
		in.InFlight.Store(l)
		d.Instances = append(d.Instances, in)
	}
	return d
}

// picks returns the addresses of n successive Pick calls ("" for nil).
func picks(d *Deployment, n int) []string {
	out := make([]string, n)
	for i := range out {
		if in := d.Pick(); in != nil {
			out[i] = in.Addr
		}
	}
	return out
}

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		loads []int64
		want  []string
	}{
		{"no instance", nil, []string{"", ""}},
		{"one instance, even if busy", []int64{7}, []string{"a0", "a0", "a0"}},
		{"least busy wins from every start", []int64{3, 0, 5}, []string{"a1", "a1", "a1", "a1"}},
		{"least busy is the last", []int64{2, 2, 1}, []string{"a2", "a2", "a2"}},
		// The scan starts one further each call (first start is 1) and keeps the
		// first of equals, so ties rotate.
		{"all tied rotate round-robin", []int64{0, 0, 0}, []string{"a1", "a2", "a0", "a1", "a2", "a0"}},
		{"two tied, third busier", []int64{1, 4, 1}, []string{"a2", "a2", "a0", "a2", "a2", "a0"}},
		{"two instances tied", []int64{0, 0}, []string{"a1", "a0", "a1", "a0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := picks(deployment(tc.loads...), len(tc.want))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("picks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickFollowsLoadChanges(t *testing.T) {
	d := deployment(0, 0)
	first := d.Pick()
	first.InFlight.Add(1)
	second := d.Pick()
	if second == first {
		t.Fatalf("picked the busy instance %s again while %s was idle", first.Addr, d.Instances[1].Addr)
	}
	second.InFlight.Add(2)
	if got := d.Pick(); got != first {
		t.Fatalf("picked %s (load %d), want %s (load 1)", got.Addr, got.InFlight.Load(), first.Addr)
	}
}

// TestPickConcurrent runs Pick from many goroutines; with -race it checks that the
// round-robin counter is safe, and every pick is one of the instances.
func TestPickConcurrent(t *testing.T) {
	d := deployment(0, 0, 0)
	var wg sync.WaitGroup
	counts := make([]map[string]int, 8)
	for g := range counts {
		counts[g] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				counts[g][d.Pick().Addr]++
			}
		}()
	}
	wg.Wait()
	total := map[string]int{}
	for _, c := range counts {
		for a, n := range c {
			total[a] += n
		}
	}
	// 2400 picks of three tied instances spread exactly evenly: the counter gives each
	// call its own start.
	if diff := cmp.Diff(map[string]int{"a0": 800, "a1": 800, "a2": 800}, total); diff != "" {
		t.Fatalf("pick counts (-want +got):\n%s", diff)
	}
}

func TestChoose(t *testing.T) {
	order := []string{"blue", "green"}
	for _, tc := range []struct {
		name    string
		traffic map[string]int
		order   []string
		r       int
		want    string
	}{
		{"first of range", map[string]int{"blue": 90, "green": 10}, order, 0, "blue"},
		{"last of first share", map[string]int{"blue": 90, "green": 10}, order, 89, "blue"},
		{"first of second share", map[string]int{"blue": 90, "green": 10}, order, 90, "green"},
		{"last of range", map[string]int{"blue": 90, "green": 10}, order, 99, "green"},
		{"order decides who gets low r", map[string]int{"blue": 90, "green": 10}, []string{"green", "blue"}, 0, "green"},
		{"order decides, boundary", map[string]int{"blue": 90, "green": 10}, []string{"green", "blue"}, 10, "blue"},
		{"zero weight first is skipped", map[string]int{"blue": 0, "green": 100}, order, 0, "green"},
		{"zero weight last is never reached", map[string]int{"blue": 100, "green": 0}, order, 99, "blue"},
		{"all zero", map[string]int{"blue": 0, "green": 0}, order, 0, ""},
		{"no traffic", nil, order, 50, ""},
		{"empty order", map[string]int{"blue": 100}, nil, 0, ""},
		{"name not in traffic counts as zero", map[string]int{"green": 100}, []string{"blue", "green"}, 0, "green"},
		{"r past the sum", map[string]int{"blue": 100}, order, 100, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Endpoint{Name: "ep", Traffic: tc.traffic}
			if got := e.Choose(tc.r, tc.order); got != tc.want {
				t.Fatalf("Choose(%d, %v) with %v = %q, want %q", tc.r, tc.order, tc.traffic, got, tc.want)
			}
		})
	}
}

// TestChooseShares walks every r in [0, 100) and checks that each deployment is chosen
// for exactly its percent of them, and a 0 percent one never.
func TestChooseShares(t *testing.T) {
	for _, traffic := range []map[string]int{
		{"blue": 90, "green": 10},
		{"blue": 0, "green": 100},
		{"a": 33, "b": 0, "c": 67},
		{"a": 25, "b": 25, "c": 25, "d": 25},
		{"a": 1, "b": 98, "c": 1},
	} {
		order := []string{"a", "b", "blue", "c", "d", "green"}
		e := &Endpoint{Traffic: traffic}
		got := map[string]int{}
		for r := range 100 {
			got[e.Choose(r, order)]++
		}
		want := map[string]int{}
		for name, pct := range traffic {
			if pct > 0 {
				want[name] = pct
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("shares of %v (-want +got):\n%s", traffic, diff)
		}
	}
}
