//go:build linux

package soak

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const sample = `{"data": [[1, 2, 3, 4]]}`

// window is a span during which the server was down (killed, not yet listening again).
type window struct{ from, to time.Time }

// faultPlan is how many faults of each kind a run injects, in a seeded random order.
type faultPlan struct {
	workerKills, serverKills, midChangeKills, updates, deploys int
	gapMin, gapMax                                             time.Duration // pause before each fault
}

func (p faultPlan) order(rng *rand.Rand) []string {
	var kinds []string
	for kind, n := range map[string]int{"kill-worker": p.workerKills, "kill-server": p.serverKills, "kill-server-mid-change": p.midChangeKills, "update": p.updates, "deploy": p.deploys} {
		for i := 0; i < n; i++ {
			kinds = append(kinds, kind)
		}
	}
	// Map order is random; sort first so that the seed alone fixes the order.
	slices.Sort(kinds)
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	return kinds
}

func soakSeed(t *testing.T) uint64 {
	if v := os.Getenv("BERTH_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BERTH_SOAK_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

type deploymentState struct {
	ProvisioningState string            `json:"provisioning_state"`
	InstanceCount     int               `json:"instance_count"`
	Environment       map[string]string `json:"environment_variables"`
	Instances         []struct {
		Index    int
		State    string
		Restarts int
	}
}

func TestSoakFaults(t *testing.T) {
	seed := soakSeed(t)
	t.Logf("seed %d (BERTH_SOAK_SEED=%d repeats this order of faults)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	plan := pick(faultPlan{workerKills: 2, serverKills: 1, midChangeKills: 1, updates: 1, deploys: 1, gapMin: time.Second, gapMax: 3 * time.Second},
		faultPlan{workerKills: 12, serverKills: 4, midChangeKills: 4, updates: 5, deploys: 4, gapMin: 3 * time.Second, gapMax: 15 * time.Second})

	s := startServer(t)
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "--all-traffic",
		"--set", "instance_count=2", "--set", "environment_variables.WORKER_COUNT=2",
		"--set", "request_settings.max_concurrent_requests_per_instance=2")
	key1, key2 := s.keys("quickstart")
	trafficBefore := traffic(s)

	const clients = 4
	l := newLoad(s.URL()+"/endpoints/quickstart/score", key1, sample, clients, 15*time.Second)
	stop, streamDone := make(chan struct{}), make(chan struct{})
	go func() { l.run(clients, stop, 8*time.Millisecond, 20*time.Millisecond); close(streamDone) }()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-streamDone
	})

	var downs []window
	marks := []time.Time{time.Now()} // when each fault began
	orphans, deployed, generation := 0, []string{"blue"}, ""
	faults := plan.order(rng)
	for i, kind := range faults {
		gap := plan.gapMin + time.Duration(rng.Int64N(int64(plan.gapMax-plan.gapMin)))
		time.Sleep(gap)
		marks = append(marks, time.Now())
		t.Logf("fault %d/%d at %s, after %s: %s", i+1, len(faults), marks[i+1].Format("15:04:05.000"), gap.Round(time.Millisecond), kind)
		switch kind {
		case "kill-worker":
			var pids []int
			eventually(t, 20*time.Second, "a Python worker to kill", func() bool { pids = s.workerPIDs(); return len(pids) > 0 })
			syscall.Kill(pids[rng.IntN(len(pids))], syscall.SIGKILL)
		case "kill-server", "kill-server-mid-change":
			if kind == "kill-server-mid-change" {
				// An update or a create in flight when the server dies: the restarted
				// server provisions it again, to Succeeded.
				if rng.IntN(2) == 0 {
					generation = strconv.Itoa(i)
					s.ok("online-deployment", "update", "-e", "quickstart", "-n", "blue", "--no-wait", "--set", "environment_variables.SOAK_GENERATION="+generation)
				} else {
					name := fmt.Sprintf("green%d", i)
					s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-n", name, "--set", "instance_count=1", "--no-wait")
					deployed = append(deployed, name)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
			}
			w, left := killAndRestart(t, s, time.Duration(rng.Int64N(int64(time.Second))))
			downs, orphans = append(downs, w), orphans+left
			eventually(t, 30*time.Second, "the deployments to recover after the restart", func() bool {
				return allSucceeded(t, s, deployed) && l.do().status == 200
			})
		case "update":
			generation = strconv.Itoa(i)
			s.ok("online-deployment", "update", "-e", "quickstart", "-n", "blue", "--set", "environment_variables.SOAK_GENERATION="+generation)
		case "deploy":
			name := fmt.Sprintf("green%d", i)
			s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-n", name, "--set", "instance_count=1")
			deployed = append(deployed, name)
		}
	}
	time.Sleep(pick(2*time.Second, 10*time.Second))
	close(stop)
	<-streamDone

	outcomes := l.taken()
	undocumented := checkOutcomes(t, outcomes, downs)
	logSegments(t, outcomes, marks, faults)
	if n := counts(outcomes)[200]; n < len(outcomes)/2 {
		t.Errorf("only %d of %d requests succeeded", n, len(outcomes))
	}

	// State survives the faults: keys, traffic, every deployment Succeeded with all
	// its instances Ready.
	if k1, k2 := s.keys("quickstart"); k1 != key1 || k2 != key2 {
		t.Errorf("endpoint keys changed across the faults")
	}
	if after := traffic(s); fmt.Sprint(after) != fmt.Sprint(trafficBefore) {
		t.Errorf("traffic changed across the faults: %v, then %v", trafficBefore, after)
	}
	if !allSucceeded(t, s, deployed) {
		t.Errorf("not every deployment is Succeeded with all instances Ready after the faults")
	}
	var blue deploymentState
	s.okJSON(&blue, "online-deployment", "show", "-e", "quickstart", "-n", "blue")
	if got := blue.Environment["SOAK_GENERATION"]; got != generation {
		t.Errorf("blue's SOAK_GENERATION is %q, want %q from the last update", got, generation)
	}

	left, leaked := finish(t, s)
	report(t, row{faults: len(faults), requests: len(outcomes), undocumented: undocumented, orphans: orphans + left, leaked: leaked})
}

// killAndRestart kills berth serve with SIGKILL, waits down, starts it again on the same
// data dir and port, and counts the killed server's workers still alive 5 s later.
func killAndRestart(t *testing.T, s *server, down time.Duration) (window, int) {
	t.Helper()
	workers := s.workerPIDs()
	w := window{from: time.Now()}
	s.kill9()
	time.Sleep(down)
	s.start()
	w.to = time.Now()
	orphans := 0
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range workers {
		for cmdline(p) != nil && !zombie(p) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if cmdline(p) != nil && !zombie(p) {
			t.Errorf("worker %d of the killed server is still alive 5 s later", p)
			orphans++
		}
	}
	return w, orphans
}

func zombie(pid int) bool {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return containsZ(b)
}

func traffic(s *server) map[string]int {
	var ep struct{ Traffic map[string]int }
	s.okJSON(&ep, "online-endpoint", "show", "-n", "quickstart")
	return ep.Traffic
}

// allSucceeded reports whether each named deployment is Succeeded with all its
// instances Ready.
func allSucceeded(t *testing.T, s *server, names []string) bool {
	t.Helper()
	for _, n := range names {
		var d deploymentState
		s.okJSON(&d, "online-deployment", "show", "-e", "quickstart", "-n", n)
		ready := 0
		for _, in := range d.Instances {
			if in.State == "Ready" {
				ready++
			}
		}
		if d.ProvisioningState != "Succeeded" || ready != d.InstanceCount {
			return false
		}
	}
	return true
}

// checkOutcomes counts the answers that no documented behaviour explains: a status not
// in documented, a client timeout, or a refused or cut connection while the server was
// up. It logs the tally and the first few of them.
func checkOutcomes(t *testing.T, outcomes []outcome, downs []window) int {
	t.Helper()
	undocumented, whileDown := 0, 0
	for _, o := range outcomes {
		switch {
		case o.status == 502:
			// Documented for the request a killed worker was running; logged so that
			// each can be matched with a kill (or a server log line).
			t.Logf("502 %s at %s, x-request-id %s", o.reason, o.start.Format("15:04:05.000"), o.requestID)
			continue
		case o.status != 0 && documented[o.status]:
			continue
		case o.status == 0 && connError(o.err) && overlaps(o, downs):
			whileDown++
			continue
		}
		undocumented++
		if undocumented <= 5 {
			t.Errorf("non-documented outcome at %s: status %d, error %v", o.start.Format("15:04:05.000"), o.status, o.err)
		}
	}
	t.Logf("%d requests: statuses %v (0 = no answer); %d refused or cut while the server was down; %d non-documented",
		len(outcomes), counts(outcomes), whileDown, undocumented)
	return undocumented
}

func overlaps(o outcome, downs []window) bool {
	for _, w := range downs {
		if !o.end.Before(w.from) && !o.start.After(w.to) {
			return true
		}
	}
	return false
}

// logSegments logs the statuses of the requests sent before the first fault and after
// each one, so that a 503 or a 429 is seen next to the fault that caused it.
func logSegments(t *testing.T, outcomes []outcome, marks []time.Time, faults []string) {
	t.Helper()
	for i, from := range marks {
		var seg []outcome
		for _, o := range outcomes {
			if !o.start.Before(from) && (i+1 == len(marks) || o.start.Before(marks[i+1])) {
				seg = append(seg, o)
			}
		}
		what := "before the faults"
		if i > 0 {
			what = fmt.Sprintf("after fault %d (%s)", i, faults[i-1])
		}
		t.Logf("%-30s %v", what+":", tally(seg))
	}
}
