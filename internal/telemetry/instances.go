package telemetry

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Restart causes: the values of berth_restarts_total's cause label.
const (
	// CauseWorkerCrashed: a Python worker exited on its own (a crash, os._exit).
	CauseWorkerCrashed = "worker_crashed"
	// CauseWorkerStopped: Berth stopped a worker still inside run() because its request
	// ended early (the request timeout, the client gone) or a liveness ping went
	// unanswered.
	CauseWorkerStopped = "worker_stopped"
	// CauseInstanceExited: the whole instance exited and its keeper started it again.
	CauseInstanceExited = "instance_exited"
	// CauseInstanceOutOfMemory: the instance used more memory than its instance_type.
	CauseInstanceOutOfMemory = "instance_out_of_memory"
)

// Process is an instance whose worker processes can be measured.
type Process interface {
	// Pids lists the instance's live worker processes.
	Pids() []int
	// Done is closed when the instance has exited.
	Done() <-chan struct{}
}

// Instances tracks the instances this process runs: their CPU and memory (read from
// /proc on Linux at each scrape and each history step) and their restarts.
type Instances struct {
	restarts *prometheus.CounterVec

	mu   sync.Mutex
	live map[instanceKey]*tracked
}

type instanceKey struct {
	endpoint, deployment string
	index                int
}

type tracked struct {
	p Process
	// cpu and at are the CPU seconds and the time of the last history step, for the
	// percentage over the step.
	cpu     float64
	at      time.Time
	percent float64
}

func newInstances(reg prometheus.Registerer) *Instances {
	in := &Instances{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_restarts_total",
			Help: "Worker and instance restarts by cause: worker_crashed, worker_stopped, instance_exited, instance_out_of_memory.",
		}, []string{"endpoint", "deployment", "cause"}),
		live: map[instanceKey]*tracked{},
	}
	reg.MustRegister(in.restarts)
	return in
}

// Started tracks a started instance until its Done closes.
func (in *Instances) Started(endpoint, deployment string, index int, p Process) {
	k := instanceKey{endpoint, deployment, index}
	t := &tracked{p: p}
	in.mu.Lock()
	in.live[k] = t
	in.mu.Unlock()
	go func() { // ends with the instance
		<-p.Done()
		in.mu.Lock()
		if in.live[k] == t {
			delete(in.live, k)
		}
		in.mu.Unlock()
	}()
}

// Restarted counts a restart of a worker or an instance of the deployment.
func (in *Instances) Restarted(endpoint, deployment, cause string) {
	in.restarts.WithLabelValues(endpoint, deployment, cause).Inc()
}

// instanceStat is one live instance measured now.
type instanceStat struct {
	instanceKey
	cpuSeconds float64
	rss        int64
	percent    float64 // over the last history step
}

// measure reads every live instance's processes; with step set it also updates each
// instance's CPU percentage since the last step.
func (in *Instances) measure(now time.Time, step bool) []instanceStat {
	in.mu.Lock()
	type entry struct {
		k instanceKey
		t *tracked
	}
	all := make([]entry, 0, len(in.live))
	for k, t := range in.live {
		all = append(all, entry{k, t})
	}
	in.mu.Unlock()
	out := make([]instanceStat, 0, len(all))
	for _, e := range all {
		cpu, rss := procStats(e.t.p.Pids())
		in.mu.Lock()
		if step {
			if !e.t.at.IsZero() && now.After(e.t.at) && cpu >= e.t.cpu {
				e.t.percent = 100 * (cpu - e.t.cpu) / now.Sub(e.t.at).Seconds()
			}
			e.t.cpu, e.t.at = cpu, now
		}
		pct := e.t.percent
		in.mu.Unlock()
		out = append(out, instanceStat{e.k, cpu, rss, pct})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.endpoint != b.endpoint {
			return a.endpoint < b.endpoint
		}
		if a.deployment != b.deployment {
			return a.deployment < b.deployment
		}
		return a.index < b.index
	})
	return out
}

// live counts the live instances of each deployment.
func (in *Instances) counts() map[[2]string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[[2]string]int{}
	for k := range in.live {
		out[[2]string{k.endpoint, k.deployment}]++
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
